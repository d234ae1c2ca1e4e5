"""The solver objects equal scikit-learn's optimizers, step for step."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from sk_keras_digits._solvers import SCHEDULES, SGD, Adam, Adaptive, InvScaling
from sk_keras_digits._state import (
    CONVERGED,
    LEARNING_RATE_TOO_SMALL,
    AdamState,
    SGDState,
    Weights,
)


def random_arrays(seed, shapes=((4, 3), (3,))):
    rng = np.random.RandomState(seed)
    return [rng.normal(size=shape) for shape in shapes]


def flat(arrays):
    return tf.constant(np.concatenate([a.ravel() for a in arrays]))


def assert_flat_equal(ours, theirs, rtol):
    np.testing.assert_allclose(ours.numpy(), flat(theirs).numpy(), rtol=rtol)


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_matches_sklearn(nesterov):
    params = random_arrays(0)
    theirs = [p.copy() for p in params]
    reference = SGDOptimizer(theirs, 0.05, "constant", 0.8, nesterov)
    solver = SGD(nesterov=nesterov)
    hyper = solver.Hyper(learning_rate_init=0.05, momentum=0.8, power_t=0.5)
    state = solver.initial_state(Weights(tuple(params), ()))
    ours = flat(params)
    for step in range(5):
        grads = random_arrays(step + 1)
        reference.update_params(theirs, grads)
        ours, state = solver.update(ours, flat(grads), state, 0.05, hyper)
        assert_flat_equal(ours, theirs, rtol=1e-14)
        assert_flat_equal(state.velocity, reference.velocities, rtol=1e-14)
    assert type(state) is SGDState


def test_adam_matches_sklearn():
    params = random_arrays(0)
    theirs = [p.copy() for p in params]
    reference = AdamOptimizer(theirs, 0.01, 0.8, 0.99, 1e-6)
    solver = Adam()
    hyper = solver.Hyper(learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6)
    state = solver.initial_state(Weights(tuple(params), ()))
    state = state._replace(step=tf.constant(0.0, tf.float64))
    ours = flat(params)
    for step in range(5):
        grads = random_arrays(step + 1)
        reference.update_params(theirs, grads)
        ours, state = solver.update(ours, flat(grads), state, 0.01, hyper)
        assert_flat_equal(ours, theirs, rtol=1e-12)
        assert_flat_equal(state.m, reference.ms, rtol=1e-12)
        assert_flat_equal(state.v, reference.vs, rtol=1e-12)
    assert float(state.step) == reference.t == 5
    assert type(state) is AdamState


def test_initial_state_is_zero_flat_and_of_the_params_dtype():
    weights = Weights(tuple(p.astype(np.float32) for p in random_arrays(0)), ())
    sgd = SGD().initial_state(weights)
    adam = Adam().initial_state(weights)
    assert sgd.velocity.shape == adam.m.shape == adam.v.shape == (15,)
    assert {sgd.velocity.dtype, adam.m.dtype, adam.v.dtype} == {np.dtype(np.float32)}
    assert not (sgd.velocity.any() or adam.m.any() or adam.v.any())
    assert adam.step == 0.0


def test_key_holds_graph_settings_not_numbers():
    assert SGD(nesterov=True).key != SGD(nesterov=False).key
    assert SGD(schedule=Adaptive()).key != SGD(schedule=InvScaling()).key
    assert Adam().key == Adam().key != SGD().key
    assert set(SCHEDULES) == {"constant", "invscaling", "adaptive"}


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_schedules_match_sklearn(learning_rate):
    params = random_arrays(0)
    reference = SGDOptimizer(
        [p.copy() for p in params], 0.5, learning_rate, 0.9, True, power_t=0.25
    )
    schedule = SCHEDULES[learning_rate]()
    hyper = SGD.Hyper(learning_rate_init=0.5, momentum=0.9, power_t=0.25)
    lr = tf.constant(0.5, tf.float64)
    for t in (100.0, 250.0, 1000.0):
        reference.iteration_ends(t)
        lr = schedule.after_epoch(lr, tf.constant(t, tf.float64), hyper)
        assert float(lr) == pytest.approx(reference.learning_rate, rel=1e-14)
    # The n_iter_no_change rule fired: adaptive divides by 5 down to 1e-6.
    new_lr, go_on = schedule.on_plateau(lr, hyper)
    if learning_rate == "adaptive":
        assert bool(go_on) and float(new_lr) == pytest.approx(float(lr) / 5)
        assert not bool(schedule.on_plateau(tf.constant(1e-6, tf.float64), hyper)[1])
        assert schedule.stop_status == LEARNING_RATE_TOO_SMALL
    else:
        assert not bool(go_on) and schedule.stop_status == CONVERGED

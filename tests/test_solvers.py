"""The solvers' update rules equal scikit-learn's optimizers, step for step."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from sk_keras_digits._solvers import apply_updates, initial_state


def random_arrays(seed, shapes=((4, 3), (3,))):
    rng = np.random.RandomState(seed)
    return [rng.normal(size=shape) for shape in shapes]


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_matches_sklearn(nesterov):
    params = random_arrays(0)
    theirs = [p.copy() for p in params]
    reference = SGDOptimizer(theirs, 0.05, "constant", 0.8, nesterov)
    state = initial_state("sgd", params)
    ours = [tf.constant(p) for p in params]
    hyper = {
        "learning_rate": tf.constant(0.05, tf.float64),
        "momentum": tf.constant(0.8, tf.float64),
    }
    for step in range(5):
        grads = random_arrays(step + 1)
        reference.update_params(theirs, grads)
        ours, state = apply_updates(
            "sgd", nesterov, ours, [tf.constant(g) for g in grads], state, hyper
        )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-14)


def test_adam_matches_sklearn():
    params = random_arrays(0)
    theirs = [p.copy() for p in params]
    reference = AdamOptimizer(theirs, 0.01, 0.8, 0.99, 1e-6)
    state = initial_state("adam", params)
    ours = [tf.constant(p) for p in params]
    hyper = {
        name: tf.constant(value, tf.float64)
        for name, value in [
            ("learning_rate", 0.01),
            ("beta_1", 0.8),
            ("beta_2", 0.99),
            ("epsilon", 1e-6),
        ]
    }
    for step in range(5):
        grads = random_arrays(step + 1)
        reference.update_params(theirs, grads)
        ours, state = apply_updates(
            "adam", False, ours, [tf.constant(g) for g in grads], state, hyper
        )
    assert float(state["t"]) == 5
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12)


def test_initial_state_is_zero_and_shaped_like_the_params():
    params = random_arrays(0)
    sgd = initial_state("sgd", params)
    adam = initial_state("adam", params)
    assert [v.shape for v in sgd["velocities"]] == [(4, 3), (3,)]
    assert all(not v.any() for v in sgd["velocities"] + adam["m"] + adam["v"])
    assert adam["t"] == 0 and adam["t"].dtype == np.float64

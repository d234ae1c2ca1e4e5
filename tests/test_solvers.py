"""The solver objects equal scikit-learn's optimizers, step for step.

The update rules are written once with ``keras.ops``: these run them eagerly on
the backend under test.
"""

import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._keras_optimizer import KerasOptimizer
from sk_keras_digits._schedules import SCHEDULES, Adaptive, InvScaling
from sk_keras_digits._solvers import SGD, Adam
from sk_keras_digits._state import (
    CONVERGED,
    LEARNING_RATE_TOO_SMALL,
    AdamState,
    SGDState,
    Weights,
)
from tests._helpers import compute_scope


def random_arrays(seed, shapes=((4, 3), (3,))):
    rng = np.random.RandomState(seed)
    return [rng.normal(size=shape) for shape in shapes]


def tensor(value):
    return keras.ops.convert_to_tensor(value, "float64")


def flat(arrays):
    return tensor(np.concatenate([a.ravel() for a in arrays]))


def assert_flat_equal(ours, theirs, rtol):
    expected = np.concatenate([a.ravel() for a in theirs])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, rtol=rtol)


@pytest.fixture(autouse=True)
def float64():
    """Every test computes in float64 (JAX needs its scope for that)."""
    with compute_scope("float64"):
        yield


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
    state = state._replace(step=tensor(0.0))
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
    lr = tensor(0.5)
    hyper = SGD.Hyper(*(tensor(v) for v in hyper))
    for t in (100.0, 250.0, 1000.0):
        reference.iteration_ends(t)
        lr = schedule.after_epoch(lr, tensor(t), hyper, None)
        assert float(lr) == pytest.approx(reference.learning_rate, rel=1e-14)
    # The n_iter_no_change rule fired: adaptive divides by 5 down to 1e-6.
    new_lr, go_on = schedule.on_plateau(lr, hyper)
    if learning_rate == "adaptive":
        assert bool(go_on) and float(new_lr) == pytest.approx(float(lr) / 5)
        assert not bool(schedule.on_plateau(tensor(1e-6), hyper)[1])
        assert schedule.stop_status == LEARNING_RATE_TOO_SMALL
    else:
        assert not bool(go_on) and schedule.stop_status == CONVERGED


# ------------------------------------------------------- Keras optimizers
def keras_optimizer(**kwargs):
    import keras

    return keras.optimizers.AdamW(**{"learning_rate": 1e-3, **kwargs})


def test_keras_optimizer_key_is_class_and_config_without_the_name():
    import keras

    first, second = keras_optimizer(), keras_optimizer()
    assert first.name != second.name  # Keras makes every name unique
    key = KerasOptimizer(first).key
    assert key == KerasOptimizer(second).key
    assert key[1] == "keras.src.optimizers.adamw.AdamW"
    assert "adam_w" not in key[2] and '"weight_decay": 0.004' in key[2]
    assert key != KerasOptimizer(keras_optimizer(weight_decay=1e-4)).key
    assert key != KerasOptimizer(keras.optimizers.Adam(1e-3)).key
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 3, 0.5)
    scheduled = KerasOptimizer(keras.optimizers.RMSprop(schedule)).key
    assert '"class_name": "ExponentialDecay"' in scheduled[2]
    other = keras.optimizers.schedules.ExponentialDecay(0.1, 3, 0.25)
    assert scheduled != KerasOptimizer(keras.optimizers.RMSprop(other)).key


def test_keras_optimizer_layout_is_flat_only_for_elementwise_rules():
    import keras

    shapes = ((4, 3), (3,))
    assert KerasOptimizer(keras_optimizer()).layout(shapes) == ((15,),)
    for optimizer in (
        keras.optimizers.Lamb(),  # a trust ratio per variable
        keras.optimizers.Adam(clipnorm=1.0),  # a norm per variable
        type("MyAdam", (keras.optimizers.Adam,), {})(),  # a subclass may differ
    ):
        assert KerasOptimizer(optimizer).layout(shapes) == shapes


def test_keras_optimizer_initial_state_is_a_fresh_optimizers():
    import keras

    weights = Weights(tuple(random_arrays(0)), ())
    user = keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5)
    state = KerasOptimizer(user).initial_state(weights)
    assert not user.built and int(user.iterations) == 0
    assert len(user.variables) == 2  # iterations and learning rate, not built
    reference = keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5)
    reference.build([keras.Variable(np.zeros(15))])
    assert len(state.variables) == len(reference.variables) == 4
    for ours, theirs in zip(state.variables, reference.variables, strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours, theirs.numpy())
    assert state.variables[0].dtype.kind == "i"  # iterations
    assert state.variables[2].shape == (15,)  # slots: the flat layout
    # Cached and shared by every fit: read-only.
    again = KerasOptimizer(user).initial_state(weights)
    assert again.variables[2] is state.variables[2]
    assert not state.variables[2].flags.writeable


def test_keras_optimizer_rejects_other_objects_and_ema():
    with pytest.raises(TypeError, match="keras.optimizers.Optimizer instance"):
        KerasOptimizer(SGD())
    with pytest.raises(ValueError, match="use_ema=True"):
        KerasOptimizer(keras_optimizer(use_ema=True))
    excluding = keras_optimizer()
    excluding.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(ValueError, match="exclude_from_weight_decay"):
        KerasOptimizer(excluding)


# -- what a fit leaves of its solver, as MLP's private attributes -----------------
@settings(max_examples=12, deadline=None)
@given(
    solver=st.sampled_from(["sgd", "adam"]),
    schedule=st.sampled_from(["constant", "invscaling", "adaptive"]),
    early_stopping=st.booleans(),
    n_iter_no_change=st.integers(1, 4),
    max_iter=st.integers(1, 12),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_a_fit_leaves_mlps_optimizer_rate_and_no_improvement_count(
    small_digits, solver, schedule, early_stopping, n_iter_no_change, max_iter, dtype
):
    """``_optimizer.learning_rate`` (to the bit) and ``_no_improvement_count``
    are MLP's after the same fit, 'adaptive' divisions and Adam's bias
    correction included."""
    X, y = small_digits[0][:120].astype(dtype), small_digits[1][:120]
    params = dict(
        hidden_layer_sizes=(8,),
        solver=solver,
        learning_rate=schedule,
        learning_rate_init=0.05,
        early_stopping=early_stopping,
        n_iter_no_change=n_iter_no_change,
        tol=1e-2,
        max_iter=max_iter,
        shuffle=False,
        random_state=0,
    )
    ours, theirs = KerasDigitClassifier(**params), MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert ours._no_improvement_count == theirs._no_improvement_count
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    assert ours._optimizer.learning_rate_init == theirs._optimizer.learning_rate_init


@pytest.mark.parametrize(
    "solver, absent",
    [
        ("lbfgs", ["_optimizer", "_no_improvement_count"]),
        (keras.optimizers.SGD(0.01), ["_optimizer"]),
    ],
    ids=["lbfgs", "keras"],
)
def test_mlps_private_attributes_are_absent_where_mlp_has_none(
    small_digits, solver, absent
):
    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    for name in ["_optimizer", "_no_improvement_count"]:
        assert hasattr(est, name) == (name not in absent)
    for name in absent:
        with pytest.raises(AttributeError, match=f"has no {name}: it exists"):
            getattr(est, name)
    assert not hasattr(KerasDigitClassifier(), "_optimizer")  # not fitted


def test_samples_seen_are_counted_exactly_past_float32s_integers(small_digits):
    """``t_`` is an exact count however long a float32 fit runs (float32 counts
    by 4 past 2**25), and 'invscaling''s rate is MLP's for that count."""
    X, y = small_digits[0][:5].astype(np.float32), small_digits[1][:5]
    est = KerasDigitClassifier(
        hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling"
    )
    est.partial_fit(X, y, classes=np.arange(10))
    state = est._state
    progress = state.training.progress._replace(samples_seen=2.0**25 + 1)
    est._state = state._replace(training=state.training._replace(progress=progress))
    est.partial_fit(X, y)
    assert est.t_ == 2**25 + 6
    assert est._optimizer.learning_rate == 0.001 / (2**25 + 7) ** 0.5

"""The training driver and the compiled programs, on the backend under test.

Same numbers as Keras stepping its own model, shared safely, compiled once.
"""

import warnings

import keras
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sk_keras_digits import KerasDigitClassifier, _padding, _training
from sk_keras_digits._backends import _groups, current
from sk_keras_digits._cache import LRUCache
from sk_keras_digits._keras_optimizer import KerasOptimizer
from sk_keras_digits._network import CustomNetwork, DenseNetwork
from sk_keras_digits._solvers import SGD, Adam
from sk_keras_digits._state import Progress, TrainingState
from sk_keras_digits._training import Hyper, TrainingConfig, TrainingData
from tests._helpers import built, compute_scope, run_in_threads, value_and_grad
from tests._networks import unused_weight_network


def dense_network(n_features=64, hidden=(12,), n_outputs=10, activation="logistic"):
    # Not tanh: on JAX, Keras 3.15's tanh layers compute float64 in float32,
    # so a Keras model with them is no float64 reference there.
    units = [n_features, *hidden, n_outputs]
    out = "softmax" if n_outputs > 1 else "logistic"
    return DenseNetwork(units, activation, out, "float64")


def one_hot(y, n=10):
    return np.eye(n)[y]


def reference_loss(model, x, y, sw, alpha):
    """MLPClassifier's loss computed by the Keras model itself, of its weights."""
    ops = keras.ops
    buffers = [v.value for v in model.non_trainable_variables]

    def loss(params):
        proba, _ = model.stateless_call(params, buffers, x, training=True)
        per_sample = -ops.sum(y * ops.log(proba), axis=1)
        kernels = [w for w in params if len(w.shape) == 2]
        penalty = sum(ops.sum(ops.square(w)) for w in kernels)
        return ops.sum(sw * per_sample) / ops.sum(sw) + 0.5 * alpha * (
            penalty / ops.sum(sw)
        )

    return loss


def model_loss_and_grads(model, x, y, sw, alpha):
    params = [v.value for v in model.trainable_variables]
    loss, grads = value_and_grad(reference_loss(model, x, y, sw, alpha), params)
    return float(loss), [np.asarray(g) for g in grads]


def keras_epoch(model, optimizer, X, Y, batch_size=100, alpha=1e-3):
    """One epoch of Keras stepping ``model`` with ``optimizer``; its mean loss."""
    total = 0.0
    for start in range(0, len(X), batch_size):  # batches of 100, 100 and 50
        xb, yb = X[start : start + batch_size], Y[start : start + batch_size]
        loss, grads = model_loss_and_grads(model, xb, yb, np.ones(len(xb)), alpha)
        optimizer.apply(grads, model.trainable_variables)
        total += loss * len(xb)
    return total / len(X)


def program_loss_and_grads(program, weights, data, alpha):
    """The program's full-batch loss and gradient, split per parameter."""
    flat = np.concatenate([np.ravel(p) for p in weights.params]).astype(np.float64)
    loss, grad = program.objective(weights, data, alpha)(flat)
    splits = np.cumsum([p.size for p in weights.params])[:-1]
    return loss, np.split(grad, splits)


def test_loss_and_gradients_equal_the_keras_models(small_digits):
    X, y = small_digits
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    model = network.build_model(weights)
    Y = one_hot(y)
    sw = np.random.RandomState(1).uniform(0.5, 2, len(X))
    program = _training.get_program(network)
    loss, grads = program_loss_and_grads(program, weights, TrainingData(X, Y, sw), 1e-2)
    with compute_scope("float64"):
        expected, expected_grads = model_loss_and_grads(model, X, Y, sw, 1e-2)
    assert loss == pytest.approx(expected, rel=1e-12)
    for ours, theirs in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(ours, theirs.ravel(), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("nesterov", [True, False])
def test_an_sgd_epoch_equals_keras_sgd_on_the_keras_model(small_digits, nesterov):
    """One compiled epoch == Keras' SGD stepping the Keras model batch by batch."""
    X, y = small_digits
    X, Y = X[:250], one_hot(y[:250])
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    solver = SGD(nesterov=nesterov)
    state = TrainingState(
        weights,
        solver.initial_state(weights),
        Progress(0.1, np.inf, -np.inf, 0, 0.0),
    )
    config = TrainingConfig(
        solver=solver,
        hyper=Hyper(
            alpha=1e-3,
            tol=1e-4,
            n_iter_no_change=10.0,
            solver=SGD.Hyper(learning_rate_init=0.1, momentum=0.9, power_t=0.5),
        ),
        batch_size=100,
        shuffle=False,
        early_stopping=False,
    )
    data = TrainingData(X, Y, np.ones(len(X)))
    new_state, log = _training.train_stochastic(
        network, config, state, data, None, n_epochs=1, seed=0
    )

    model = network.build_model(weights)
    with compute_scope("float64"):
        optimizer = keras.optimizers.SGD(
            learning_rate=0.1, momentum=0.9, nesterov=nesterov
        )
        epoch_loss = keras_epoch(model, optimizer, X, Y)
    # Keras' SGD keeps its learning rate and momentum in float32 variables,
    # hence agreement to float32's precision of 0.1 and 0.9, not float64's.
    for ours, theirs in zip(new_state.weights.params, model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    assert log.losses[0] == pytest.approx(epoch_loss, rel=1e-7)
    assert new_state.progress.samples_seen == len(X)
    assert type(new_state.progress.samples_seen) is float
    assert type(new_state.progress.no_improvement) is int
    assert new_state.progress.best_weights is None
    assert new_state.solver.velocity.shape == (weights.size,)


def conv_builder(n_features, n_outputs, output_activation):
    inputs = keras.Input(shape=(n_features,))
    h = keras.layers.Reshape((8, 8, 1))(inputs)
    h = keras.layers.Conv2D(4, 3, activation="relu")(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
    return keras.Model(inputs, outputs)


def test_custom_network_loss_and_predictions_equal_the_keras_models(small_digits):
    X, y = small_digits
    network = CustomNetwork(conv_builder, 64, 10, "softmax", "float64")
    model = network.build(seed=3)
    weights = network.initial_weights()
    program = _training.get_program(network)
    Y, sw = one_hot(y), np.ones(len(X))
    loss, grads = program_loss_and_grads(program, weights, TrainingData(X, Y, sw), 0.0)
    with compute_scope("float64"):
        expected, expected_grads = model_loss_and_grads(model, X, Y, sw, 0.0)
        predicted = model.predict(X, verbose=0)
    assert loss == pytest.approx(expected, rel=1e-12)
    for ours, theirs in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(ours, theirs.ravel(), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(program.predict(weights, X), predicted, rtol=1e-12)


def fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KerasDigitClassifier(**params).fit(X, y)


def weights(estimator):
    return estimator.coefs_ + estimator.intercepts_


def sgd_program(hidden):
    network = dense_network(hidden=hidden, activation="relu")
    config = TrainingConfig(SGD(nesterov=True), None, 200, True, False)
    # The default network is padded in rows and widths, and small: its loop
    # carries one flat vector.
    key = (current().NAME, *config.program_key(network), True, True, True)
    return _training.PROGRAMS.get(key, None)


def test_a_refit_of_the_same_shapes_compiles_nothing(small_digits, monkeypatch):
    monkeypatch.setattr(_training, "PROGRAMS", LRUCache(_training.CACHE_SIZE))
    X, y = small_digits
    params = dict(hidden_layer_sizes=(7,), solver="sgd", max_iter=2)
    fit(X, y, random_state=0, **params)
    program = sgd_program((7,))
    compiled = built(program)
    assert compiled == 1
    for seed in range(1, 4):
        fit(X, y, random_state=seed, **params)
    assert built(program) == compiled


def test_fits_of_one_bucket_share_one_compilation(small_digits, monkeypatch):
    """Hidden sizes 3 to 16 and 290 to 300 rows are padded alike: one compile."""
    monkeypatch.setattr(_training, "PROGRAMS", LRUCache(_training.CACHE_SIZE))
    X, y = small_digits
    params = dict(solver="sgd", max_iter=2, batch_size=50)
    fit(X[:300], y[:300], hidden_layer_sizes=(7,), random_state=0, **params)
    program = sgd_program((7,))
    assert built(program) == 1
    for hidden, n, seed in [((16,), 290, 1), ((3,), 297, 2), ((12,), 300, 3)]:
        fit(X[:n], y[:n], hidden_layer_sizes=hidden, random_state=seed, **params)
    assert built(program) == 1
    # Another bucket of widths compiles once more.
    fit(X[:300], y[:300], hidden_layer_sizes=(40,), random_state=0, **params)
    assert built(program) == 2


def test_program_cache_is_bounded(small_digits, monkeypatch):
    X, y = small_digits
    cache = LRUCache(maxsize=3)
    monkeypatch.setattr(_training, "PROGRAMS", cache)
    for depth in range(1, 6):
        fit(X, y, hidden_layer_sizes=(5,) * depth, solver="sgd", max_iter=1)
    assert len(cache) == 3


def test_interleaved_estimators_give_what_each_gives_alone(small_digits):
    X, y = small_digits
    a = dict(hidden_layer_sizes=(16,), solver="sgd", max_iter=5, random_state=0)
    b = dict(a, hidden_layer_sizes=(9,), random_state=1)
    b.update(learning_rate_init=0.3, momentum=0.5)
    alone_a = fit(X, y, **a)
    alone_b = fit(X[:200], y[:200], **b)
    fit(X[:200], y[:200], **b)
    again_a = fit(X, y, **a)
    for p, q in zip(weights(alone_a), weights(again_a), strict=True):
        np.testing.assert_array_equal(p, q)
    # partial_fit carries its own solver state between calls, never the cache's.
    inc_a = KerasDigitClassifier(**a)
    inc_b = KerasDigitClassifier(**b)
    classes = np.unique(y)
    for _ in range(3):
        inc_a.partial_fit(X, y, classes=classes)
        inc_b.partial_fit(X[:200], y[:200], classes=classes)
    solo = KerasDigitClassifier(**a)
    for _ in range(3):
        solo.partial_fit(X, y, classes=classes)
    for p, q in zip(weights(inc_a), weights(solo), strict=True):
        np.testing.assert_array_equal(p, q)
    assert alone_b.n_iter_ == 5


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_two_threads_fitting_at_once_give_what_each_gives_alone(small_digits):
    X, y = small_digits
    settings = [
        dict(hidden_layer_sizes=(16,), solver="sgd", max_iter=30, random_state=0),
        dict(hidden_layer_sizes=(9,), solver="adam", max_iter=30, random_state=1),
        dict(hidden_layer_sizes=(16,), solver="sgd", max_iter=30, random_state=2),
    ]
    alone = [fit(X, y, **s) for s in settings]
    results = run_in_threads(lambda s: fit(X, y, **s), settings)
    for solo, threaded in zip(alone, results, strict=True):
        for p, q in zip(weights(solo), weights(threaded), strict=True):
            np.testing.assert_array_equal(p, q)


def test_many_epochs_run_in_one_call_and_verbose_runs_one_per_call(
    small_digits, monkeypatch
):
    X, y = small_digits
    calls = []
    program_class = current().TrainingProgram
    run = program_class.run

    def counting_run(self, *args, **kwargs):
        calls.append(args[3])  # n_epochs of this call
        return run(self, *args, **kwargs)

    monkeypatch.setattr(program_class, "run", counting_run)
    fit(X, y, hidden_layer_sizes=(5,), max_iter=12)
    assert calls == [12]
    calls.clear()
    monkeypatch.setattr(_training, "CHUNK_SAMPLES", 5 * len(X))
    est = fit(X, y, hidden_layer_sizes=(5,), max_iter=12, random_state=0)
    assert calls == [5, 5, 2]
    monkeypatch.setattr(_training, "CHUNK_SAMPLES", 10**9)
    calls.clear()
    same = fit(X, y, hidden_layer_sizes=(5,), max_iter=12, random_state=0)
    assert calls == [12]
    for p, q in zip(weights(est), weights(same), strict=True):
        np.testing.assert_array_equal(p, q)


def test_the_program_key_holds_only_what_shapes_the_graph():
    network = dense_network()
    numbers = Hyper(1e-4, 1e-4, 10.0, Adam.Hyper(1e-3, 0.9, 0.999, 1e-8))
    other = Hyper(0.1, 0.5, 3.0, Adam.Hyper(0.5, 0.5, 0.5, 1e-3))
    a = TrainingConfig(Adam(), numbers, 200, True, False)
    b = TrainingConfig(Adam(), other, 17, True, False)
    assert a.program_key(network) == b.program_key(network)
    assert a.program_key(network) != a._replace(shuffle=False).program_key(network)
    assert a.program_key(network) != a._replace(solver=SGD()).program_key(network)
    wider = dense_network(hidden=(40,))
    assert a.program_key(network) == a.program_key(wider)
    deeper = dense_network(hidden=(40, 3))
    assert a.program_key(network) != a.program_key(deeper)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_state_round_trips_through_the_program(early_stopping):
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    for solver in (SGD(), Adam()):
        best = weights if early_stopping else None
        state = TrainingState(
            weights,
            solver.initial_state(weights),
            Progress(0.1, np.inf, -np.inf, 3, 12.0, best_weights=best),
        )
        numbers = (0.1, 0.9, 0.5) if solver.name == "sgd" else (0.1, 0.9, 0.99, 1e-8)
        config = TrainingConfig(
            solver,
            Hyper(1e-4, 1e-4, 10, solver.Hyper(*numbers)),
            50,
            False,
            early_stopping,
        )
        data = TrainingData(np.zeros((3, 64)), np.zeros((3, 10)), np.ones(3))
        layout = _training.FitLayout.plan(network, config, len(data.X))
        padded, data, validation = layout.pad(state, data, data)
        program = _training.get_program(network, config, padded, layout)
        _, tensors = program.prepare(padded, data, validation, config.hyper, layout)
        back = layout.unpad_state(program.to_numpy(tensors, like=padded))
        assert type(back) is TrainingState and type(back.solver) is type(state.solver)
        assert back.progress._replace(best_weights=None) == state.progress._replace(
            best_weights=None
        )
        assert type(back.progress.learning_rate) is float
        assert type(back.progress.no_improvement) is int
        for a, b in zip(back.weights.params, weights.params, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        if early_stopping:
            kept = back.progress.best_weights.params[0]
            assert kept.dtype == np.float64
            np.testing.assert_array_equal(kept, weights.params[0])


# ------------------------------------------------------- Keras optimizers
KERAS_OPTIMIZERS = {
    "RMSprop": lambda: keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5),
    "AdamW": lambda: keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    # Not element-wise: trained on variables of the parameters' shapes.
    "Lamb": lambda: keras.optimizers.Lamb(learning_rate=0.01),
    "Adam-clipnorm": lambda: keras.optimizers.Adam(learning_rate=0.01, clipnorm=0.5),
}


def keras_config(optimizer, early_stopping=False):
    return TrainingConfig(
        solver=KerasOptimizer(optimizer),
        hyper=Hyper(
            alpha=1e-3, tol=1e-4, n_iter_no_change=10.0, solver=KerasOptimizer.Hyper()
        ),
        batch_size=100,
        shuffle=False,
        early_stopping=early_stopping,
    )


@pytest.mark.parametrize("name", list(KERAS_OPTIMIZERS))
def test_an_epoch_with_a_keras_optimizer_equals_it_on_the_keras_model(
    small_digits, name
):
    """One compiled epoch == the optimizer stepping the Keras model per batch."""
    X, y = small_digits
    X, Y = X[:250], one_hot(y[:250])
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    user = KERAS_OPTIMIZERS[name]()
    config = keras_config(user)
    state = TrainingState(
        weights,
        config.solver.initial_state(weights),
        Progress(0.1, np.inf, -np.inf, 0, 0.0),
    )
    data = TrainingData(X, Y, np.ones(len(X)))
    new_state, log = _training.train_stochastic(
        network, config, state, data, None, n_epochs=1, seed=0
    )

    model = network.build_model(weights)
    with compute_scope("float64"):
        optimizer = KERAS_OPTIMIZERS[name]()
        epoch_loss = keras_epoch(model, optimizer, X, Y)
    for ours, theirs in zip(new_state.weights.params, model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    assert log.losses[0] == pytest.approx(epoch_loss, rel=1e-7)
    assert log.learning_rates[0] == pytest.approx(0.01)
    # The state is the optimizer's variables: iterations, learning rate, slots.
    ours = new_state.solver.variables
    theirs = [v.numpy() for v in optimizer.variables]
    assert ours[0] == theirs[0] == 3
    if config.solver.elementwise:
        # Ours: one slot per kind over the flat parameters. Keras': one per
        # kind and parameter, named "<layer>_<kernel|bias>_<kind>", in order.
        kinds = {}
        for variable in optimizer.variables[2:]:
            kind = variable.name.split("_")[-1]
            kinds.setdefault(kind, []).append(variable.numpy().ravel())
        theirs = theirs[:2] + [np.concatenate(parts) for parts in kinds.values()]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    # The user's optimizer was only read.
    assert not user.built and int(user.iterations) == 0
    assert user.get_config() == KERAS_OPTIMIZERS[name]().get_config() | {
        "name": user.name
    }


class _UnnamedSlotsAdam(keras.optimizers.Adam):
    """Adam whose slot variables do not carry their parameter's name."""

    def add_variable_from_reference(
        self, reference_variable, name=None, initializer="zeros"
    ):
        return self.add_variable(
            shape=reference_variable.shape,
            initializer=initializer,
            dtype=reference_variable.dtype,
            name=f"slot_{len(self.variables)}",
        )


def test_an_optimizer_whose_slots_cannot_be_matched_trains_on_the_flat_vector(
    small_digits,
):
    """An element-wise optimizer whose slots SlotLayout cannot tell apart by name
    (as a future Keras might name them) runs on the flat parameter vector of its
    record, with the numbers of the same rule run on each parameter."""
    from sk_keras_digits._keras_optimizer import program_optimizer

    X, y = small_digits
    X, Y = X[:250], one_hot(y[:250])
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    unnamed = keras_config(_UnnamedSlotsAdam(learning_rate=0.01))
    unnamed.solver.elementwise = True  # as the exact Adam class is
    named = keras_config(keras.optimizers.Adam(learning_rate=0.01))
    shapes = tuple(p.shape for p in weights.params)
    assert program_optimizer(unnamed.solver, shapes, "float64")[3]  # flat
    assert not program_optimizer(named.solver, shapes, "float64")[3]
    results = []
    for config in (unnamed, named):
        state = TrainingState(
            weights,
            config.solver.initial_state(weights),
            Progress(0.01, np.inf, -np.inf, 0, 0.0),
        )
        data = TrainingData(X, Y, np.ones(len(X)))
        results.append(
            _training.train_stochastic(
                network, config, state, data, None, n_epochs=2, seed=0
            )
        )
    (a, a_log), (b, b_log) = results
    for p, q in zip(a.weights.params, b.weights.params, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a_log.losses, b_log.losses, rtol=1e-12)
    # Both records hold the flat slots: iterations, learning rate, m, v.
    assert [v.shape for v in a.solver.variables] == [
        v.shape for v in b.solver.variables
    ]
    for p, q in zip(a.solver.variables, b.solver.variables, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)


def test_a_keras_optimizer_program_is_keyed_by_config_and_shapes(small_digits):
    network = dense_network()
    weights = network.initial_weights(np.random.RandomState(0))
    wider = dense_network(hidden=(40,))
    wider_weights = wider.initial_weights(np.random.RandomState(0))
    config = keras_config(keras.optimizers.Nadam(learning_rate=0.0321))
    same = keras_config(keras.optimizers.Nadam(learning_rate=0.0321))
    other = keras_config(keras.optimizers.Nadam(learning_rate=0.0322))

    def key(config, network, weights):
        state = TrainingState(weights, None, None)
        return config.program_key(network, state)

    assert key(config, network, weights) == key(same, network, weights)
    assert key(config, network, weights) != key(other, network, weights)
    # The optimizer's variables have the parameters' shapes: so does the key.
    assert key(config, network, weights) != key(config, wider, wider_weights)
    X, y = small_digits
    data = TrainingData(X, one_hot(y), np.ones(len(X)))
    for cfg, net, w in [(config, network, weights), (same, network, weights)] * 2:
        state = TrainingState(
            w, cfg.solver.initial_state(w), Progress(0.1, np.inf, -np.inf, 0, 0.0)
        )
        _training.train_stochastic(net, cfg, state, data, None, n_epochs=1, seed=0)
    # The default network with a Keras optimizer: rows padded, widths not,
    # each parameter carried.
    program = _training.PROGRAMS.get(
        (current().NAME, *key(config, network, weights), True, False, False), None
    )
    assert built(program) == 1


def test_an_optimizer_state_of_another_backend_continues_here():
    """Counters of another integer width (int64 on TensorFlow) are taken as ours."""
    weights = dense_network().initial_weights(np.random.RandomState(0))
    solver = KerasOptimizer(keras.optimizers.Adam())
    ours = solver.initial_state(weights)
    for width in (np.int32, np.int64):
        other = ours._replace(variables=(np.asarray(7, width), *ours.variables[1:]))
        solver.check_state(other, weights)
        aligned = solver.aligned_state(other, weights)
        assert aligned.variables[0].dtype == ours.variables[0].dtype
        assert int(aligned.variables[0]) == 7


# ----------------------------------------------------------------- padding
def _driver_fit(X, y, hidden, solver, early_stopping, shuffle, batch_size, pad):
    network = dense_network(n_features=X.shape[1], hidden=hidden)
    weights = network.initial_weights(np.random.RandomState(0))
    numbers = (0.1, 0.9, 0.5) if solver.name == "sgd" else (0.01, 0.9, 0.999, 1e-8)
    config = TrainingConfig(
        solver,
        Hyper(1e-3, 1e-4, 10.0, solver.Hyper(*numbers)),
        batch_size,
        shuffle,
        early_stopping,
    )
    state = TrainingState(
        weights,
        solver.initial_state(weights),
        Progress(numbers[0], np.inf, -np.inf, 0, 0.0),
    )
    n_train = len(X) * 4 // 5
    data = TrainingData(X[:n_train], one_hot(y[:n_train]), np.ones(n_train))
    validation = None
    if early_stopping:
        rest = len(X) - n_train
        validation = TrainingData(X[n_train:], one_hot(y[n_train:]), np.ones(rest))
    return _training.train_stochastic(
        network, config, state, data, validation, n_epochs=6, seed=3, pad=pad
    )


@pytest.mark.parametrize(
    "hidden, n_rows, solver, early_stopping, shuffle, batch_size",
    [
        ((15,), 300, SGD(nesterov=True), False, True, 64),
        ((5, 40), 237, Adam(), True, True, 50),
        ((20,), 161, SGD(nesterov=False), True, False, 17),
        ((70,), 300, Adam(), False, False, 300),
    ],
)
def test_a_padded_fit_equals_the_unpadded_one(
    small_digits, hidden, n_rows, solver, early_stopping, shuffle, batch_size
):
    """Padded rows, features and units change nothing (to the rounding of sums)."""
    X, y = small_digits
    X, y = X[:n_rows, :50], y[:n_rows]  # 50 features: padded to 64
    fits = [
        _driver_fit(X, y, hidden, solver, early_stopping, shuffle, batch_size, pad)
        for pad in (True, False)
    ]
    (padded, padded_log), (plain, plain_log) = fits
    for a, b in zip(padded.weights.params, plain.weights.params, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for a, b in zip(padded.solver, plain.solver, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(padded_log.losses, plain_log.losses, rtol=1e-9)
    np.testing.assert_array_equal(padded_log.scores, plain_log.scores)
    assert padded.progress.samples_seen == plain.progress.samples_seen


@pytest.mark.parametrize("solver", [Adam()])
def test_large_data_keep_their_rows_and_features(small_digits, monkeypatch, solver):
    """Above LARGE_DATA values only the hidden widths are padded, to the same fit.

    (The threshold is lowered so that the digits count as large data.)
    """
    X, y = small_digits
    X, y = X[:237, :50], y[:237]
    monkeypatch.setattr(_padding, "LARGE_DATA", 237 * 50 - 1)
    network = dense_network(n_features=50, hidden=(20,))
    config = TrainingConfig(solver, Hyper(1e-3, 1e-4, 10.0, None), 50, True, True)
    large = _training.FitLayout.plan(network, config, 237)
    assert not large.rows
    assert large.widths.padded_units == [50, 64, 10]
    small = _training.FitLayout.plan(network, config, 236)
    assert small.rows
    assert small.widths.padded_units == [64, 64, 10]
    fits = [
        _driver_fit(X, y, (20,), solver, True, True, 50, pad) for pad in (True, False)
    ]
    (padded, padded_log), (plain, plain_log) = fits
    for a, b in zip(padded.weights.params, plain.weights.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(padded_log.losses, plain_log.losses, rtol=1e-9)
    np.testing.assert_array_equal(padded_log.scores, plain_log.scores)


@pytest.mark.parametrize("solver", [SGD(), Adam()])
def test_a_flat_loop_trains_as_one_per_parameter(small_digits, monkeypatch, solver):
    """How the loop carries the parameters (one flat vector up to FLAT_PARAMS,
    else one tensor per parameter) changes nothing but the speed."""
    X, y = small_digits
    X, y = X[:237, :50], y[:237]
    network = dense_network(n_features=50, hidden=(20,))
    config = TrainingConfig(solver, Hyper(1e-3, 1e-4, 10.0, None), 50, True, True)
    fits = []
    for limit, flat in ((_groups.FLAT_PARAMS, True), (0, False)):
        monkeypatch.setattr(_groups, "FLAT_PARAMS", limit)
        assert _training.FitLayout.plan(network, config, 237).flat is flat
        fits.append(_driver_fit(X, y, (20,), solver, True, True, 50, True))
    (flat, flat_log), (each, each_log) = fits
    for a, b in zip(flat.weights.params, each.weights.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    for a, b in zip(flat.solver, each.solver, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    for a, b in zip(
        flat.progress.best_weights.params,
        each.progress.best_weights.params,
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(flat_log.losses, each_log.losses, rtol=1e-12)
    np.testing.assert_array_equal(flat_log.scores, each_log.scores)


def test_large_networks_and_keras_optimizers_carry_each_parameter():
    config = TrainingConfig(Adam(), Hyper(1e-3, 1e-4, 10.0, None), 200, True, False)
    plan = _training.FitLayout.plan
    assert plan(dense_network(), config, 1000).flat  # 64-16-10 padded: 1,210
    mnist = dense_network(n_features=784, hidden=(256, 128))
    assert not plan(mnist, config, 1000).flat  # 235,146 parameters
    assert not plan(dense_network(), keras_config(keras.optimizers.Adam()), 1000).flat
    conv = CustomNetwork(conv_builder, 64, 10, "softmax", "float64")
    conv.build(seed=0)
    assert plan(conv, config, 1000).flat  # 1,490 parameters

    def wide(n_features, n_outputs, output_activation):
        inputs = keras.Input((n_features,))
        h = keras.layers.Dense(300, activation="relu")(inputs)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
        return keras.Model(inputs, outputs)

    wide_network = CustomNetwork(wide, 64, 10, "softmax", "float64")
    wide_network.build(seed=0)
    assert not plan(wide_network, config, 1000).flat  # 22,510 parameters


def test_a_grid_search_compiles_at_most_two_programs(digits, monkeypatch):
    """5 hidden sizes x 5 folds and the refit, in a Pipeline, as the tutorial's.

    Two widths (16 and 64); the folds' 802 and 803 rows and the refit's 1003
    share one bucket of rows (1024) and the batch size: folds of different
    sizes compile nothing more (TensorFlow once compiled one program per
    number of rows, see ``tests/backends/test_tensorflow.py``).
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.setattr(_training, "PROGRAMS", LRUCache(_training.CACHE_SIZE))
    X, y = digits
    X, y = X[:1003], y[:1003]
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", KerasDigitClassifier(max_iter=2, random_state=0)),
        ]
    )
    grid = {"clf__hidden_layer_sizes": [(5,), (10,), (15,), (30,), (60,)]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        GridSearchCV(pipe, grid, cv=5).fit(X, y)
    training = [p for p in _training.PROGRAMS.values() if hasattr(p, "solver")]
    assert len(training) == 1  # one depth, dtype and solver
    (program,) = training
    # Compiled in this process, or read from the persistent cache (JAX).
    assert 1 <= built(program) <= 2


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_a_weight_the_loss_does_not_reach_gets_a_zero_gradient(small_digits, solver):
    """Every solver fits a network with an unused weight, which stays as it was."""
    X, y = small_digits
    clf = KerasDigitClassifier(
        network=unused_weight_network, solver=solver, alpha=0.0, max_iter=5
    )
    with pytest.warns(ConvergenceWarning):  # after 5 iterations
        clf.fit(X / 16, y)
    assert np.isfinite(clf.predict_proba(X)).all()
    layer = clf.model_.layers[-1]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.unused), 1.0)

"""The TensorFlow backend: records as ``tf.TensorSpec`` s, dynamic shapes."""

import inspect
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    pytest.skip("tests of the TensorFlow backend", allow_module_level=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from sk_keras_digits._backends import _handover  # noqa: E402
from sk_keras_digits._backends import tensorflow as backend  # noqa: E402
from sk_keras_digits._backends._records import restore  # noqa: E402
from sk_keras_digits._keras_optimizer import KerasOptimizer
from sk_keras_digits._network import DenseNetwork  # noqa: E402
from sk_keras_digits._solvers import SGD, Adam  # noqa: E402
from sk_keras_digits._state import Progress, TrainingState  # noqa: E402
from tests._helpers import laid_out  # noqa: E402


def dense_weights():
    network = DenseNetwork([64, 12, 10], "logistic", "softmax", "float64")
    return network.initial_weights(np.random.RandomState(0))


def test_state_round_trips_through_tensors():
    weights = dense_weights()
    for solver in (SGD(), Adam()):
        state = TrainingState(
            weights,
            solver.initial_state(weights),
            Progress(0.1, np.inf, -np.inf, 3, 12.0, best_weights=None),
        )
        spec = backend.signature(state, "float64", dynamic=True)
        assert spec.progress.best_weights is None
        assert spec.progress.no_improvement.dtype == tf.int32
        assert spec.weights.params[0].shape.as_list() == [None, None]
        tensors = backend.to_tensors(state, spec)
        assert tensors.progress.best_weights == ()
        back = restore(tensors, state, backend.to_numpy)
        assert type(back) is TrainingState and type(back.solver) is type(state.solver)
        assert back.progress == state.progress
        for a, b in zip(back.weights.params, weights.params, strict=True):
            np.testing.assert_array_equal(a, b)
        with_best = state._replace(
            progress=state.progress._replace(best_weights=weights)
        )
        spec = backend.signature(with_best, "float32", dynamic=False)
        assert spec.progress.learning_rate.dtype == tf.float32
        assert spec.weights.params[0].shape.as_list() == [64, 12]
        tensors = backend.to_tensors(with_best, spec)
        back = restore(tensors, with_best, backend.to_numpy)
        # Arrays keep their own dtype; Python numbers take the compute dtype.
        assert back.progress.best_weights.params[0].dtype == np.float64
        assert type(back.progress.learning_rate) is float


def test_optimizer_state_round_trips_through_tensors():
    weights = dense_weights()
    solver = KerasOptimizer(keras.optimizers.Adam())
    state = TrainingState(
        weights,
        solver.initial_state(weights),
        Progress(0.1, np.inf, -np.inf, 3, 12.0, best_weights=None),
    )
    spec = backend.signature(state, "float64", dynamic=False)
    assert spec.solver.variables[0].dtype == tf.int64  # iterations
    assert spec.solver.variables[1].dtype == tf.float32  # learning rate
    back = restore(backend.to_tensors(state, spec), state, backend.to_numpy)
    for a, b in zip(back.solver.variables, state.solver.variables, strict=True):
        assert type(a) is np.ndarray and a.dtype == b.dtype  # 0-d stays an array
        np.testing.assert_array_equal(a, b)


def test_variables_built_in_the_scope_share_one_tensorflow_name():
    with backend.build_scope("float64"):
        a = keras.Variable(np.zeros(3), name="kernel")
        b = keras.Variable(np.zeros(2), name="bias")
    assert a.value.name.split(":")[0] == b.value.name.split(":")[0]
    assert a.path != b.path  # Keras' own names are kept


# ------------------------------------------------------------------- XLA
class HostIdentity(keras.layers.Layer):
    """Passes its input through NumPy: an operation XLA cannot compile."""

    def call(self, x):
        y = tf.numpy_function(lambda a: a, [x], x.dtype, stateful=False)
        y.set_shape(x.shape)
        return y


def _host_network(n_features_in, n_outputs, output_activation):
    inputs = keras.Input((n_features_in,))
    hidden = keras.layers.Dense(8, activation="relu")(HostIdentity()(inputs))
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_network_xla_cannot_compile_trains_in_the_graph_with_one_warning(
    small_digits,
):
    from sk_keras_digits import KerasDigitClassifier, _training

    X, y = small_digits
    X = X.astype(np.float32)
    params = dict(
        network=_host_network,
        solver="adam",
        learning_rate_init=0.01,
        max_iter=20,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="XLA cannot compile") as record:
        est = KerasDigitClassifier(**params).fit(X, y)
    assert sum("XLA cannot compile" in str(w.message) for w in record) == 1
    assert est.score(X, y) > 0.5
    programs = [p for p in _training.PROGRAMS.values() if hasattr(p, "fallback")]
    assert any(p.fallback for p in programs)


def test_the_default_network_trains_under_xla(small_digits):
    from sk_keras_digits import KerasDigitClassifier, _training

    X, y = small_digits
    KerasDigitClassifier(hidden_layer_sizes=(9,), max_iter=2, random_state=0).fit(X, y)
    programs = [p for p in _training.PROGRAMS.values() if hasattr(p, "fallback")]
    assert programs and not any(p.fallback for p in programs if p.padded)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=2),
    dtype=st.sampled_from(["float32", "float64", "int32"]),
    offset=st.integers(0, 15),
    order=st.sampled_from(["C", "F", "strided"]),
    large=st.booleans(),
)
def test_data_tensors_copy_any_array_exactly(shape, dtype, offset, order, large):
    """Any layout and alignment (the large path with a lowered threshold): the
    same values in the asked dtype, in a copy the caller's array does not
    share, usable by an XLA program (which refuses misaligned memory)."""
    array = laid_out(shape, offset, order)
    threshold = 0 if large else _handover.LARGE_ARRAY_BYTES
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_handover, "LARGE_ARRAY_BYTES", threshold)
        tensor = backend.data_tensor(array, dtype)
    expected = array.astype(dtype)
    array += 1.0  # the caller changes its array: the tensor holds a copy
    assert tensor.dtype == tf.as_dtype(dtype)
    np.testing.assert_array_equal(tensor.numpy(), expected)
    doubled = tf.function(lambda t: t * 2, jit_compile=True)(tensor)
    np.testing.assert_array_equal(doubled.numpy(), expected * 2)


@pytest.mark.parametrize("rows", [300, 20_000])  # converted, and DLPack's handover
def test_a_fits_data_are_put_on_the_compute_device_once(rows):
    """On a CPU-only machine the handed-over tensor itself; with a GPU, a copy
    on it (the program's calls, one per chunk of epochs, then copy nothing)."""
    x = backend.data_tensor(np.ones((rows, 64)), "float64")
    placed = backend.on_compute_device(x)
    if tf.config.list_logical_devices("GPU"):
        assert "GPU" in placed.device
    else:
        assert placed is x and "CPU" in placed.device
    np.testing.assert_array_equal(placed.numpy(), np.ones((rows, 64)))


# ------------------------------------------- what TensorFlow's XLA compiles
#: The training program's arguments, in ``TrainingProgram._run_impl``'s order
#: (its parameters after ``self``).
_RUN_PARAMETERS = inspect.signature(backend.TrainingProgram._run_impl).parameters
RUN_ARGUMENTS = tuple(_RUN_PARAMETERS)[1:]


def recorded_run_arguments(estimator, X, y):
    """The program and the arguments of the first call of ``estimator.fit``."""
    calls = []
    call_run = backend.TrainingProgram._call_run

    def recording(program, *args):
        calls.append((program, args))
        return call_run(program, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend.TrainingProgram, "_call_run", recording)
        estimator.fit(X, y)
    program, args = calls[0]
    return program, dict(zip(RUN_ARGUMENTS, args, strict=True))


def compiled_computation(program, arguments):
    """The HLO that TensorFlow's XLA bridge builds for these arguments.

    TensorFlow compiles a program once per distinct computation: any input
    it needs as a compile-time constant is baked into the HLO (and into the
    key of its compilation cache), so equal HLO means one compilation.
    """
    args = [arguments[name] for name in RUN_ARGUMENTS]
    return program._run.experimental_get_compiler_ir(*args)(stage="hlo")


@pytest.fixture(scope="module", params=[True, False], ids=["shuffled", "in-order"])
def recorded_program(request, small_digits):
    from sk_keras_digits import KerasDigitClassifier

    X, y = small_digits
    estimator = KerasDigitClassifier(
        hidden_layer_sizes=(7,),
        max_iter=3,
        batch_size=64,
        shuffle=request.param,
        early_stopping=True,
        random_state=0,
    )
    program, arguments = recorded_run_arguments(estimator, X[:201], y[:201])
    return program, arguments, compiled_computation(program, arguments)


@settings(max_examples=12, deadline=None)
@given(
    n_rows=st.integers(1, 256),
    n_epochs=st.integers(1, 256),
    scale=st.floats(0.125, 8.0),
    no_improvement=st.integers(0, 1000),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_compiled_program_depends_on_no_input_value(
    recorded_program, n_rows, n_epochs, scale, no_improvement, seed
):
    """Real rows, epochs, settings, counters, weights, data and the epochs'
    orders are inputs of one compiled program: a fit of another size in the
    same bucket compiles nothing new. (The start of a batch once reached
    TensorFlow as a slice's start, which its XLA bridge takes as a
    compile-time constant: every number of real rows compiled a program of
    its own, 0.6 s each.)"""
    program, arguments, expected = recorded_program
    rows = arguments["data"].X.shape[0]
    state = arguments["state"]
    progress = state.progress._replace(
        no_improvement=tf.constant(no_improvement, tf.int32)
    )
    weights = state.weights._replace(
        params=tuple(p * scale for p in state.weights.params)
    )
    orders = arguments["orders"]
    if isinstance(orders, tf.Tensor):
        rng = np.random.default_rng(seed)
        orders = tf.constant(rng.permuted(orders.numpy(), axis=1))
    changed = dict(
        arguments,
        n_rows=tf.constant(min(n_rows, rows), tf.int32),
        n_epochs=tf.constant(n_epochs, tf.int32),
        hyper=tf.nest.map_structure(lambda v: v * scale, arguments["hyper"]),
        state=state._replace(weights=weights, progress=progress),
        data=arguments["data"]._replace(X=arguments["data"].X * scale),
        orders=orders,
    )
    assert compiled_computation(program, changed) == expected


def test_the_batch_size_is_compiled_in(recorded_program):
    """The batch size shapes each step: it is the one value compiled in (it
    is part of the program's key, :meth:`TrainingProgram.compilations`)."""
    program, arguments, expected = recorded_program
    changed = dict(arguments, batch_size=tf.constant(32, tf.int32))
    assert compiled_computation(program, changed) != expected


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_check_numerics_of_the_user_is_named_before_anything_runs(solver, small_digits):
    """tf.debugging.enable_check_numerics() would check the program's
    infinities (and XLA cannot compile its checks): refused, naming it."""
    from sk_keras_digits import KerasDigitClassifier

    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(4,), max_iter=2, solver=solver)
    fitted = KerasDigitClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    tf.debugging.enable_check_numerics()
    try:
        with pytest.raises(RuntimeError, match="enable_check_numerics"):
            est.fit(X, y)
    finally:
        tf.debugging.disable_check_numerics()
    assert fitted.predict(X).shape == (len(X),)


def test_a_fit_inside_a_tf_function_is_refused_clearly(small_digits):
    from sk_keras_digits import KerasDigitClassifier

    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(4,), max_iter=2)

    @tf.function
    def fit_in_graph():
        est.fit(X, y)
        return tf.constant(0)

    with pytest.raises(RuntimeError, match="inside a tf.function"):
        fit_in_graph()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_evicted_program_is_reused_not_rebuilt(small_digits, monkeypatch):
    """TensorFlow keeps every compiled XLA program for the life of the process
    (tensorflow/tensorflow#64170): a program rebuilt after its eviction would
    compile, and keep, another copy (8 to 16 MB each). Evicted programs are set
    aside and reused, so cycling more configurations than the cache holds
    builds each once."""
    from sk_keras_digits import KerasDigitClassifier, _training
    from sk_keras_digits._cache import LRUCache

    cache = LRUCache(maxsize=2)
    monkeypatch.setattr(_training, "PROGRAMS", cache)
    built = []
    init = backend.TrainingProgram.__init__

    def counting_init(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(backend.TrainingProgram, "__init__", counting_init)
    X, y = small_digits[0][:100], small_digits[1][:100]
    depths = (1, 2, 3)
    for _ in range(2):
        for depth in depths:
            KerasDigitClassifier(
                hidden_layer_sizes=(5,) * depth, max_iter=1, random_state=0
            ).fit(X, y)
    assert len(built) == len(depths)  # the old cache built 6
    assert len(cache) == 2 and len(cache.set_aside()) == 1

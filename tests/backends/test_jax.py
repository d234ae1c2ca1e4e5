"""The JAX backend: float64 in a scope of its own, nothing global changed."""

import json
import os
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if os.environ.get("KERAS_BACKEND") != "jax":
    pytest.skip("tests of the JAX backend (--backend jax)", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402

from sk_keras_digits import KerasDigitClassifier  # noqa: E402
from sk_keras_digits._backends import _handover  # noqa: E402
from sk_keras_digits._backends import jax as backend  # noqa: E402
from tests._helpers import (  # noqa: E402
    IGNORE_CONVERGENCE,
    QUICK,
    QUICK_ADAM,
    built,
    laid_out,
)
from tests._networks import dropout_network  # noqa: E402

pytestmark = IGNORE_CONVERGENCE


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fits_in_the_inputs_dtype_without_enabling_x64_globally(small_digits, dtype):
    X, y = small_digits
    assert not jax.config.jax_enable_x64
    est = KerasDigitClassifier(**QUICK).fit(X.astype(dtype), y)
    assert not jax.config.jax_enable_x64
    assert {c.dtype for c in est.coefs_ + est.intercepts_} == {np.dtype(dtype)}
    assert est.predict_proba(X.astype(dtype)).dtype == dtype
    assert est.model_.weights[0].dtype == np.dtype(dtype).name
    assert jnp.asarray(np.ones(2)).dtype == jnp.float32  # still JAX's default


def test_float64_stays_in_the_fitting_thread(small_digits):
    """Another thread computing meanwhile keeps JAX's default (float32)."""
    X, y = small_digits
    seen, done = set(), threading.Event()

    def watch():
        while not done.is_set():
            seen.add(str(jnp.asarray(np.ones(2)).dtype))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        KerasDigitClassifier(**QUICK).fit(X, y)
    finally:
        done.set()
        watcher.join()
    assert seen == {"float32"}


def test_float64_matches_numpy_where_keras_tanh_would_not():
    """Keras 3.15's ops.tanh computes float64 in float32 on JAX; ours keeps it."""
    x = np.linspace(-3, 3, 101)
    with backend.compute_scope("float64"):
        ours = np.asarray(backend.activation("tanh")(jnp.asarray(x)))
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.tanh(x), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("network", [None, dropout_network], ids=["dense", "dropout"])
def test_a_float32_fit_is_the_same_with_x64_enabled_by_the_user(network, small_digits):
    """The user's own x64 setting changes nothing of a float32 fit: not even a
    Dropout's masks (random draws), bit for bit."""
    X, y = small_digits
    X = X.astype(np.float32)
    params = {**QUICK, "network": network}
    plain = KerasDigitClassifier(**params).fit(X, y)
    with jax.enable_x64(True):
        under_x64 = KerasDigitClassifier(**params).fit(X, y)
        assert under_x64._state.weights.params[0].dtype == np.float32
        assert jax.config.jax_enable_x64  # the user's setting, left as it is
    for a, b in zip(
        plain._state.weights.params, under_x64._state.weights.params, strict=True
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_jax_nan_and_inf_checks_of_the_user_do_not_fail_a_fit(solver, small_digits):
    """The training program holds NaN and infinities by design; the user's
    checks stay on for their own code."""
    X, y = small_digits
    params = {**QUICK, "solver": solver, "max_iter": 3}
    plain = KerasDigitClassifier(**params).fit(X, y)
    with jax.debug_nans(True), jax.debug_infs(True):
        checked = KerasDigitClassifier(**params).fit(X, y)
        assert jax.config.jax_debug_nans and jax.config.jax_debug_infs
        np.testing.assert_array_equal(checked.predict_proba(X), plain.predict_proba(X))


def test_the_model_and_its_file_under_another_prng(small_digits, tmp_path):
    """``model_`` draws nothing (its weights are the fit's): a PRNG Keras does
    not support ("rbg") builds it and saves it."""
    from sk_keras_digits import load, save

    X, y = small_digits
    est = KerasDigitClassifier(**QUICK).fit(X, y)
    with jax.default_prng_impl("rbg"):
        assert est.model_.count_params() == sum(
            p.size for p in est._state.weights.params
        )
        save(est, tmp_path / "rbg.skd")
    np.testing.assert_array_equal(
        load(tmp_path / "rbg.skd").predict_proba(X), est.predict_proba(X)
    )


def test_a_program_compiles_once_per_shape(small_digits):
    from sk_keras_digits import _training

    X, y = small_digits
    _training.PROGRAMS.clear()
    for seed in range(3):
        KerasDigitClassifier(**dict(QUICK, random_state=seed)).fit(X, y)
    (program,) = [p for p in _training.PROGRAMS.values() if hasattr(p, "_run")]
    assert built(program) == 1


def test_padded_data_train_exactly_as_mlpclassifier(small_digits):
    """Rows padded to a bucket, a masked last batch: MLPClassifier's weights."""
    from sklearn.neural_network import MLPClassifier

    X, y = small_digits
    X, y = X[:290], y[:290]  # padded to 320 rows; batches of 64, then 34
    for solver in ("sgd", "adam"):
        params = dict(
            hidden_layer_sizes=(9,),
            solver=solver,
            batch_size=64,
            shuffle=False,
            max_iter=8,
            random_state=0,
            learning_rate_init=0.05,
        )
        ours = KerasDigitClassifier(**params).fit(X, y)
        theirs = MLPClassifier(**params).fit(X, y)
        for a, b in zip(ours.coefs_, theirs.coefs_, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


def test_fits_on_data_sizes_of_one_bucket_share_one_compilation(small_digits):
    """Folds of a grid search (257 to 300 rows, padded to 320) run one program."""
    from sk_keras_digits import _training

    X, y = small_digits
    params = dict(hidden_layer_sizes=(11,), solver="sgd", max_iter=2, random_state=0)
    _training.PROGRAMS.clear()
    KerasDigitClassifier(**params).fit(X[:260], y[:260])
    (program,) = [p for p in _training.PROGRAMS.values() if hasattr(p, "_run")]
    assert program.padded and built(program) == 1
    for n in (257, 270, 288, 300):
        KerasDigitClassifier(**params).fit(X[:n], y[:n])
    assert built(program) == 1


# ------------------------------------------------- persistent compilation cache
def _fresh_fit(X, y, **params):
    """Fit in a fresh program cache: as a new process would."""
    from sk_keras_digits import _training

    _training.PROGRAMS.clear()
    est = KerasDigitClassifier(**params).fit(X, y)
    (program,) = [p for p in _training.PROGRAMS.values() if hasattr(p, "_run")]
    return est, program


def _cache_entries(folder):
    return sorted(folder.glob("*.xla"))


def test_executables_are_read_back_from_the_persistent_cache(
    small_digits, tmp_path, monkeypatch
):
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", str(tmp_path))
    X, y = small_digits
    params = dict(hidden_layer_sizes=(13,), max_iter=3, random_state=0)
    first, program = _fresh_fit(X, y, **params)
    assert (program.compilations(), program.loaded()) == (1, 0)
    assert len(_cache_entries(tmp_path)) == 1  # the training program
    again, program = _fresh_fit(X, y, **params)
    assert (program.compilations(), program.loaded()) == (0, 1)
    for a, b in zip(first.coefs_, again.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_cache_entry_is_compiled_again(small_digits, tmp_path, monkeypatch):
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", str(tmp_path))
    X, y = small_digits
    params = dict(hidden_layer_sizes=(13,), max_iter=3, random_state=1)
    first, _ = _fresh_fit(X, y, **params)
    for path in _cache_entries(tmp_path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the machine code
        path.write_bytes(bytes(data))
    again, program = _fresh_fit(X, y, **params)
    assert (program.compilations(), program.loaded()) == (1, 0)
    for a, b in zip(first.coefs_, again.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_cache_can_be_turned_off_and_skips_custom_networks(
    small_digits, tmp_path, monkeypatch
):
    X, y = small_digits
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", "off")
    _fresh_fit(X, y, hidden_layer_sizes=(13,), max_iter=2, random_state=0)
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", str(tmp_path))
    KerasDigitClassifier(network=dropout_network, **QUICK_ADAM).fit(X, y)
    assert not _cache_entries(tmp_path)  # a user's network is never persisted


#: Fits of every kind of default-network program (stochastic solvers with and
#: without early stopping, partial_fit, lbfgs, the regressor), then what
#: they predict, whether Keras was imported by then, and model_'s outputs.
_CACHED_FITS = """
import hashlib, json, sys
import numpy as np
from sklearn.datasets import load_digits
from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor

X, y = load_digits(return_X_y=True)
X, y = X[:200] / 16, y[:200]
fits = [
    KerasDigitClassifier(hidden_layer_sizes=(9,), max_iter=3, random_state=0)
    .fit(X, y).partial_fit(X, y),
    KerasDigitClassifier(solver="sgd", early_stopping=True, max_iter=4,
                         random_state=0).fit(X, y),
    KerasDigitClassifier(solver="lbfgs", max_iter=4, random_state=0).fit(X, y),
    KerasDigitRegressor(max_iter=3, random_state=0).fit(X.astype(np.float32), y),
]
digest = hashlib.sha256()
for est in fits:
    for coef in est.coefs_:
        digest.update(coef.tobytes())
    digest.update(est.predict(X[:50].astype(est.coefs_[0].dtype)).tobytes())
keras_imported = "keras" in sys.modules
model = fits[0].model_  # built on first access: imports Keras
same = np.allclose(model.predict(X, verbose=0), fits[0].predict_proba(X), atol=1e-6)
print(json.dumps([keras_imported, digest.hexdigest(), bool(same)]))
"""


def test_a_fit_read_from_the_cache_imports_no_keras(run_on, tmp_path, monkeypatch):
    """Keras is imported to trace a program; a fit whose programs are in the
    persistent cache runs without it, to the same bits, and model_ imports it."""
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", str(tmp_path))
    runs = []
    for _ in range(2):
        result = run_on("jax", _CACHED_FITS)
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(json.loads(result.stdout.splitlines()[-1]))
    (traced, digest, same), (cached, again, same_again) = runs
    assert traced and not cached
    assert digest == again
    assert same and same_again


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    dtype=st.sampled_from(["float32", "float64"]),
    offset=st.integers(0, 3),
    order=st.sampled_from(["C", "F", "strided"]),
    large=st.booleans(),
)
def test_data_arrays_copy_any_array_exactly(shape, dtype, offset, order, large):
    """Any layout and alignment, through DLPack (the large path, its threshold
    lowered) or ``device_put``: the same values in the asked dtype, in a copy
    the caller's array does not share, usable by a compiled program."""
    array = laid_out(shape, offset, order)
    threshold = 0 if large else _handover.LARGE_ARRAY_BYTES
    with pytest.MonkeyPatch.context() as mp, jax.enable_x64(dtype == "float64"):
        mp.setattr(_handover, "LARGE_ARRAY_BYTES", threshold)
        (on_device,) = backend._on_device([array], dtype)
        expected = array.astype(dtype)
        array += 1.0  # the caller changes its array: the device holds a copy
        assert on_device.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(on_device), expected)
        doubled = jax.jit(lambda a: a * 2)(on_device)
        np.testing.assert_array_equal(np.asarray(doubled), expected * 2)


# ------------------------------------------------ networks JAX cannot trace
class HostIdentity(keras.layers.Layer):
    """Passes its input through NumPy: JAX cannot trace it, XLA never sees it."""

    def call(self, x):
        return keras.ops.convert_to_tensor(np.asarray(x))

    def compute_output_shape(self, shape):
        return shape


class BrokenLayer(keras.layers.Layer):
    """Fails when it computes: an error of the network's own."""

    def call(self, x):
        raise ValueError("this layer is broken")

    def compute_output_shape(self, shape):
        return shape


def _network(first_layer):
    def build(n_features_in, n_outputs, output_activation):
        inputs = keras.Input((n_features_in,))
        x = inputs if first_layer is None else first_layer()(inputs)
        hidden = keras.layers.Dense(8, activation="relu")(x)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
        return keras.Model(inputs, outputs)

    return build


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", learning_rate_init=0.01),
        dict(solver="sgd", early_stopping=True, n_iter_no_change=3),
        dict(solver="lbfgs"),
    ],
    ids=["adam", "sgd-early-stopping", "lbfgs"],
)
def test_a_network_jax_cannot_trace_trains_op_by_op_with_one_warning(
    small_digits, params
):
    """The same fit as the traced network's, outside XLA, with one warning
    that names JAX's reason; its predictions fall back too."""
    X, y = small_digits
    common = dict(max_iter=8, random_state=0, **params)
    traced = KerasDigitClassifier(network=_network(None), **common).fit(X, y)
    with pytest.warns(UserWarning, match="XLA cannot compile") as record:
        eager = KerasDigitClassifier(network=_network(HostIdentity), **common)
        eager.fit(X, y)
    [warning] = [w for w in record if "XLA cannot compile" in str(w.message)]
    assert "traced array" in str(warning.message)  # JAX's reason, not Keras'
    assert eager.n_iter_ == traced.n_iter_
    ours, theirs = eager.coefs_ + eager.intercepts_, traced.coefs_ + traced.intercepts_
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(eager.loss_curve_, traced.loss_curve_, rtol=1e-9)
    # Its predictions run op by op too (a program of their own, shared by the
    # process: it warned at its own first call, maybe in an earlier test).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        proba = eager.predict_proba(X)
    np.testing.assert_allclose(proba, traced.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_a_network_jax_cannot_differentiate_is_refused_clearly(small_digits):
    """A Python read of a value that depends on the weights: neither traced
    nor differentiated op by op. The error names the parameter and the reason;
    a fitted estimator is left as it was."""

    def build(n_features_in, n_outputs, output_activation):
        inputs = keras.Input((n_features_in,))
        hidden = HostIdentity()(keras.layers.Dense(8, activation="relu")(inputs))
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
        return keras.Model(inputs, outputs)

    X, y = small_digits
    est = KerasDigitClassifier(**QUICK).fit(X, y)
    before = est.predict_proba(X)
    est.set_params(network=build)
    with pytest.warns(UserWarning, match="XLA cannot compile"):
        with pytest.raises(ValueError, match="network: JAX cannot differentiate"):
            est.fit(X, y)
    est.set_params(network=None)
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_an_error_of_the_network_itself_is_raised_as_it_is(small_digits, recwarn):
    X, y = small_digits
    est = KerasDigitClassifier(network=_network(BrokenLayer), **QUICK_ADAM)
    with pytest.raises(ValueError, match="this layer is broken"):
        est.fit(X, y)
    assert not [w for w in recwarn if "XLA cannot compile" in str(w.message)]


# ------------------------------------------------------- the layers' product
@settings(max_examples=20, deadline=None)
@given(
    rows=st.integers(1, 300),
    n_in=st.integers(1, 130),
    n_out=st.integers(1, 20),
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_dense_product_has_the_product_s_value_and_gradients(rows, n_in, n_out, dtype):
    """Small float64 products take their weights' gradient from a transposed
    copy (YNNPACK's path), the others XLA's own: the same value and the same
    gradients as ``x @ w`` differentiated by JAX, to the rounding of sums."""
    rng = np.random.default_rng(rows * 1000 + n_in * 10 + n_out)
    x = rng.standard_normal((rows, n_in))
    w = rng.standard_normal((n_in, n_out))
    g = rng.standard_normal((rows, n_out))

    def loss(product):
        return lambda x, w: jnp.sum(product(x, w) * g.astype(dtype))

    with backend.compute_scope(dtype):
        args = (jnp.asarray(x, dtype), jnp.asarray(w, dtype))
        ours = jax.jit(jax.value_and_grad(loss(backend.dense_product), (0, 1)))(*args)
        plain = jax.jit(jax.value_and_grad(loss(jnp.matmul), (0, 1)))(*args)
    tol = 1e-12 if dtype == "float64" else 2e-5
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        assert np.asarray(a).dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(rows, n_in))


def test_jit_disabled_by_the_user_gives_a_clear_error(small_digits, monkeypatch):
    """A new program needs jit; the user's setting is named, and left as it is."""
    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(3,), max_iter=1, batch_size=37)
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", "0")
    with jax.disable_jit():
        with pytest.raises(RuntimeError, match="jax_disable_jit is True"):
            est.fit(X[:41], y[:41])
        assert jax.config.jax_disable_jit


class _Units:
    """A custom network of ``units`` hidden units (a distinct program each)."""

    def __init__(self, units):
        self.units = units

    def __call__(self, n_features_in, n_outputs, output_activation):
        return keras.Sequential(
            [
                keras.Input((n_features_in,)),
                keras.layers.Dense(self.units, activation="relu"),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_evicted_program_is_freed(small_digits, monkeypatch):
    """On JAX an evicted program is freed with its executables (unlike
    TensorFlow's, which are set aside). What a distinct custom network leaves
    behind is JAX's own: its per-shape caches of the eager operations that build
    and probe the Keras model, and of traces (docs/performance)."""
    import gc
    import weakref

    from sk_keras_digits import _training
    from sk_keras_digits._cache import LRUCache

    cache = LRUCache(maxsize=1)
    monkeypatch.setattr(_training, "PROGRAMS", cache)
    built = []
    init = backend.TrainingProgram.__init__

    def recording_init(self, *args, **kwargs):
        built.append(weakref.ref(self))
        init(self, *args, **kwargs)

    monkeypatch.setattr(backend.TrainingProgram, "__init__", recording_init)
    X, y = small_digits[0][:100], small_digits[1][:100]
    for units in (3, 5, 7):
        KerasDigitClassifier(network=_Units(units), max_iter=1, random_state=0).fit(
            X, y
        )
    gc.collect()
    assert len(built) == 3 and sum(ref() is not None for ref in built) == 1
    assert cache.set_aside() == []

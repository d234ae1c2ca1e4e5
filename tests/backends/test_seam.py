"""The backend seam: one module per backend, chosen by Keras' configuration."""

import importlib
import inspect
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_keras_digits import KerasDigitClassifier, _backends
from tests._helpers import TENSORFLOW_SESSION
from tests._networks import SmallDense

#: What every backend module implements (see ``sk_keras_digits._backends``).
INTERFACE = (
    "NAME",
    "TrainingProgram",
    "activation",
    "bind_optimizer",
    "build_scope",
    "compute_scope",
    "start",
    "to_numpy",
)
PROGRAM_METHODS = (
    "predict",
    "objective",
    "prepare",
    "run",
    "to_numpy",
    "compilations",
)


def test_the_configured_backend_is_the_one_used(backend):
    module = _backends.current()
    assert module.NAME == backend == _backends.name()
    assert module.__name__ == _backends.MODULES[backend]


#: JSON values a keras.json may hold, of any shape.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["backend", "floatx", "x"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)


@TENSORFLOW_SESSION
@settings(max_examples=40, deadline=None)
@given(
    content=st.one_of(
        st.binary(max_size=64),
        _JSON.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda backend, rest: json.dumps({**rest, "backend": backend}).encode(),
            st.text(max_size=12) | st.sampled_from(["jax", "tensorflow", "torch"]),
            st.dictionaries(st.sampled_from(["floatx", "epsilon"]), _JSON, max_size=2),
        ),
    )
)
def test_a_keras_json_names_the_backend_else_tensorflow(content):
    """Any file content: the backend it names, as Keras reads it, else Keras'
    default; never an error. A file too large to read gives None (Keras is
    then asked)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "keras.json")
        with open(path, "wb") as f:
            f.write(content)
        found = _backends._configured_in_file.__wrapped__(path)
        with open(path, "ab") as f:
            f.write(b" " * (_backends.MAX_CONFIG_BYTES + 1 - len(content)))
        assert _backends._configured_in_file.__wrapped__(path) is None
        missing = os.path.join(folder, "absent", "keras.json")
        assert _backends._configured_in_file.__wrapped__(missing) == "tensorflow"
    try:
        config = json.loads(content.decode())
    except ValueError:
        config = None
    named = config.get("backend") if isinstance(config, dict) else None
    assert found == (named if isinstance(named, str) and named else "tensorflow")


@TENSORFLOW_SESSION
def test_the_backend_is_known_before_keras_is_imported(run_on, tmp_path, monkeypatch):
    """Read from keras.json as Keras reads it, without importing Keras."""
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    result = run_on(
        "",  # KERAS_BACKEND empty: Keras takes keras.json's backend
        """
        import sys
        from sk_keras_digits import _backends
        before = _backends.name(), _backends.current().NAME, "keras" in sys.modules
        import keras
        print(*before, keras.backend.backend(), _backends.name())
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["jax", "jax", "False", "jax", "jax"]


def test_the_backend_module_implements_the_seam():
    module = _backends.current()
    for name in INTERFACE:
        assert hasattr(module, name), name
    for name in PROGRAM_METHODS:
        assert inspect.isfunction(getattr(module.TrainingProgram, name)), name


def test_only_the_backend_modules_import_a_backend_library():
    """Everything else is written once, against Keras and NumPy (a backend
    module's own parts, such as ``_backends/jax_executables.py``, are part of
    it)."""
    import pathlib

    import sk_keras_digits

    root = pathlib.Path(sk_keras_digits.__file__).parent
    for path in root.rglob("*.py"):
        backend = path.stem.split("_")[0]
        if path.parent.name == "_backends" and backend in _backends.MODULES:
            continue
        text = path.read_text()
        for library in ("tensorflow", "jax"):
            for form in (f"import {library}", f"from {library}"):
                assert form not in text, f"{path.relative_to(root)} has {form!r}"


def test_an_unsupported_backend_is_refused_at_fit_naming_it(run_on):
    """Keras' NumPy backend cannot train: fit says so, naming the backend."""
    result = run_on(
        "numpy",
        """
        import json
        import numpy as np
        import sk_keras_digits
        from sk_keras_digits import KerasDigitClassifier
        X = np.random.RandomState(0).rand(20, 4); y = np.arange(20) % 2
        est = KerasDigitClassifier(max_iter=2)
        try:
            est.fit(X, y)
        except RuntimeError as exc:
            print(json.dumps([type(exc).__name__, str(exc), hasattr(est, "_state")]))
        """,
    )
    assert result.returncode == 0, result.stderr
    kind, message, fitted = json.loads(result.stdout)
    assert kind == "RuntimeError" and not fitted
    assert "'numpy' backend" in message
    assert "'tensorflow'" in message and "'jax'" in message


def test_importing_the_package_imports_no_backend(run_on, backend):
    """On the session's backend (CI runs a session on each)."""
    result = run_on(
        backend,
        """
        import sys
        import sk_keras_digits, sk_keras_digits.tutorial
        from sk_keras_digits import KerasDigitClassifier
        KerasDigitClassifier().get_params()
        print(sorted(m for m in ("tensorflow", "jax", "keras") if m in sys.modules))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


def test_on_jax_nothing_imports_tensorflow(run_on, tmp_path, backend):
    """Fit, predict, model_, save and load, for default and custom networks."""
    if backend != "jax":
        pytest.skip("runs in the JAX session (--backend jax)")
    result = run_on(
        "jax",
        f"""
        import sys
        import keras
        import numpy as np
        from sklearn.datasets import load_digits
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import MinMaxScaler
        from sk_keras_digits import KerasDigitClassifier, load, save

        def network(n_features_in, n_outputs, output_activation):
            return keras.Sequential([
                keras.Input((n_features_in,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ])

        X, y = load_digits(return_X_y=True)
        X, y = X[:200] / 16, y[:200]
        for i, params in enumerate([
            dict(max_iter=3),
            dict(network=network, max_iter=3),
            dict(solver="lbfgs", max_iter=3),
            dict(solver=keras.optimizers.Adam(), max_iter=3, early_stopping=True),
        ]):
            est = KerasDigitClassifier(random_state=0, **params).fit(X, y)
            est.predict_proba(X)
            est.model_.predict(X, verbose=0)
            path = {str(tmp_path)!r} + f"/model{{i}}.skd"
            save(est, path)
            load(path).predict(X)
        pipe = make_pipeline(MinMaxScaler(), KerasDigitClassifier(max_iter=2))
        pipe.fit(X, y)
        print("tensorflow" in sys.modules, keras.backend.backend())
        """,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["False", "jax"]


def test_backend_modules_are_named_for_their_backend():
    for name, module in _backends.MODULES.items():
        assert module.rsplit(".", 1)[-1] == name
        spec = importlib.util.find_spec(module)
        assert spec is not None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd"),
        dict(solver="lbfgs"),
        dict(solver="adam", early_stopping=True),
        dict(network=SmallDense()),
    ],
    ids=["sgd", "lbfgs", "adam-early-stopping", "custom-network"],
)
def test_fitted_arrays_are_writable_numpy_of_their_own(small_digits, params):
    """As MLPClassifier's: a user may edit ``coefs_`` in place (prune a weight),
    and prediction follows; no array is a read-only view of a backend buffer."""
    X, y = small_digits
    est = KerasDigitClassifier(max_iter=3, random_state=0, **params).fit(X, y)
    if params.get("solver") != "lbfgs" and "early_stopping" not in params:
        est.partial_fit(X, y)
    arrays = [*est.coefs_, *est.intercepts_]
    assert all(type(a) is np.ndarray and a.flags.writeable for a in arrays)
    if "network" in params:
        return
    est.coefs_[-1][:] = 0
    est.intercepts_[-1][:] = np.arange(est.intercepts_[-1].size)
    np.testing.assert_array_equal(
        est.predict(X), est.classes_[np.argmax(est.intercepts_[-1])]
    )

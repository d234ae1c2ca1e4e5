"""Shared fixtures (small slices of scikit-learn's 8x8 digits) and the backend.

The tests run on the Keras backend chosen with ``--backend`` (default:
``KERAS_BACKEND``, else TensorFlow), set before anything imports Keras;
subprocesses started by the tests inherit it. ``--backend jax`` without paths
runs :data:`JAX_SUITE`, the tests of everything that depends on the backend
(CI runs the whole suite on TensorFlow, then this one on JAX); give paths to
run others.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Quiet TensorFlow's C++ logging in the test run; set before TensorFlow loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from sk_keras_digits._tutorial import N_TRAIN, TUTORIAL_PARAMS  # noqa: E402

# Property-based tests (hypothesis) share these profiles. "ci", the default, is
# reproducible (a fixed seed per test, no example database) and bounded: each
# test sets its own max_examples, sized to the suite's time budget, and fits
# are slow (no deadline, no too_slow health check). "thorough" explores anew
# with more examples: HYPOTHESIS_PROFILE=thorough pytest tests/test_parameters.py
_PROFILE = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", derandomize=True, max_examples=50, **_PROFILE)
settings.register_profile("thorough", max_examples=500, **_PROFILE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: The backends the tests can run on.
BACKENDS = ("tensorflow", "jax")

#: What ``--backend jax`` runs when no paths are given (relative to the root):
#: the tests of the estimators, the scikit-learn twins, the solvers, the
#: training programs, the callbacks and the backends (model files saved on one
#: backend and loaded on the other among them), sized so that CI runs the
#: whole suite on TensorFlow and this on JAX within its 20 minutes. The other
#: tests also pass on JAX (give their paths to run them): scikit-learn's
#: estimator checks (``tests/test_common.py``) and own MLP tests, the model
#: files' round trips, the Dask cluster, network builders, docstring examples,
#: pipeline files and pickling.
JAX_SUITE = (
    "tests/backends",
    "tests/test_base.py",
    "tests/test_callbacks.py",
    "tests/test_classifier.py",
    "tests/test_keras_optimizers.py",
    "tests/test_losses.py",
    "tests/test_regressor.py",
    "tests/test_solvers.py",
    "tests/test_training.py",
)

#: Test files that take minutes, heaviest first: they run first, so that
#: pytest-xdist's two workers (each takes whole files: ``--dist loadfile`` in
#: pyproject.toml) finish together instead of one waiting on the other.
SLOW_FIRST = (
    "tests/test_sklearn_mlp.py",
    "tests/test_common.py",
    "tests/test_docs.py",
    "tests/test_parameters.py",
    "tests/backends/test_portability.py",
    "tests/test_distributed.py",
    "tests/test_benchmarks.py",
    "tests/test_resources.py",
    "tests/test_classifier.py",
    "tests/test_regressor.py",
    "tests/test_training.py",
    "tests/persistence/test_round_trips.py",
    "tests/persistence/test_codecs.py",
    "tests/test_network_builder.py",
    "tests/cli/test_job.py",
)

_ROOT = Path(__file__).resolve().parent.parent
_CACHE_FOLDER = pytest.StashKey[str]()
_SUITE_ONLY = "SK_KERAS_DIGITS_TEST_JAX_SUITE_ONLY"


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend to test on (default: KERAS_BACKEND, else tensorflow)",
    )


def pytest_configure(config):
    backend = config.getoption("--backend") or os.environ.get(
        "KERAS_BACKEND", "tensorflow"
    )
    os.environ["KERAS_BACKEND"] = backend
    # Whether this session runs JAX_SUITE only: decided by the main process
    # (a run without paths) and handed to pytest-xdist's workers, whose own
    # arguments always name the paths.
    if not hasattr(config, "workerinput"):
        suite_only = (
            backend == "jax"
            and config.args_source == pytest.Config.ArgsSource.TESTPATHS
        )
        os.environ[_SUITE_ONLY] = "1" if suite_only else "0"
    # The persistent compilation cache of the session (and of the processes
    # it starts) is a folder of its own, removed at the end: the tests never
    # read or write the user's cache.
    if "SK_KERAS_DIGITS_COMPILE_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="sk-keras-digits-xla-")
        config.stash[_CACHE_FOLDER] = folder
        os.environ["SK_KERAS_DIGITS_COMPILE_CACHE"] = folder


def pytest_unconfigure(config):
    folder = config.stash.get(_CACHE_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("SK_KERAS_DIGITS_COMPILE_CACHE", None)


def pytest_collection_modifyitems(config, items):
    """Put the files of :data:`SLOW_FIRST` first, in its order (a stable sort:
    each file's tests, and the other files, keep theirs)."""
    rank = {_ROOT / name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(Path(item.fspath), len(rank)))


def pytest_ignore_collect(collection_path, config):
    """Leave out another backend's module, and on JAX what is not in its suite."""
    backend = os.environ["KERAS_BACKEND"]
    path = Path(collection_path).resolve()
    backends = _ROOT / "sk_keras_digits" / "_backends"
    if path.parent == backends and path.stem in BACKENDS and path.stem != backend:
        return True  # importing it would import another backend
    if os.environ.get(_SUITE_ONLY) != "1":
        return None
    suite = [_ROOT / entry for entry in JAX_SUITE]
    if path.is_dir():
        keep = any(p == path or path in p.parents or p in path.parents for p in suite)
    else:
        keep = any(p == path or p in path.parents for p in suite)
    return None if keep else True


@pytest.fixture(scope="session")
def backend():
    """The name of the backend Keras runs on in this test session."""
    return os.environ["KERAS_BACKEND"]


@pytest.fixture(scope="session")
def digits():
    """All 1797 digits as float64 (X, y)."""
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y


@pytest.fixture(scope="session")
def tutorial_split(digits):
    """The tutorial's split: the first 1000 digits train, the rest test."""
    X, y = digits
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


@pytest.fixture(scope="session")
def small_digits(digits):
    """300 digits scaled to [0, 1], for quick fits."""
    X, y = digits
    return X[:300] / 16.0, y[:300]


@pytest.fixture(scope="session")
def digit_targets(small_digits):
    """Numeric targets of the 300 small digits, for regressors.

    ``X`` and ``y`` (the digit as a number: a count, for the Poisson loss),
    and ``Y``: two target columns (the digit, and the mean ink times 10).
    """
    X, labels = small_digits
    y = labels.astype(np.float64)
    Y = np.column_stack([y, 10 * X.mean(axis=1)])
    return X, y, Y


@pytest.fixture
def tutorial_params():
    return dict(TUTORIAL_PARAMS)

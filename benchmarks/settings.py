"""Settings of the benchmarks: backends, repeats, targets, the peers' columns, paths.

Importing it imports neither Keras nor a backend: ``run.py`` sets
``KERAS_BACKEND`` from its ``--backend`` option after importing it.
"""

import os
from pathlib import Path

from sk_keras_digits.tutorial import N_TRAIN, TUTORIAL_PARAMS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_RST = ROOT / "docs" / "benchmark_table.rst"

#: The backends benchmarked (``--backend``), in the order of the RST columns,
#: with the names the tables print.
BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX"}

#: The distributions whose versions a run records, beside the common ones, by
#: backend.
BACKEND_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "scikeras"),
    "jax": ("jax", "jaxlib"),
}

#: The peers that need a given backend, with the note printed when skipped.
PEER_BACKENDS = {
    "scikeras": (
        "tensorflow",
        "scikeras' KerasClassifier needs TensorFlow (it imports it)",
    ),
}


def default_backend():
    """The backend of a run without ``--backend``: ``KERAS_BACKEND``, else TensorFlow.

    Returns
    -------
    name : str
        The value of ``KERAS_BACKEND`` when it is set and not empty (which
        ``run.py`` refuses if it is not one of :data:`BACKENDS`), else
        ``"tensorflow"``.
    """
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def default_out(backend, quick=False):
    """The JSON file a run writes by default.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`.
    quick : bool, default=False
        A ``--quick`` smoke run.

    Returns
    -------
    path : Path
        ``benchmarks/results/latest-<backend>.json``, or ``quick-<backend>.json``
        for a smoke run: a run on each backend keeps its own file.
    """
    return RESULTS / f"{'quick' if quick else 'latest'}-{backend}.json"


#: The tutorial's network and solver settings, in MLPClassifier's names, and
#: its split: the first SPLIT digits train, the rest test.
TUTORIAL = TUTORIAL_PARAMS
SPLIT = N_TRAIN

#: Hidden layer sizes searched by the GridSearchCV benchmark.
GRID_SIZES = [(5,), (10,), (15,), (30,), (60,)]

#: Repeats and sizes of a full run and of a ``--quick`` smoke run.
SETTINGS = {
    "full": {
        "fit_repeats": 7,
        "peer_fit_repeats": 3,
        "first_fit_repeats": 3,
        "predict_calls_1": 200,
        "predict_calls_797": 50,
        "peer_predict_calls_1": 30,
        "peer_predict_calls_797": 10,
        "grid_sizes": GRID_SIZES,
        "grid_cv": 5,
        "grid_repeats": 3,
        "memory_warmup": 20,
        "memory_fits": 300,
        "memory_max_iter": 10,
        "accuracy_seeds": 10,
        "cold_script_repeats": 5,
        "large_fit_repeats": 5,
        "large_fit_samples": 55_000,
        "regressor_fit_repeats": 7,
        "regressor_predict_calls": 200,
    },
    "quick": {
        "fit_repeats": 3,
        "peer_fit_repeats": 1,
        "first_fit_repeats": 1,
        "predict_calls_1": 50,
        "predict_calls_797": 10,
        "peer_predict_calls_1": 5,
        "peer_predict_calls_797": 2,
        "grid_sizes": GRID_SIZES[:2],
        "grid_cv": 3,
        "grid_repeats": 1,
        "memory_warmup": 5,
        "memory_fits": 20,
        "memory_max_iter": 5,
        "accuracy_seeds": 2,
        "cold_script_repeats": 2,
        "large_fit_repeats": 1,
        "large_fit_samples": 5_500,
        "regressor_fit_repeats": 3,
        "regressor_predict_calls": 50,
    },
}

#: The targets (issues 3, 16 and 17): (key, figure, kind, limit). ``ratio``: ours /
#: MLP <= limit; ``absolute``: ours <= limit (MB); ``difference``: |ours -
#: reference| <= limit, the reference given by :data:`COMPARED_ACCURACY`. A
#: limit may be a dict of limits by backend; None: a figure reported with its
#: ratio, without a target.
TARGETS = [
    ("fit", "fit, tutorial configuration, 2nd and later fits", "ratio", 0.35),
    (
        "keras_optimizer",
        "fit, Keras optimizer (keras Adam) vs solver='adam'",
        "ratio",
        1.3,
    ),
    (
        "first_fit",
        "first fit in a process (after imports), empty compilation cache",
        "ratio",
        4.0,
    ),
    (
        "first_fit_warm",
        "first fit in a process (after imports), warm compilation cache",
        "ratio",
        2.0,
    ),
    (
        "cold_script",
        "cold script: python -c importing, fitting and scoring (warm cache)",
        "ratio",
        {"tensorflow": 3.0, "jax": 2.0},
    ),
    (
        "lbfgs_fit",
        "fit, tutorial network, solver='lbfgs' (200 iterations)",
        "ratio",
        1.0,
    ),
    ("predict_proba_1", "predict_proba, 1 row", "ratio", 1.0),
    ("predict_proba_797", "predict_proba, 797 rows", "ratio", 1.0),
    ("grid_search", "GridSearchCV, 5 hidden sizes x 5 folds, Pipeline", "ratio", 0.5),
    (
        "large_adam",
        "fit, 55,000 x 784, (256, 128), adam, 5 epochs, float32",
        "ratio",
        0.6,
    ),
    (
        "regressor_fit",
        "regressor fit, diabetes 331 x 10, sgd, 100 epochs (vs MLPRegressor)",
        "ratio",
        1.0,
    ),
    (
        "regressor_predict",
        "regressor predict, 111 rows (vs MLPRegressor)",
        "ratio",
        1.0,
    ),
    ("check_estimator", "check_estimator, whole suite", "ratio", 3.0),
    ("memory", "RSS growth over 300 consecutive fits", "absolute", 50.0),
    (
        "accuracy",
        "mean test accuracy over seeds (vs the reference Keras loop)",
        "difference",
        0.01,
    ),
]

#: The large fit of :data:`TARGETS` ``large_adam``: MNIST's shape (random
#: data, 10 classes), its network, solver and epochs.
LARGE_FIT = {
    "n_samples": 55_000,
    "n_features": 784,
    "hidden_layer_sizes": (256, 128),
    "solver": "adam",
    "max_iter": 5,
    "batch_size": 200,
}

#: The regressor figures of :data:`TARGETS` (``regressor_fit``,
#: ``regressor_predict``): ``KerasDigitRegressor`` against ``MLPRegressor``
#: with these parameters, on scikit-learn's diabetes data split by
#: ``train_test_split(random_state=0)`` (331 training rows, 111 test rows,
#: 10 features), ``X`` and ``y`` standardised on the training rows. Without
#: shuffling and with the stopping rule out of reach (``tol=0``,
#: ``n_iter_no_change=max_iter``), the two run the same 100 epochs of the
#: same mini-batches from the same initial weights: the same work.
REGRESSOR = {
    "hidden_layer_sizes": (10,),
    "solver": "sgd",
    "learning_rate_init": 0.01,
    "momentum": 0.9,
    "batch_size": 32,
    "alpha": 1.0,
    "max_iter": 100,
    "shuffle": False,
    "tol": 0.0,
    "n_iter_no_change": 100,
}

#: For the ``ratio`` targets: the entry of ``times`` the ratio divides by, when
#: it is not MLPClassifier's ("mlp").
RATIO_REFERENCE = {"keras_optimizer": "adam"}

#: For the ``difference`` targets: (ours, reference) entries of the accuracy
#: means. "core" is the reference Keras loop (:func:`core_loop_fit`): the
#: estimator's training semantics written the plain way, one Keras step per
#: batch driven from Python, from the same initial weights. The tutorial's own
#: ``model.fit`` ("keras": no L2 penalty, no Nesterov momentum, float32, Keras'
#: initialisers) and ours on Keras' initialisers ("ours_keras_init") are
#: reported beside it, without a target.
COMPARED_ACCURACY = {"accuracy": ("ours", "core")}

#: Columns of the peers table: (key in a figure's ``times``, header).
PEERS = [
    ("ours", "ours"),
    ("mlp", "MLPClassifier"),
    ("keras", "plain Keras"),
    ("sklearn_wrapper", "SKLearnClassifier"),
    ("scikeras", "scikeras"),
]

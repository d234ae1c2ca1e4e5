"""Benchmark sk_keras_digits against MLPClassifier, plain Keras and the wrappers.

One command measures, in one process and on the same data (scikit-learn's 8x8
digits, the tutorial's split: the first 1000 digits train, the other 797
test), ``KerasDigitClassifier`` against ``MLPClassifier`` with the same
settings, and (unless ``--skip-peers``) the tutorial's plain Keras code,
``keras.wrappers.SKLearnClassifier`` and scikeras' ``KerasClassifier`` on the
same network. It prints a table of the figures with their targets, a table of
absolute times, writes every number to JSON and the table to
``docs/benchmark_table.rst``::

    python benchmarks/run.py                        # full run, a few minutes
    python benchmarks/run.py --quick --skip-peers   # smoke run, ~40 s

See ``benchmarks/README.md`` for what each figure means.
"""

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

from sk_keras_digits._tutorial import N_TRAIN, TUTORIAL_PARAMS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"
DEFAULT_QUICK_OUT = ROOT / "benchmarks" / "results" / "quick.json"
DEFAULT_RST = ROOT / "docs" / "benchmark_table.rst"

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
    },
}

#: The targets of issue 3: (key, figure, kind, limit). ``ratio``: ours / MLP
#: <= limit; ``absolute``: ours <= limit (MB); ``difference``: |ours -
#: reference| <= limit, the reference given by :data:`COMPARED_ACCURACY`.
TARGETS = [
    ("fit", "fit, tutorial configuration, 2nd and later fits", "ratio", 1.0),
    (
        "keras_optimizer",
        "fit, Keras optimizer (keras Adam) vs solver='adam'",
        "ratio",
        1.3,
    ),
    ("first_fit", "first fit in a process (after imports)", "ratio", 8.0),
    ("predict_proba_1", "predict_proba, 1 row", "ratio", 3.0),
    ("predict_proba_797", "predict_proba, 797 rows", "ratio", 3.0),
    ("grid_search", "GridSearchCV, 5 hidden sizes x 5 folds, Pipeline", "ratio", 1.5),
    ("check_estimator", "check_estimator, whole suite", "ratio", 3.0),
    ("memory", "RSS growth over 300 consecutive fits", "absolute", 50.0),
    (
        "accuracy",
        "mean test accuracy over seeds (vs the reference Keras loop)",
        "difference",
        0.01,
    ),
]

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


# --------------------------------------------------------------------- data
def load_data():
    """The tutorial's split of the digits, as float64.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        The first 1000 digits and the other 797; pixels 0-16, unscaled as in
        the tutorial.
    """
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    return X[:SPLIT], y[:SPLIT], X[SPLIT:], y[SPLIT:]


def ours(**params):
    """``KerasDigitClassifier`` in the tutorial configuration."""
    from sk_keras_digits import KerasDigitClassifier

    return KerasDigitClassifier(**{**TUTORIAL, **params})


def mlp(**params):
    """``MLPClassifier`` in the tutorial configuration."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**{**TUTORIAL, **params})


# ---------------------------------------------------------- peers (Keras)
def tutorial_network(
    n_features, n_outputs, hidden=(15,), seed=None, optimizer=None, loss=None
):
    """The tutorial's Keras network, compiled as in the tutorial.

    Dense(15, sigmoid), Dense(n_outputs, softmax), SGD(learning_rate=0.1,
    momentum=0.9), categorical cross-entropy (or ``loss``), in Keras' default
    float32. With ``n_outputs=1`` (scikeras' binary targets), a sigmoid output
    and binary cross-entropy. A ``seed`` seeds the kernel initialisers (no
    global seeding).
    """
    import keras

    def kernel_init(i):
        return keras.initializers.GlorotUniform(
            seed=None if seed is None else seed * 100 + i
        )

    inputs = keras.Input((n_features,))
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(
            units, activation="sigmoid", kernel_initializer=kernel_init(i)
        )(h)
    binary = n_outputs == 1
    outputs = keras.layers.Dense(
        n_outputs,
        activation="sigmoid" if binary else "softmax",
        kernel_initializer=kernel_init(len(hidden)),
    )(h)
    model = keras.Model(inputs, outputs)
    if loss is None:
        loss = "binary_crossentropy" if binary else "categorical_crossentropy"
    model.compile(
        loss=loss,
        optimizer=optimizer or keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    )
    return model


def keras_fit(X, Y, seed=None):
    """The tutorial's plain Keras code: build, compile, ``model.fit``."""
    model = tutorial_network(X.shape[1], Y.shape[1], seed=seed)
    model.fit(X, Y, batch_size=100, epochs=TUTORIAL["max_iter"], verbose=0)
    return model


def sklearn_wrapper_model(X, y, hidden=(15,)):
    """Model callable of ``keras.wrappers.SKLearnClassifier`` (``y`` one-hot)."""
    return tutorial_network(X.shape[1], y.shape[1], hidden=hidden)


def scikeras_model(hidden_layer_sizes=(15,), meta=None, compile_kwargs=None):
    """Model callable of scikeras' ``KerasClassifier``.

    As in scikeras' own MLPClassifier example: scikeras passes the labels as
    class indices, so a multiclass target gets sparse categorical
    cross-entropy (the tutorial's loss on one-hot labels) and a binary target
    one sigmoid output with binary cross-entropy.
    """
    binary = meta["target_type_"] == "binary"
    return tutorial_network(
        meta["n_features_in_"],
        1 if binary else meta["n_classes_"],
        hidden=hidden_layer_sizes,
        optimizer=compile_kwargs["optimizer"],
        loss=None if binary else "sparse_categorical_crossentropy",
    )


def sklearn_wrapper(tutorial=True):
    """``keras.wrappers.SKLearnClassifier`` on the tutorial's network.

    With ``tutorial=False``, Keras' default fit settings (1 epoch, batches of
    32), as for ``check_estimator``.
    """
    from keras.wrappers import SKLearnClassifier

    fit_kwargs = {"verbose": 0}
    if tutorial:
        fit_kwargs.update(batch_size=100, epochs=TUTORIAL["max_iter"])
    return SKLearnClassifier(model=sklearn_wrapper_model, fit_kwargs=fit_kwargs)


def scikeras(tutorial=True):
    """scikeras' ``KerasClassifier`` on the tutorial's network.

    With ``tutorial=False``, scikeras' default fit settings (1 epoch, batches
    of 32), as for ``check_estimator``.
    """
    import keras
    from scikeras.wrappers import KerasClassifier

    fit = {"epochs": TUTORIAL["max_iter"], "batch_size": 100} if tutorial else {}
    return KerasClassifier(
        model=scikeras_model,
        hidden_layer_sizes=(15,),
        optimizer=keras.optimizers.SGD,
        optimizer__learning_rate=0.1,
        optimizer__momentum=0.9,
        verbose=0,
        **fit,
    )


def quiet_peers():
    """Silence the Python logging of TensorFlow, Keras and scikeras.

    Their warnings are silenced around each benchmark by ``run``.
    """
    import logging

    for name in ("tensorflow", "absl", "keras", "scikeras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ----------------------------------------------------------------- timing
def timed(fn):
    """Seconds taken by ``fn()``, by ``time.perf_counter``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stats(times):
    """Median, minimum and every value of a list of durations."""
    return {
        "median": statistics.median(times),
        "min": min(times),
        "n": len(times),
        "values": list(times),
    }


def bench_fit(cfg, data, peers):
    """Warm fits: ours and MLP in blocks, then interleaved; peers in blocks."""
    X, y, _, _ = data
    out = {"times": {}, "interleaved": {}}
    n = cfg["fit_repeats"]
    for name, make in (("ours", ours), ("mlp", mlp)):
        make(random_state=0).fit(X, y)  # warm-up (ours: the one-time tracing)
        out["times"][name] = stats(
            [
                timed(lambda i=i, make=make: make(random_state=i).fit(X, y))
                for i in range(n)
            ]
        )
    pairs = [
        (
            timed(lambda i=i: ours(random_state=i).fit(X, y)),
            timed(lambda i=i: mlp(random_state=i).fit(X, y)),
        )
        for i in range(n)
    ]
    out["interleaved"] = {
        "ours": stats([p[0] for p in pairs]),
        "mlp": stats([p[1] for p in pairs]),
    }
    if peers:
        import keras

        Y = keras.utils.to_categorical(y, 10)
        m = cfg["peer_fit_repeats"]
        runs = {
            "keras": lambda: keras_fit(X, Y),
            "sklearn_wrapper": lambda: sklearn_wrapper().fit(X, y),
            "scikeras": lambda: scikeras().fit(X, y),
        }
        for name, run in runs.items():
            run()  # warm-up: the first Keras fit of a process pays extra setup
            out["times"][name] = stats([timed(run) for _ in range(m)])
    return out


def bench_keras_optimizer(cfg, data):
    """Warm fits, interleaved: ``keras.optimizers.Adam`` vs ``solver="adam"``.

    The tutorial configuration with Adam in place of SGD, at the same learning
    rate (0.01; 0.1 is too high for Adam on the unscaled pixels). Both run
    their epochs in the same compiled loop; the Keras optimizer updates
    variables inside it. Keras' Adam has ``epsilon=1e-7``, MLPClassifier's
    ``1e-8``: the epochs each fit runs are recorded beside the times.
    """
    import keras

    from sk_keras_digits import KerasDigitClassifier

    X, y, _, _ = data
    params = {
        k: v
        for k, v in TUTORIAL.items()
        if k not in ("solver", "learning_rate_init", "momentum")
    }
    optimizer = keras.optimizers.Adam(learning_rate=0.01)

    def with_optimizer(i):
        return KerasDigitClassifier(solver=optimizer, random_state=i, **params)

    def with_adam(i):
        return KerasDigitClassifier(
            solver="adam", learning_rate_init=0.01, random_state=i, **params
        )

    makers = (("ours", with_optimizer), ("adam", with_adam))
    for _, make in makers:
        make(0).fit(X, y)  # warm-up: the one-time tracing of each program
    times = {"ours": [], "adam": []}
    epochs = {"ours": [], "adam": []}
    for i in range(cfg["fit_repeats"]):
        for name, make in makers:
            est = make(i)
            times[name].append(timed(lambda est=est: est.fit(X, y)))
            epochs[name].append(est.n_iter_)
    return {
        "times": {name: stats(values) for name, values in times.items()},
        "epochs": epochs,
    }


def first_fit_child(which):
    """In a fresh process: time the imports, then the first fit; print JSON."""
    start = time.perf_counter()
    import numpy  # noqa: F401
    import sklearn  # noqa: F401

    if which == "ours":
        import sk_keras_digits._training  # noqa: F401  (imports TensorFlow)
    elif which == "keras":
        import keras
    imports = time.perf_counter() - start
    X, y, _, _ = load_data()
    warnings.simplefilter("ignore")
    if which == "ours":
        seconds = timed(lambda: ours(random_state=0).fit(X, y))
    elif which == "mlp":
        seconds = timed(lambda: mlp(random_state=0).fit(X, y))
    else:
        Y = keras.utils.to_categorical(y, 10)
        seconds = timed(lambda: keras_fit(X, Y, seed=0))
    print(json.dumps({"which": which, "import": imports, "first_fit": seconds}))


def bench_first_fit(cfg, peers):
    """First fit in fresh subprocesses, after the imports."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    names = ["ours", "mlp"] + (["keras"] if peers else [])
    out = {"times": {}, "imports": {}}
    for name in names:
        fits, imports = [], []
        for _ in range(cfg["first_fit_repeats"]):
            proc = subprocess.run(
                [sys.executable, __file__, "--first-fit-child", name],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"first-fit subprocess for {name!r} failed "
                    f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}"
                )
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            fits.append(result["first_fit"])
            imports.append(result["import"])
        out["times"][name] = stats(fits)
        out["imports"][name] = stats(imports)
    return out


def _time_calls(fn, X, calls):
    for _ in range(3):
        fn(X)  # warm-up
    return stats([timed(lambda: fn(X)) for _ in range(calls)])


def bench_predict(cfg, data, peers):
    """predict_proba on 1 row and on the 797 test rows, per call."""
    X, y, X_test, _ = data
    rows = {"predict_proba_1": X_test[:1], "predict_proba_797": X_test}
    fitted = {
        "ours": ours(random_state=0).fit(X, y).predict_proba,
        "mlp": mlp(random_state=0).fit(X, y).predict_proba,
    }
    if peers:
        import keras

        model = keras_fit(X, keras.utils.to_categorical(y, 10), seed=0)
        fitted["keras"] = lambda X: model.predict(X, verbose=0)
        # SKLearnClassifier has no predict_proba: decision_function returns
        # the softmax output of model.predict.
        fitted["sklearn_wrapper"] = sklearn_wrapper().fit(X, y).decision_function
        fitted["scikeras"] = scikeras().fit(X, y).predict_proba
    out = {}
    for key, X_rows in rows.items():
        suffix = "1" if key == "predict_proba_1" else "797"
        out[key] = {"rows": X_rows.shape[0], "times": {}}
        for name, fn in fitted.items():
            prefix = "" if name in ("ours", "mlp") else "peer_"
            calls = cfg[f"{prefix}predict_calls_{suffix}"]
            out[key]["times"][name] = _time_calls(fn, X_rows, calls)
    return out


def grid_search(estimator, X, y, sizes, cv):
    """GridSearchCV over hidden sizes of a MinMaxScaler + estimator Pipeline."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    pipe = Pipeline([("scale", MinMaxScaler()), ("clf", estimator)])
    search = GridSearchCV(
        pipe, {"clf__hidden_layer_sizes": list(sizes)}, cv=cv, n_jobs=1
    )
    return search.fit(X, y)


def bench_grid(cfg, data, peers):
    """GridSearchCV, n_jobs=1, on the 1000 training digits."""
    X, y, _, _ = data
    sizes, cv = cfg["grid_sizes"], cfg["grid_cv"]
    out = {"sizes": [list(s) for s in sizes], "cv": cv, "times": {}, "best": {}}
    makers = {"ours": lambda: ours(random_state=0), "mlp": lambda: mlp(random_state=0)}
    if peers:
        makers["scikeras"] = scikeras
    for name, make in makers.items():
        repeats = 1 if name == "scikeras" else cfg["grid_repeats"]
        times, search = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            search = grid_search(make(), X, y, sizes, cv)
            times.append(time.perf_counter() - start)
        out["times"][name] = stats(times)
        out["best"][name] = {
            "hidden_layer_sizes": list(search.best_params_["clf__hidden_layer_sizes"]),
            "score": float(search.best_score_),
        }
    return out


def bench_check_estimator(peers):
    """The whole check_estimator suite, timed, with its outcome counts."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils.estimator_checks import check_estimator

    from sk_keras_digits import KerasDigitClassifier

    estimators = {"ours": KerasDigitClassifier(), "mlp": MLPClassifier()}
    if peers:
        estimators["sklearn_wrapper"] = sklearn_wrapper(tutorial=False)
        estimators["scikeras"] = scikeras(tutorial=False)
    out = {"times": {}, "counts": {}, "failed": {}}
    for name, estimator in estimators.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            results = check_estimator(estimator, on_fail=None)
            seconds = time.perf_counter() - start
        counts = {"passed": 0, "failed": 0, "skipped": 0, "xfail": 0}
        for result in results:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        out["times"][name] = stats([seconds])
        out["counts"][name] = counts
        out["failed"][name] = sorted(
            r["check_name"] for r in results if r["status"] == "failed"
        )
    return out


def bench_memory(cfg, data):
    """Resident memory growth over consecutive fits, after a warm-up."""
    import psutil

    X, y, _, _ = data
    process = psutil.Process()
    out = {
        "warmup_fits": cfg["memory_warmup"],
        "fits": cfg["memory_fits"],
        "max_iter": cfg["memory_max_iter"],
    }
    for name, make in (("ours", ours), ("mlp", mlp)):

        def fit(i, make=make):
            make(random_state=i, max_iter=cfg["memory_max_iter"]).fit(X, y)

        for i in range(cfg["memory_warmup"]):
            fit(i)
        gc.collect()
        before = process.memory_info().rss
        trace = []
        for i in range(cfg["memory_fits"]):
            fit(i)
            if (i + 1) % max(1, cfg["memory_fits"] // 6) == 0:
                trace.append((process.memory_info().rss - before) / 2**20)
        gc.collect()
        after = process.memory_info().rss
        out[name] = {
            "rss_before_mb": before / 2**20,
            "rss_after_mb": after / 2**20,
            "growth_mb": (after - before) / 2**20,
            "trace_mb": trace,
        }
    return out


def keras_init_network(n_features_in, n_outputs, output_activation):
    """The tutorial's network with Keras' default initialisers, for ``network=``.

    Glorot-uniform kernels and zero biases, as plain Keras starts from;
    ``KerasDigitClassifier``'s default network starts from MLPClassifier's
    initialisation instead.
    """
    import keras

    inputs = keras.Input((n_features_in,))
    hidden = keras.layers.Dense(15, activation="sigmoid")(inputs)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
    return keras.Model(inputs, outputs)


def core_loop_fit(X, y, seed):
    """The estimator's training, written as a plain per-batch Keras loop.

    The reference for the fast path's accuracy: the tutorial network built by
    the estimator's network builder from the same initial weights (drawn as
    MLPClassifier draws them), then 50 epochs of shuffled batches of 100, each
    one eager step of Keras' SGD (learning rate 0.1, Nesterov momentum 0.9) on
    the Keras model's categorical cross-entropy plus MLPClassifier's L2 term.
    Returns the trained ``keras.Model``.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from sk_keras_digits._network import DenseNetwork

    rng = np.random.RandomState(seed)
    network = DenseNetwork([X.shape[1], 15, 10], "logistic", "softmax", "float64")
    model = network.build_model(network.initial_weights(rng))
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    Y = np.eye(10)[y]
    kernels = [w for w in model.trainable_variables if len(w.shape) == 2]

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            proba = model(xb, training=True)
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(yb, proba))
            penalty = tf.add_n([tf.reduce_sum(tf.square(w)) for w in kernels])
            loss += (
                0.5 * TUTORIAL["alpha"] * penalty / tf.cast(tf.shape(xb)[0], "float64")
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    batch = TUTORIAL["batch_size"]
    for _ in range(TUTORIAL["max_iter"]):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch):
            index = order[start : start + batch]
            step(X[index], Y[index])
    return model


def bench_accuracy(cfg, data, peers):
    """Mean test accuracy over seeds, tutorial configuration."""
    import numpy as np

    X, y, X_test, y_test = data
    seeds = list(range(cfg["accuracy_seeds"]))
    scores = {
        "ours": [ours(random_state=s).fit(X, y).score(X_test, y_test) for s in seeds],
        "ours_keras_init": [
            ours(random_state=s, network=keras_init_network)
            .fit(X, y)
            .score(X_test, y_test)
            for s in seeds
        ],
        "mlp": [mlp(random_state=s).fit(X, y).score(X_test, y_test) for s in seeds],
        "core": [
            float(
                np.mean(
                    core_loop_fit(X, y, s).predict(X_test, verbose=0).argmax(1)
                    == y_test
                )
            )
            for s in seeds
        ],
    }
    if peers:
        import keras

        Y = keras.utils.to_categorical(y, 10)
        scores["keras"] = [
            float(
                np.mean(
                    np.argmax(keras_fit(X, Y, seed=s).predict(X_test, verbose=0), 1)
                    == y_test
                )
            )
            for s in seeds
        ]
    return {
        "seeds": seeds,
        "scores": {k: [float(v) for v in s] for k, s in scores.items()},
        "mean": {k: float(np.mean(s)) for k, s in scores.items()},
        "std": {k: float(np.std(s)) for k, s in scores.items()},
    }


# ---------------------------------------------------------------- summary
def _median(results, key, name):
    """Median seconds of ``name`` for figure ``key``, or None."""
    try:
        return results[key]["times"][name]["median"]
    except (KeyError, TypeError):
        return None


def summarize(results):
    """One row per target: the figures, the compared value and whether it passes.

    Parameters
    ----------
    results : dict
        The ``results`` of a run (figure key -> measurements); missing
        figures give rows with ``None`` values.

    Returns
    -------
    rows : list of dict
        ``key``, ``figure``, ``kind``, ``unit``, ``ours``, ``reference``
        (MLPClassifier's figure, or the one :data:`RATIO_REFERENCE` names),
        ``value`` (the ratio, the absolute figure or the difference compared
        with the target), ``target`` (the limit) and
        ``ok`` (bool, or None when a figure is missing).
    """
    rows = []
    for key, figure, kind, limit in TARGETS:
        row = {"key": key, "figure": figure, "kind": kind, "target": limit}
        if kind == "ratio":
            row["unit"] = "s"
            row["ours"] = _median(results, key, "ours")
            row["reference"] = _median(results, key, RATIO_REFERENCE.get(key, "mlp"))
            if row["ours"] is not None and row["reference"]:
                row["value"] = row["ours"] / row["reference"]
        elif kind == "absolute":
            row["unit"] = "MB"
            memory = results.get(key) or {}
            row["ours"] = (memory.get("ours") or {}).get("growth_mb")
            row["reference"] = (memory.get("mlp") or {}).get("growth_mb")
            row["value"] = row["ours"]
        else:
            row["unit"] = ""
            means = (results.get("accuracy") or {}).get("mean", {})
            ours_key, reference_key = COMPARED_ACCURACY[key]
            row["ours"] = means.get(ours_key)
            row["reference"] = means.get(reference_key)
            if row["ours"] is not None and row["reference"] is not None:
                row["value"] = row["ours"] - row["reference"]
        value = row.setdefault("value", None)
        if value is None:
            row["ok"] = None
        elif kind == "difference":
            row["ok"] = bool(abs(value) <= limit)
        else:
            row["ok"] = bool(value <= limit)
        rows.append(row)
    return rows


def fmt_seconds(seconds):
    """A duration with a readable unit: '0.083 s', '0.12 ms', '1.4 s'."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds:.3f} s"
    return f"{seconds * 1e3:.3g} ms"


def _fmt_figure(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return fmt_seconds(value)
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.4f}"


def _fmt_value(row):
    value = row["value"]
    if value is None:
        return "-"
    if row["kind"] == "ratio":
        return f"{value:.2f}"
    if row["kind"] == "absolute":
        return f"{value:.1f} MB"
    return f"{value:+.4f}"


def _fmt_target(row):
    if row["kind"] == "ratio":
        return f"<= {row['target']:g}"
    if row["kind"] == "absolute":
        return f"<= {row['target']:g} MB"
    return f"within {row['target']:g}"


def _fmt_ok(ok):
    return {True: "yes", False: "NO", None: "n/a"}[ok]


def target_table(rows):
    """The targets as rows of strings, a header first."""
    table = [["figure", "ours", "reference", "ratio", "target", "ok"]]
    for row in rows:
        table.append(
            [
                row["figure"],
                _fmt_figure(row["ours"], row["unit"]),
                _fmt_figure(row["reference"], row["unit"]),
                _fmt_value(row),
                _fmt_target(row),
                _fmt_ok(row["ok"]),
            ]
        )
    return table


def peers_table(results):
    """Absolute figures of every estimator, as rows of strings, a header first."""
    table = [["figure"] + [header for _, header in PEERS]]
    timed_rows = [
        ("fit", "fit, tutorial configuration (2nd and later)"),
        ("first_fit", "first fit in a process (after imports)"),
        ("predict_proba_1", "predict_proba, 1 row"),
        ("predict_proba_797", "predict_proba, 797 rows"),
        ("grid_search", "GridSearchCV 5x5, Pipeline"),
        ("check_estimator", "check_estimator, whole suite"),
    ]
    for key, label in timed_rows:
        table.append(
            [label] + [fmt_seconds(_median(results, key, name)) for name, _ in PEERS]
        )
    counts = (results.get("check_estimator") or {}).get("counts", {})
    table.append(
        ["check_estimator passed / failed / skipped"]
        + [
            "{passed} / {failed} / {skipped}".format(**counts[name])
            if name in counts
            else "-"
            for name, _ in PEERS
        ]
    )
    means = (results.get("accuracy") or {}).get("mean", {})
    table.append(
        ["mean test accuracy"]
        + [f"{means[name]:.4f}" if name in means else "-" for name, _ in PEERS]
    )
    return table


def details(report):
    """Side figures that explain the targets, as sentences.

    Parameters
    ----------
    report : dict
        A run's report (``config`` and ``results``); missing figures are left
        out.

    Returns
    -------
    lines : list of str
    """
    results, cfg = report["results"], report.get("config", {})
    lines = []
    fit = results.get("fit") or {}
    inter = fit.get("interleaved") or {}
    if "ours" in inter and "mlp" in inter:
        o, m = inter["ours"]["median"], inter["mlp"]["median"]
        lines.append(
            f"Fits interleaved (ours, MLP, ours, ...): ours {fmt_seconds(o)}, "
            f"MLPClassifier {fmt_seconds(m)}, ratio {o / m:.2f}; the target row "
            "times each in its own block."
        )
    imports = (results.get("first_fit") or {}).get("imports") or {}
    if imports:
        lines.append(
            "Imports before the first fit, in a fresh process: "
            + ", ".join(
                f"{header} {fmt_seconds(imports[name]['median'])}"
                for name, header in PEERS
                if name in imports
            )
            + "."
        )
    grid = results.get("grid_search") or {}
    if grid.get("best"):
        lines.append(
            f"GridSearchCV searched hidden_layer_sizes in "
            f"{[tuple(s) for s in grid['sizes']]} with cv={grid['cv']}; best: "
            + ", ".join(
                f"{header} {tuple(grid['best'][name]['hidden_layer_sizes'])} "
                f"({grid['best'][name]['score']:.3f})"
                for name, header in PEERS
                if name in grid["best"]
            )
            + "."
        )
    failed = (results.get("check_estimator") or {}).get("failed") or {}
    for name, header in PEERS:
        if failed.get(name):
            lines.append(
                f"check_estimator checks failed by {header}: "
                + ", ".join(failed[name])
                + "."
            )
    memory = results.get("memory") or {}
    if "ours" in memory:
        growth = ", ".join(
            f"{header} {memory[name]['growth_mb']:+.1f} MB (from "
            f"{memory[name]['rss_before_mb']:.0f} MB)"
            for name, header in PEERS
            if name in memory
        )
        lines.append(
            f"Memory: resident set size growth over {memory['fits']} consecutive "
            f"fits with max_iter={memory['max_iter']}, after "
            f"{memory['warmup_fits']} warm-up fits: {growth}."
        )
    accuracy = results.get("accuracy") or {}
    if accuracy.get("mean"):
        mean, std = accuracy["mean"], accuracy["std"]
        text = (
            f"Accuracy over {len(accuracy['seeds'])} seeds (mean +- std): "
            + ", ".join(
                f"{header} {mean[name]:.4f} +- {std[name]:.4f}"
                for name, header in PEERS
                if name in mean
            )
        )
        if "mlp" in mean:
            text += f"; ours - MLPClassifier {mean['ours'] - mean['mlp']:+.4f}"
        if "core" in mean:
            text += f"; reference Keras loop {mean['core']:.4f} +- {std['core']:.4f}"
        if "ours_keras_init" in mean:
            text += (
                "; ours on the tutorial's Keras network with Keras' initialisers "
                f"(network=) {mean['ours_keras_init']:.4f} +- "
                f"{std['ours_keras_init']:.4f} (plain Keras trains without "
                "the L2 penalty or Nesterov momentum, in float32)"
            )
        lines.append(text + ".")
    if cfg.get("quick"):
        lines.append(
            "Quick smoke run: fewer repeats, a smaller grid and fewer fits for "
            "memory than the targets name; not a measurement against them."
        )
    return lines


def format_text(table):
    """A list of string rows as an aligned plain-text table."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for n, row in enumerate(table):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def rst_escape(text):
    """Text with reStructuredText's inline markup characters escaped."""
    for char in "\\*|`_":
        text = text.replace(char, "\\" + char)
    return text


def _rst_list_table(title, table):
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in table:
        for i, cell in enumerate(row):
            text = rst_escape(cell) or "\\"
            lines.append(f"   {'* -' if i == 0 else '  -'} {text}")
    return "\n".join(lines)


def machine_info():
    """CPU, platform and library versions (read without importing them)."""
    versions = {}
    for dist in (
        "numpy",
        "scipy",
        "scikit-learn",
        "tensorflow",
        "keras",
        "scikeras",
        "sk-keras-digits",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu_model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def format_rst(report):
    """The reStructuredText page fragment shown by the docs.

    Parameters
    ----------
    report : dict
        A run's report, as written to JSON (``meta``, ``results``,
        ``summary``).

    Returns
    -------
    text : str
    """
    meta = report["meta"]
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    load = meta.get("load_average") or {}
    mode = "quick smoke run" if meta.get("quick") else "full run"
    if meta.get("skip_peers"):
        mode += ", peers skipped"
    lines = [
        ".. This file is written by benchmarks/run.py; do not edit it by hand.",
        "",
        f"Measured on {meta['date']} ({mode}) with ``{meta['command']}``: "
        f"{machine['cpu_model'] or 'unknown CPU'}, {machine['cpus_usable']} usable "
        f"of {machine['cpu_count']} CPUs, Python {machine['python']}, {versions}.",
    ]
    if load:
        lines[-1] += (
            f" Load average (1 min) {load.get('start', 0):.2f} at the start, "
            f"{load.get('end', 0):.2f} at the end."
        )
    if meta.get("note"):
        lines += ["", meta["note"]]
    lines += [
        "",
        _rst_list_table(
            "Targets, measured side by side. Reference: MLPClassifier for the "
            "ratios (solver='adam' for the Keras optimizer's); for the "
            "accuracy, the reference Keras loop (the "
            "estimator's training written as plain per-batch Keras steps)",
            target_table(report["summary"]),
        ),
        "",
        _rst_list_table("Absolute figures (medians)", peers_table(report["results"])),
        "",
    ]
    lines += [f"* {rst_escape(line)}" for line in details(report)] + [""]
    return "\n".join(lines)


def write_json(report, path):
    """Write the report as indented JSON (atomically, through a .tmp file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_rst(report, path):
    """Write :func:`format_rst` of the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_rst(report))


# ------------------------------------------------------------------- main
def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run(quick=False, peers=True, note=None, log=print):
    """Run every benchmark; return the report (meta, config, results, summary)."""
    cfg = SETTINGS["quick" if quick else "full"]
    load_start = _load_average()
    started = time.perf_counter()
    data = load_data()
    results = {}
    steps = [
        ("first_fit", lambda: bench_first_fit(cfg, peers)),
        ("fit", lambda: bench_fit(cfg, data, peers)),
        ("keras_optimizer", lambda: bench_keras_optimizer(cfg, data)),
        ("predict", lambda: bench_predict(cfg, data, peers)),
        ("grid_search", lambda: bench_grid(cfg, data, peers)),
        ("memory", lambda: bench_memory(cfg, data)),
        ("accuracy", lambda: bench_accuracy(cfg, data, peers)),
        # Last: scikeras' checks seed and switch TensorFlow's global state.
        ("check_estimator", lambda: bench_check_estimator(peers)),
    ]
    import sk_keras_digits._training  # noqa: F401  (TensorFlow, outside timings)

    if peers:
        import keras  # noqa: F401

        quiet_peers()
    for name, step in steps:
        step_start = time.perf_counter()
        # The peers print progress bars (SKLearnClassifier's predict cannot be
        # told verbose=0): their output is discarded.
        with (
            warnings.catch_warnings(),
            open(os.devnull, "w") as sink,
            contextlib.redirect_stdout(sink),
        ):
            warnings.simplefilter("ignore")
            result = step()
        if name == "predict":
            results.update(result)
        else:
            results[name] = result
        log(f"  {name}: {time.perf_counter() - step_start:.1f} s", flush=True)
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "command": "python benchmarks/run.py"
            + (" --quick" if quick else "")
            + ("" if peers else " --skip-peers"),
            "quick": quick,
            "skip_peers": not peers,
            "note": note,
            "machine": machine_info(),
            "load_average": {"start": load_start, "end": _load_average()},
            "total_seconds": time.perf_counter() - started,
        },
        "config": {
            "quick": quick,
            "tutorial": dict(TUTORIAL),
            "split": {"train": SPLIT, "test": data[2].shape[0]},
            **{k: v for k, v in cfg.items()},
        },
        "results": results,
    }
    report["summary"] = summarize(results)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: fewer repeats and fits"
    )
    parser.add_argument(
        "--skip-peers",
        action="store_true",
        help="leave out plain Keras, SKLearnClassifier and scikeras",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON output (default {DEFAULT_OUT.relative_to(ROOT)}; with --quick, "
        f"{DEFAULT_QUICK_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--rst",
        type=Path,
        default=None,
        help=f"RST table (default {DEFAULT_RST.relative_to(ROOT)}; a --quick run "
        "writes none unless given)",
    )
    parser.add_argument(
        "--note", help="a remark on the conditions, kept in the JSON and RST"
    )
    parser.add_argument("--first-fit-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before TensorFlow loads
    if args.first_fit_child:
        first_fit_child(args.first_fit_child)
        return 0
    out = args.out or (DEFAULT_QUICK_OUT if args.quick else DEFAULT_OUT)
    rst = args.rst or (None if args.quick else DEFAULT_RST)
    print(
        f"Benchmarking ({'quick' if args.quick else 'full'} run"
        f"{', peers skipped' if args.skip_peers else ''})...",
        flush=True,
    )
    report = run(quick=args.quick, peers=not args.skip_peers, note=args.note)
    print()
    print(format_text(target_table(report["summary"])))
    print()
    print(format_text(peers_table(report["results"])))
    print()
    print("\n".join(f"* {line}" for line in details(report)))
    write_json(report, out)
    print(f"\nWrote {out}")
    if rst is not None:
        write_rst(report, rst)
        print(f"Wrote {rst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

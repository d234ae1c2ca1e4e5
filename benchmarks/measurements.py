"""The measurements: fit, first fit, predict_proba, grid search, checks, memory.

Each ``bench_*`` function takes a settings dict of :data:`settings.SETTINGS`
and the tutorial's split, and returns its figures as plain JSON (times as
:func:`stats` of :func:`timed` runs).
"""

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from peers import (
    core_loop_fit,
    keras_fit,
    keras_init_network,
    mlp,
    ours,
    scikeras,
    sklearn_wrapper,
)
from settings import TUTORIAL

from sk_keras_digits.tutorial import grid_search, import_backend, load_split

#: The entry point, run again with ``--first-fit-child`` in fresh processes.
RUN_PY = Path(__file__).resolve().with_name("run.py")


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
        import_backend()  # TensorFlow, Keras and the training code
    elif which == "keras":
        import keras
    imports = time.perf_counter() - start
    X, y, _, _ = load_split()
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
                [sys.executable, str(RUN_PY), "--first-fit-child", name],
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

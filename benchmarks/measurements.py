"""The measurements: fit, first fit, cold script, predict_proba, grid search, ...

Each ``bench_*`` function takes a settings dict of :data:`settings.SETTINGS`
and the tutorial's split, and returns its figures as plain JSON (times as
:func:`stats` of :func:`timed` runs). They run on the backend Keras runs on;
the ones that start fresh processes (:func:`bench_first_fit`,
:func:`bench_cold_script`) hand it on through ``KERAS_BACKEND``
(:func:`child_env`). Their ``peers`` argument is passed to
:func:`peers.active_peers`: True measures every Keras peer the backend can run.

Importing this module imports neither Keras nor a backend.
"""

import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from peers import (
    active_peers,
    core_loop_score,
    current_backend,
    keras_fit,
    keras_init_network,
    mlp,
    ours,
    scikeras,
    sklearn_wrapper,
)
from settings import LARGE_FIT, REGRESSOR, TUTORIAL

from sk_keras_digits._compile_cache import ENV_DIR as COMPILE_CACHE_ENV
from sk_keras_digits.tutorial import grid_search, import_backend, load_split

#: The entry point, run again with ``--first-fit-child`` in fresh processes.
RUN_PY = Path(__file__).resolve().with_name("run.py")

#: The cold script, run by ``python -c`` with ``{model!r}`` filled in: the
#: tutorial's job from a fresh interpreter (imports, data, one fit, the test
#: score). Its last line reports the score, the backend the fit ran on (the
#: one Keras runs on, or the backend module ours trained with when its
#: compiled program came from the cache and Keras was never imported; None for
#: MLPClassifier), whether Keras was imported and whether TensorFlow was.
COLD_SCRIPT = """\
from sk_keras_digits.tutorial import load_split, tutorial_classifier
X, y, X_test, y_test = load_split()
clf = tutorial_classifier({model!r}, random_state=0).fit(X, y)
score = clf.score(X_test, y_test)
import json, sys
keras = sys.modules.get("keras")
trained = [b for b in ("tensorflow", "jax")
           if "sk_keras_digits._backends." + b in sys.modules]
print(json.dumps({{
    "score": score,
    "backend": keras.backend.backend() if keras else (trained or [None])[0],
    "keras": keras is not None,
    "tensorflow": "tensorflow" in sys.modules,
}}))
"""


def child_env(backend=None, cache=None):
    """The environment of the benchmark's fresh processes.

    Parameters
    ----------
    backend : str, default=None
        The backend their Keras runs on; None: :func:`peers.current_backend`.
    cache : str, default=None
        Their persistent compilation cache folder; None: the environment's.

    Returns
    -------
    env : dict
        ``os.environ`` with ``KERAS_BACKEND`` set to ``backend`` and
        TensorFlow's C++ logs off.
    """
    env = dict(
        os.environ,
        KERAS_BACKEND=backend or current_backend(),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    if cache is not None:
        env[COMPILE_CACHE_ENV] = str(cache)
    return env


def _run_child(args, what, backend, cache=None):
    """Run a fresh Python process; its last stdout line as JSON, and its seconds.

    Raises a RuntimeError with the end of its stderr if it fails, or if Keras
    ran on another backend than ``backend`` there.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=child_env(backend, cache),
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} subprocess failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("backend") not in (None, backend):
        raise RuntimeError(
            f"{what} subprocess ran Keras on {result['backend']!r}, not {backend!r}"
        )
    return result, seconds


def _child_record(results):
    """What the fresh processes of one estimator ran on."""
    backends = {r.get("backend") for r in results} - {None}
    return {
        "backend": backends.pop() if backends else None,
        "keras_imported": any(r.get("keras") for r in results),
        "tensorflow_imported": any(r.get("tensorflow") for r in results),
    }


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
    names = active_peers(peers)
    if names:
        import keras

        Y = keras.utils.to_categorical(y, 10)
        m = cfg["peer_fit_repeats"]
        runs = {
            "keras": lambda: keras_fit(X, Y),
            "sklearn_wrapper": lambda: sklearn_wrapper().fit(X, y),
            "scikeras": lambda: scikeras().fit(X, y),
        }
        for name in names:
            run = runs[name]
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


def bench_lbfgs(cfg, data):
    """Warm fits, alternating: ours and MLPClassifier with ``solver="lbfgs"``.

    The tutorial network (15 logistic units, ``alpha=1e-4``) on the 1000
    training digits, SciPy's L-BFGS-B for up to 200 iterations (MLP's default
    ``max_iter``; ``tol=0`` so that neither stops early): each evaluation is
    one full-batch loss and gradient, ours one compiled call. A warm-up fit
    each, then ``fit_repeats`` fits each, ``random_state=0, 1, ...``; the
    iterations each fit ran are recorded beside the times.
    """
    X, y, _, _ = data
    params = {"solver": "lbfgs", "max_iter": 200, "tol": 0.0}
    makers = (("ours", ours), ("mlp", mlp))
    for _, make in makers:
        make(random_state=0, **params).fit(X, y)  # warm-up (ours: compiles)
    times = {name: [] for name, _ in makers}
    iterations = {name: [] for name, _ in makers}
    for i in range(cfg["fit_repeats"]):
        for name, make in makers:
            est = make(random_state=i, **params)
            times[name].append(timed(lambda est=est: est.fit(X, y)))
            iterations[name].append(est.n_iter_)
    return {
        "times": {name: stats(values) for name, values in times.items()},
        "iterations": iterations,
    }


def first_fit_child(which):
    """In a fresh process: time the imports, then the first fit; print JSON.

    The JSON names the estimator, the import and first-fit seconds, the
    backend Keras ran on (None for MLPClassifier) and whether TensorFlow was
    imported.
    """
    start = time.perf_counter()
    import numpy  # noqa: F401
    import sklearn  # noqa: F401

    if which == "ours":
        import_backend()  # Keras, its backend and the training code
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
    keras = sys.modules.get("keras")
    print(
        json.dumps(
            {
                "which": which,
                "import": imports,
                "first_fit": seconds,
                "backend": keras.backend.backend() if keras else None,
                "keras": keras is not None,
                "tensorflow": "tensorflow" in sys.modules,
            }
        )
    )


def bench_first_fit(cfg, peers, backend=None):
    """First fit in fresh subprocesses, after the imports.

    Each runs ``run.py --first-fit-child NAME --backend BACKEND`` with
    ``KERAS_BACKEND`` set (:func:`child_env`) and a new, empty persistent
    compilation cache folder; for ours a second process then fits with the
    folder the first one filled (the figure ``first_fit_warm``). ``children``
    records the backend each estimator's processes ran on and whether they
    imported TensorFlow.

    Returns
    -------
    figures : dict
        ``{"first_fit": ..., "first_fit_warm": ...}``.
    """
    backend = backend or current_backend()
    names = ["ours", "mlp"] + (["keras"] if "keras" in active_peers(peers) else [])
    out = {"times": {}, "imports": {}, "children": {}}
    warm = {"times": {}, "children": {}}
    for name in names:
        args = [str(RUN_PY), "--first-fit-child", name, "--backend", backend]
        cold_runs, warm_runs = [], []
        for _ in range(cfg["first_fit_repeats"]):
            with tempfile.TemporaryDirectory(prefix="skd-bench-xla-") as folder:
                what = f"first-fit ({name})"
                cold_runs.append(_run_child(args, what, backend, folder)[0])
                if name == "ours":
                    warm_runs.append(_run_child(args, what, backend, folder)[0])
        out["times"][name] = stats([r["first_fit"] for r in cold_runs])
        out["imports"][name] = stats([r["import"] for r in cold_runs])
        out["children"][name] = _child_record(cold_runs)
        if warm_runs:
            warm["times"][name] = stats([r["first_fit"] for r in warm_runs])
            warm["children"][name] = _child_record(warm_runs)
    warm["times"]["mlp"] = out["times"]["mlp"]
    return {"first_fit": out, "first_fit_warm": warm}


def bench_cold_script(cfg, models=("ours", "mlp"), backend=None):
    """Wall time of a fresh ``python -c`` running the tutorial's job.

    :data:`COLD_SCRIPT` for ``KerasDigitClassifier`` and for
    ``MLPClassifier``: interpreter start, imports, data, one fit and the test
    score, timed from the parent around the whole process; the runs of the
    two alternate. They share a persistent compilation cache folder that one
    untimed run of ours filled first: a script run again, as a user runs it.
    ``children`` records the backend each ran on and whether it imported
    TensorFlow.

    Parameters
    ----------
    cfg : dict
        ``cold_script_repeats``: the runs of each script.
    models : tuple of str, default=("ours", "mlp")
        The scripts run.
    backend : str, default=None
        The backend of the processes; None: :func:`peers.current_backend`.

    Returns
    -------
    figures : dict
        ``times`` and ``scores`` by model, ``children``.
    """
    backend = backend or current_backend()
    classes = {"ours": "KerasDigitClassifier", "mlp": "MLPClassifier"}
    results = {name: [] for name in models}
    seconds = {name: [] for name in models}
    with tempfile.TemporaryDirectory(prefix="skd-bench-xla-") as folder:
        # A script run before: its compiled programs are in the cache.
        if "ours" in models:
            script = COLD_SCRIPT.format(model=classes["ours"])
            _run_child(["-c", script], "cold script (warm-up)", backend, folder)
        for _ in range(cfg["cold_script_repeats"]):
            for name in models:
                script = COLD_SCRIPT.format(model=classes[name])
                what = f"cold script ({name})"
                result, wall = _run_child(["-c", script], what, backend, folder)
                results[name].append(result)
                seconds[name].append(wall)
    return {
        "times": {name: stats(values) for name, values in seconds.items()},
        "scores": {name: [r["score"] for r in rs] for name, rs in results.items()},
        "children": {name: _child_record(rs) for name, rs in results.items()},
    }


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
    names = active_peers(peers)
    if "keras" in names:
        import keras

        model = keras_fit(X, keras.utils.to_categorical(y, 10), seed=0)
        fitted["keras"] = lambda X: model.predict(X, verbose=0)
    if "sklearn_wrapper" in names:
        # SKLearnClassifier has no predict_proba: decision_function returns
        # the softmax output of model.predict.
        fitted["sklearn_wrapper"] = sklearn_wrapper().fit(X, y).decision_function
    if "scikeras" in names:
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
    """GridSearchCV, n_jobs=1, on the 1000 training digits.

    Ours and MLPClassifier after one untimed search each (ours compiles its
    programs there), then ``grid_repeats`` timed searches; scikeras once.
    """
    X, y, _, _ = data
    sizes, cv = cfg["grid_sizes"], cfg["grid_cv"]
    out = {"sizes": [list(s) for s in sizes], "cv": cv, "times": {}, "best": {}}
    makers = {"ours": lambda: ours(random_state=0), "mlp": lambda: mlp(random_state=0)}
    if "scikeras" in active_peers(peers):
        makers["scikeras"] = scikeras
    for name, make in makers.items():
        repeats = 1 if name == "scikeras" else cfg["grid_repeats"]
        times, search = [], None
        if name != "scikeras":
            # Untimed: ours compiles the search's programs (widths 16 and 64),
            # MLPClassifier warms up likewise.
            grid_search(make(), X, y, sizes, cv)
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


def bench_large_fit(cfg):
    """A fit at MNIST's scale (:data:`settings.LARGE_FIT`), float32.

    Random data of MNIST's training shape (55,000 x 784, 10 classes), a
    (256, 128) network, Adam, 5 epochs, no early stopping or shuffling
    difference: ours and MLPClassifier fit the same data
    ``large_fit_repeats`` times each, alternating, ours after one untimed
    fit of the same settings (its compile is not counted: the first fit
    figures count it; a 1-epoch fit would compile another program, for a
    shorter epoch buffer).
    """
    from sklearn.neural_network import MLPClassifier

    from sk_keras_digits import KerasDigitClassifier

    n = cfg["large_fit_samples"]
    rng = np.random.default_rng(0)
    X = rng.random((n, LARGE_FIT["n_features"]), dtype=np.float32)
    y = rng.integers(0, 10, n)
    params = {
        key: value
        for key, value in LARGE_FIT.items()
        if key not in ("n_samples", "n_features")
    }
    params.update(random_state=0, tol=0.0)
    KerasDigitClassifier(**params).fit(X, y)
    times = {"ours": [], "mlp": []}
    for _ in range(cfg["large_fit_repeats"]):
        times["ours"].append(timed(lambda: KerasDigitClassifier(**params).fit(X, y)))
        times["mlp"].append(timed(lambda: MLPClassifier(**params).fit(X, y)))
    return {
        "n_samples": n,
        "params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
        },
        "times": {name: stats(values) for name, values in times.items()},
    }


def regression_split():
    """The regressor figures' data: diabetes, split and standardised.

    Returns
    -------
    X, y, X_test, y_test : ndarray
        scikit-learn's diabetes data (442 x 10), split by
        ``train_test_split(random_state=0)`` into 331 training and 111 test
        rows; ``X`` and ``y`` standardised with the training rows' means and
        standard deviations, as a ``StandardScaler`` and a
        ``TransformedTargetRegressor`` would (done once here, so that the
        timed calls are the regressors' alone).
    """
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X, X_test, y, y_test = train_test_split(X, y, random_state=0)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    y_mean, y_scale = y.mean(), y.std()
    return (
        (X - mean) / scale,
        (y - y_mean) / y_scale,
        (X_test - mean) / scale,
        (y_test - y_mean) / y_scale,
    )


def bench_regressor(cfg):
    """KerasDigitRegressor against MLPRegressor: warm fits, then predict.

    Both with :data:`settings.REGRESSOR` on :func:`regression_split`: the
    same 100 epochs of the same mini-batches from the same initial weights.
    A warm-up fit each (ours: compiles the training program), then
    ``regressor_fit_repeats`` fits of each, alternating (ours, MLP, ours,
    ...), ``random_state=0, 1, ...``; then ``predict`` on the 111 test rows
    with the last fits, 3 warm-up calls each, then ``regressor_predict_calls``
    timed calls each, alternating too (the calls take a fraction of a
    millisecond: alternating keeps a change in the machine's load from
    favouring one of them). Beside
    the times: the epochs each fit ran, the largest difference between the
    two last fits' weights and their test R^2 (the evidence that the work
    was the same).

    Returns
    -------
    figures : dict
        ``{"regressor_fit": ..., "regressor_predict": ...}``.
    """
    from sklearn.neural_network import MLPRegressor

    from sk_keras_digits import KerasDigitRegressor

    X, y, X_test, y_test = regression_split()
    classes = {"ours": KerasDigitRegressor, "mlp": MLPRegressor}
    for cls in classes.values():
        cls(random_state=0, **REGRESSOR).fit(X, y)  # warm-up
    times = {name: [] for name in classes}
    epochs = {name: [] for name in classes}
    fitted = {}
    for i in range(cfg["regressor_fit_repeats"]):
        for name, cls in classes.items():
            est = cls(random_state=i, **REGRESSOR)
            times[name].append(timed(lambda est=est: est.fit(X, y)))
            epochs[name].append(est.n_iter_)
            fitted[name] = est
    ours, mlp = fitted["ours"], fitted["mlp"]
    weights = zip(
        ours.coefs_ + ours.intercepts_, mlp.coefs_ + mlp.intercepts_, strict=True
    )
    fit = {
        "n_samples": X.shape[0],
        "n_features": X.shape[1],
        "params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in REGRESSOR.items()
        },
        "times": {name: stats(values) for name, values in times.items()},
        "epochs": epochs,
        "max_weight_difference": float(max(np.abs(a - b).max() for a, b in weights)),
        "test_r2": {
            name: float(est.score(X_test, y_test)) for name, est in fitted.items()
        },
    }
    for est in fitted.values():
        for _ in range(3):
            est.predict(X_test)  # warm-up
    calls = {name: [] for name in fitted}
    for _ in range(cfg["regressor_predict_calls"]):
        for name, est in fitted.items():
            calls[name].append(timed(lambda est=est: est.predict(X_test)))
    predict = {
        "rows": X_test.shape[0],
        "times": {name: stats(values) for name, values in calls.items()},
    }
    return {"regressor_fit": fit, "regressor_predict": predict}


@contextlib.contextmanager
def empty_compile_cache():
    """Ours compiles into a fresh, empty persistent cache folder meanwhile.

    On JAX a run's programs persist on the machine: without this, a second
    benchmark run would time ``check_estimator`` with every program read back.
    """
    before = os.environ.get(COMPILE_CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="skd-bench-xla-") as folder:
        os.environ[COMPILE_CACHE_ENV] = folder
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(COMPILE_CACHE_ENV, None)
            else:
                os.environ[COMPILE_CACHE_ENV] = before


def bench_check_estimator(peers):
    """The whole check_estimator suite, timed, with its outcome counts.

    Ours with an empty compilation cache (:func:`empty_compile_cache`): the
    suite's first run on a machine.
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils.estimator_checks import check_estimator

    from sk_keras_digits import KerasDigitClassifier

    estimators = {"ours": KerasDigitClassifier(), "mlp": MLPClassifier()}
    names = active_peers(peers)
    if "sklearn_wrapper" in names:
        estimators["sklearn_wrapper"] = sklearn_wrapper(tutorial=False)
    if "scikeras" in names:
        estimators["scikeras"] = scikeras(tutorial=False)
    out = {"times": {}, "counts": {}, "failed": {}}
    for name, estimator in estimators.items():
        cache = empty_compile_cache() if name == "ours" else contextlib.nullcontext()
        with warnings.catch_warnings(), cache:
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
        "core": [core_loop_score(X, y, X_test, y_test, s) for s in seeds],
    }
    if "keras" in active_peers(peers):
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

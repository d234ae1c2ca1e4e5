"""The command line's job: the tutorial fits and the grid searches, then output.

:func:`run` runs what ``sk-keras-digits`` does once its options are parsed.
Its pieces serve the benchmarks too, through :mod:`sk_keras_digits.tutorial`:
:func:`load_split` (the tutorial's data), :func:`tutorial_classifier` (either
model in the tutorial's configuration), :func:`grid_search` (the search over
``hidden_layer_sizes`` in a Pipeline) and :func:`import_backend`.
"""

import contextlib
import os
import sys
import tempfile
import time
import warnings

from .._backends import import_keras
from .._tutorial import MODELS, N_TRAIN, TUTORIAL_PARAMS
from ._figures import FIGURES, save_figures
from ._tables import best_table, grid_table, tutorial_table


def run(settings):
    """Run the main job with ``settings`` and print its tables.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    result : dict
        ``tables`` (list of Table), ``figures`` (list of Path), ``report``
        (Path) and ``seconds`` (wall time of the job).
    """
    start = time.perf_counter()
    steps = 2 * settings.seeds + 2 * (len(settings.hidden_sizes) * settings.cv + 1)
    steps += len(FIGURES) + 1
    with _progress(steps, settings.progress) as bar:
        bar.set_description("importing Keras")
        import_backend_quietly()

        from sklearn.exceptions import ConvergenceWarning

        split = load_split()
        with warnings.catch_warnings():
            # The tutorial stops at max_iter=50 epochs, before the loss settles:
            # by design, not worth a warning per fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            tutorial = tutorial_fits(split, settings, bar)
            searches = grid_searches(split, settings, bar)
        tables = [
            tutorial_table(tutorial, split, settings),
            grid_table(searches, settings),
            best_table(searches, split),
        ]
        bar.set_description("drawing figures")
        figures = save_figures(tutorial, searches, split, settings, bar)
        seconds = time.perf_counter() - start
        report = _write_report(settings, tables, figures, seconds)
        bar.update()
    for table in tables:
        print(table.to_text(), end="\n\n")
    print(f"Figures ({len(figures)}): " + ", ".join(str(f) for f in figures))
    print(f"Report: {report}")
    print(f"Done in {seconds:.1f} s.")
    return {"tables": tables, "figures": figures, "report": report, "seconds": seconds}


def import_backend():
    """Import Keras, its backend and the estimator's training code.

    What the first fit of a process imports, imported ahead of it (by the
    benchmarks, to time imports and the first fit apart). The backend is the
    one Keras is configured with (``KERAS_BACKEND``); an unsupported one is
    refused with a RuntimeError naming it. (A fit whose compiled program is
    read from the persistent compilation cache imports no Keras; one that
    compiles it does, to trace it.)

    Returns
    -------
    name : str
        The backend's name, e.g. ``"tensorflow"`` or ``"jax"``.
    """
    import_keras()

    from .. import _backends, _training  # noqa: F401

    return _backends.current().NAME


def import_backend_quietly():
    """Import Keras and its backend with their start-up logs kept off the terminal.

    TensorFlow logs through Abseil before Abseil's logging is initialised, and
    such messages ignore ``TF_CPP_MIN_LOG_LEVEL``; the import (and, on
    TensorFlow, the initialisation of its devices, which logs its own errors
    on machines without a GPU) therefore runs :func:`stderr_captured`.

    Returns
    -------
    name : str
        The backend's name.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return import_backend()
    with stderr_captured():
        name = import_backend()
        from .._backends import current

        current().start()
    return name


@contextlib.contextmanager
def stderr_captured():
    """Point the process' standard error (file descriptor 2, which C++ code
    writes to) at a temporary file for the block; if the block fails, what
    was written is replayed on stderr before the error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _progress(total, enabled):
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        file=sys.stderr,
        unit="step",
        disable=None if enabled else True,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        yield bar
    finally:
        bar.close()


def load_split():
    """The tutorial's split of scikit-learn's 8x8 digits, as float64.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        The first :data:`~sk_keras_digits.tutorial.N_TRAIN` digits and the
        rest; pixels 0-16, unscaled as in the tutorial.
    """
    import numpy as np
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def tutorial_classifier(model, **params):
    """One of the compared models in the tutorial's configuration.

    Parameters
    ----------
    model : {"KerasDigitClassifier", "MLPClassifier"}
        Which model.
    **params
        Parameters set over :data:`~sk_keras_digits.tutorial.TUTORIAL_PARAMS`
        (``random_state``, ``max_iter``, ...).

    Returns
    -------
    classifier : KerasDigitClassifier or MLPClassifier
        Unfitted.
    """
    if model == "KerasDigitClassifier":
        from .._classifier import KerasDigitClassifier as cls
    elif model == "MLPClassifier":
        from sklearn.neural_network import MLPClassifier as cls
    else:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}.")
    return cls(**{**TUTORIAL_PARAMS, **params})


def tutorial_fits(split, settings, bar):
    """Fit both models on the tutorial's split once per seed."""
    X_train, y_train, X_test, y_test = split
    fits = {name: [] for name in MODELS}
    for seed in range(settings.seeds):
        for name in MODELS:
            clf = tutorial_classifier(name, random_state=seed)
            bar.set_description(f"tutorial: {name} seed {seed}")
            tic = time.perf_counter()
            clf.fit(X_train, y_train)
            seconds = time.perf_counter() - tic
            accuracy = clf.score(X_test, y_test)
            fits[name].append({"model": clf, "seconds": seconds, "accuracy": accuracy})
            bar.update()
    return fits


class _ProgressScorer:
    """Accuracy, advancing the progress bar once per cross-validation fit."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, estimator, X, y):
        score = estimator.score(X, y)
        self.bar.update()
        return score


def grid_search(estimator, X, y, hidden_layer_sizes, cv, scoring=None):
    """Grid-search ``hidden_layer_sizes`` in a Pipeline(MinMaxScaler, estimator).

    Parameters
    ----------
    estimator : classifier
        The pipeline's last step, named ``"clf"``.
    X, y : array-like
        Training data.
    hidden_layer_sizes : list of tuple of int
        The values searched.
    cv : int
        Cross-validation folds.
    scoring : callable, default=None
        As :class:`~sklearn.model_selection.GridSearchCV`'s; None scores with
        the estimator's accuracy.

    Returns
    -------
    search : GridSearchCV
        Fitted, one job (``n_jobs=1``), refit on all of ``X``.
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    pipe = Pipeline([("scale", MinMaxScaler()), ("clf", estimator)])
    grid = {"clf__hidden_layer_sizes": list(hidden_layer_sizes)}
    search = GridSearchCV(pipe, grid, cv=cv, scoring=scoring, n_jobs=1)
    return search.fit(X, y)


def grid_searches(split, settings, bar):
    """GridSearchCV over hidden_layer_sizes in a Pipeline, for both models."""
    X_train, y_train, _, _ = split
    sizes = [(h,) for h in settings.hidden_sizes]
    searches = {}
    for name in MODELS:
        clf = tutorial_classifier(name, random_state=0)
        bar.set_description(f"grid search: {name}")
        tic = time.perf_counter()
        search = grid_search(
            clf, X_train, y_train, sizes, settings.cv, scoring=_ProgressScorer(bar)
        )
        search.wall_seconds_ = time.perf_counter() - tic
        searches[name] = search
        bar.update()
    return searches


def _write_report(settings, tables, figures, seconds):
    import platform

    keras = import_keras()
    import sklearn

    from .._backends import current
    from .._version import __version__
    from ._report import write_report

    details = [
        ("Run", "quick (--quick)" if settings.quick else "full"),
        ("Seeds", settings.seeds),
        ("Hidden sizes searched", ", ".join(map(str, settings.hidden_sizes))),
        ("Cross-validation folds", settings.cv),
        ("Wall time", f"{seconds:.1f} s on {os.cpu_count()} CPU(s)"),
        (
            "Versions",
            f"sk_keras_digits {__version__}, scikit-learn {sklearn.__version__}, "
            f"Keras {keras.__version__} on {current().start()}, "
            f"Python {platform.python_version()}",
        ),
    ]
    return write_report(
        settings.out,
        title="sk-keras-digits: KerasDigitClassifier and MLPClassifier on the digits",
        tables=tables,
        figures=[(path.name, FIGURES[path.name]) for path in figures],
        details=details,
    )

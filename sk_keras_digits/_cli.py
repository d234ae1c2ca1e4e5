"""The command line: ``sk-keras-digits`` (also ``python -m sk_keras_digits``).

It runs the tutorial's main job on the 8x8 digits that ship with scikit-learn
(no download): the tutorial's 64-15-10 network as
:class:`~sk_keras_digits.KerasDigitClassifier` next to
:class:`~sklearn.neural_network.MLPClassifier` with the same settings, on the
tutorial's split; a grid search over ``hidden_layer_sizes`` for both, with
k-fold cross-validation inside a Pipeline; figures; and an HTML report.

TensorFlow is imported only once the arguments are parsed and the job starts,
so ``--help`` and bad options answer at once; its C++ start-up messages are
kept off the terminal.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._tutorial import N_TRAIN, TUTORIAL_PARAMS

DEFAULT_OUT = "sk-keras-digits-report"

#: Settings of a full run and of ``--quick``.
FULL = dict(seeds=5, hidden_sizes=(5, 10, 15, 30, 60), cv=5, images=32)
QUICK = dict(seeds=1, hidden_sizes=(5, 15), cv=3, images=16)

MODELS = ("KerasDigitClassifier", "MLPClassifier")

FIGURES = {
    "predictions.png": "Test digits with true and predicted labels, and the "
    "KerasDigitClassifier's class probabilities under each.",
    "mistakes.png": "Test digits the KerasDigitClassifier gets wrong, with the "
    "probability it gave the true label.",
    "loss_curves.png": "Training loss per epoch of the tutorial network, "
    "KerasDigitClassifier and MLPClassifier (seed 0).",
    "grid_search.png": "Cross-validated accuracy against the hidden layer size "
    "(mean ± one standard deviation over folds).",
    "confusion_matrix.png": "Confusion matrices on the test digits (seed 0).",
}


#: The largest ``--hidden-sizes`` value: a 64-H-10 network then has 75H + 10
#: weights (7.5 million, some 60 MB in float64 per copy); past it a size is a
#: typo, and one of 10**12 cannot be allocated at all.
MAX_HIDDEN_SIZE = 100_000


def _shown(text, limit=40):
    """``text`` for a one-line message: quoted, escaped, cut past ``limit``."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _shown_int(value, limit=30):
    """``value`` for a one-line message, its digits cut past ``limit``."""
    digits = str(value)
    return (
        digits
        if len(digits) <= limit
        else f"{digits[:limit]}... ({len(digits)} digits)"
    )


def _positive_int(minimum, maximum=None):
    expected = (
        f"an integer >= {minimum}"
        if maximum is None
        else f"an integer from {minimum} to {maximum}"
    )

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {expected}, got {_shown(text)}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(
                f"expected {expected}, got {_shown_int(value)}"
            )
        return value

    parse.__name__ = expected
    return parse


def build_parser():
    """The argument parser of ``sk-keras-digits``.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from ._version import __version__

    full, quick = FULL, QUICK
    parser = argparse.ArgumentParser(
        prog="sk-keras-digits",
        description=(
            "Run the tutorial's main job on scikit-learn's 8x8 digits (no "
            "download): train KerasDigitClassifier with the tutorial's 64-15-10 "
            f"network on the first {N_TRAIN} digits next to MLPClassifier with "
            "the same settings and test both on the rest; grid-search "
            "hidden_layer_sizes for both with k-fold cross-validation in a "
            "Pipeline(MinMaxScaler, classifier); print both tables, save figures "
            "and write an HTML report into the output folder."
        ),
        epilog=(
            "Exit status: 0 on success, 2 for a bad option or output folder, "
            "1 if the job fails."
        ),
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help="output folder for the figures and report.html (default: "
        "./%(default)s); created if missing, and checked by writing a file into "
        "it before the job starts",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-sized run of a few seconds: {quick['seeds']} seed, hidden "
        f"sizes {' '.join(map(str, quick['hidden_sizes']))}, {quick['cv']}-fold "
        f"CV, {quick['images']} digits drawn (options given explicitly win)",
    )
    parser.add_argument(
        "--seeds",
        type=_positive_int(1),
        metavar="N",
        help="random_state values 0..N-1 for the tutorial fits of each model; "
        f"accuracy is averaged over them (default: {full['seeds']})",
    )
    parser.add_argument(
        "--hidden-sizes",
        type=_positive_int(1, MAX_HIDDEN_SIZE),
        nargs="+",
        metavar="H",
        help=f"hidden layer sizes to grid-search, each from 1 to {MAX_HIDDEN_SIZE} "
        f"(default: {' '.join(map(str, full['hidden_sizes']))})",
    )
    parser.add_argument(
        "--cv",
        type=_positive_int(2),
        metavar="K",
        help=f"folds of the grid search's cross-validation (default: {full['cv']})",
    )
    parser.add_argument(
        "--images",
        type=_positive_int(1),
        metavar="N",
        help="test digits drawn in predictions.png and most drawn in "
        f"mistakes.png (default: {full['images']})",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="do not show the progress bar (it is shown on stderr when stderr "
        "is a terminal)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


@dataclass
class Settings:
    """What one run does, options and ``--quick`` resolved."""

    out: Path
    seeds: int
    hidden_sizes: tuple
    cv: int
    images: int
    progress: bool
    quick: bool


def parse_args(argv=None):
    """Parse and check the command line, without importing TensorFlow.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    settings : Settings

    Raises
    ------
    SystemExit
        With status 0 for ``--help`` and ``--version``, 2 for a bad option or
        an unusable ``--out`` folder (the message is printed on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    out = Path(args.out).expanduser()
    problem = _unwritable(out, f"--out {_shown(args.out, 200)}")
    if problem:
        parser.error(problem)
    hidden = args.hidden_sizes or defaults["hidden_sizes"]
    return Settings(
        out=out,
        seeds=args.seeds or defaults["seeds"],
        hidden_sizes=tuple(sorted(set(hidden))),
        cv=args.cv or defaults["cv"],
        images=args.images or defaults["images"],
        progress=not args.no_progress,
        quick=args.quick,
    )


def _output_names():
    from ._report import REPORT_NAME

    return (*FIGURES, REPORT_NAME)


def _unwritable(out, option):
    """Why the job could not write its files into ``out``, or None.

    The folder is created if missing, then checked by writing: a probe file
    is created and removed in it, and each output file is opened for
    appending (created and removed where it does not exist yet). Writing is
    the only test that holds everywhere: ``os.access`` answers yes to root
    whatever the mode, also where writing then fails (``/proc``, a network
    mount mapping root to nobody), and says nothing of an output name taken
    by a folder.
    Folders created here are removed again if the check fails. The message
    starts with ``option`` (the option and its value).
    """
    if out.exists() and not out.is_dir():
        return (
            f"{option} is an existing file; expected a folder (it is created "
            "if missing)"
        )
    created = [p for p in (out, *out.parents) if not os.path.lexists(p)]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option}: cannot create the folder ({_reason(exc)})"
    problem = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".sk-keras-digits-probe-", dir=out)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        problem = f"{option}: cannot write into the folder ({_reason(exc)})"
    for name in () if problem else _output_names():
        path = out / name
        if path.exists() and not path.is_file():  # opening a FIFO would block
            kind = "a folder" if path.is_dir() else "not a regular file"
            problem = (
                f"{option}: {name!r} in it is {kind}; expected a file there or none"
            )
            break
        existed = os.path.lexists(path)
        try:
            with open(path, "ab"):
                pass
            if not existed:
                path.unlink()
        except OSError as exc:
            problem = f"{option}: cannot write {name!r} in it ({_reason(exc)})"
            break
    if problem:
        for folder in created:  # leaf first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return problem


def _reason(exc):
    """An OSError's reason without its file name (the message names it)."""
    return exc.strerror or str(exc) or type(exc).__name__


def main(argv=None):
    """Run ``sk-keras-digits``.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 for a bad option or output folder, 1 if the job
        failed.
    """
    # Before TensorFlow is first imported (it reads it once, at import).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        settings = parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        run(settings)
    except KeyboardInterrupt:
        print("sk-keras-digits: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"sk-keras-digits: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------- the job
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
        bar.set_description("importing TensorFlow")
        import_tensorflow_quietly()

        import numpy as np
        from sklearn.datasets import load_digits
        from sklearn.exceptions import ConvergenceWarning

        X, y = load_digits(return_X_y=True)
        X = X.astype(np.float64)
        split = X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]
        with warnings.catch_warnings():
            # The tutorial stops at max_iter=50 epochs, before the loss settles:
            # by design, not worth a warning per fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            tutorial = _tutorial_fits(split, settings, bar)
            searches = _grid_searches(split, settings, bar)
        tables = [
            _tutorial_table(tutorial, split, settings),
            _grid_table(searches, settings),
            _best_table(searches, split),
        ]
        bar.set_description("drawing figures")
        figures = _save_figures(tutorial, searches, split, settings, bar)
        seconds = time.perf_counter() - start
        report = _write_report(settings, tables, figures, seconds)
        bar.update()
    for table in tables:
        print(table.to_text(), end="\n\n")
    print(f"Figures ({len(figures)}): " + ", ".join(str(f) for f in figures))
    print(f"Report: {report}")
    print(f"Done in {seconds:.1f} s.")
    return {"tables": tables, "figures": figures, "report": report, "seconds": seconds}


def import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up log kept off the terminal.

    TensorFlow logs through Abseil before Abseil's logging is initialised, and
    such messages ignore ``TF_CPP_MIN_LOG_LEVEL``; the process' standard error
    is therefore pointed at a temporary file during the import and the
    initialisation of TensorFlow's devices (which logs its own errors on
    machines without a GPU). If either fails, what TensorFlow wrote is
    replayed on stderr before the error.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            from . import _training  # noqa: F401, PLC0415

            tf.config.list_logical_devices()
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


def _classifiers(random_state, **params):
    from sklearn.neural_network import MLPClassifier

    from ._classifier import KerasDigitClassifier

    params = {**TUTORIAL_PARAMS, **params, "random_state": random_state}
    return {
        "KerasDigitClassifier": KerasDigitClassifier(**params),
        "MLPClassifier": MLPClassifier(**params),
    }


def _tutorial_fits(split, settings, bar):
    """Fit both models on the tutorial's split once per seed."""
    X_train, y_train, X_test, y_test = split
    fits = {name: [] for name in MODELS}
    for seed in range(settings.seeds):
        for name, clf in _classifiers(seed).items():
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


def _grid_searches(split, settings, bar):
    """GridSearchCV over hidden_layer_sizes in a Pipeline, for both models."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    X_train, y_train, _, _ = split
    grid = {"clf__hidden_layer_sizes": [(h,) for h in settings.hidden_sizes]}
    searches = {}
    for name, clf in _classifiers(0).items():
        bar.set_description(f"grid search: {name}")
        pipe = Pipeline([("scale", MinMaxScaler()), ("clf", clf)])
        search = GridSearchCV(
            pipe, grid, cv=settings.cv, scoring=_ProgressScorer(bar), n_jobs=1
        )
        tic = time.perf_counter()
        search.fit(X_train, y_train)
        search.wall_seconds_ = time.perf_counter() - tic
        searches[name] = search
        bar.update()
    return searches


def _mean_sd(values, digits=3):
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _tutorial_table(tutorial, split, settings):
    import numpy as np

    from ._report import Table

    n_test = split[2].shape[0]
    rows = []
    for name, fits in tutorial.items():
        accuracy = [f["accuracy"] for f in fits]
        seconds = [f["seconds"] for f in fits]
        rows.append(
            [
                name,
                _mean_sd(accuracy),
                f"{min(accuracy):.3f}-{max(accuracy):.3f}",
                f"{np.median(seconds):.3f}",
                f"{seconds[0]:.3f}",
            ]
        )
    seeds = settings.seeds
    return Table(
        title=(
            f"Tutorial: 64-15-10 network on the first {N_TRAIN} digits, tested on "
            f"the other {n_test} ({seeds} seed{'s' if seeds > 1 else ''})"
        ),
        header=[
            "model",
            "test accuracy" + (" (mean ± sd)" if seeds > 1 else ""),
            "min-max",
            "fit time (s, median)",
            "first fit (s)",
        ],
        rows=rows,
        notes=[
            "Settings: " + ", ".join(f"{k}={v!r}" for k, v in TUTORIAL_PARAMS.items()),
            "KerasDigitClassifier's first fit in a process includes tracing its "
            "compiled training loop; later fits reuse it.",
        ],
    )


def _grid_table(searches, settings):
    from ._report import Table

    results = {name: s.cv_results_ for name, s in searches.items()}
    rows = []
    for i, h in enumerate(settings.hidden_sizes):
        row = [str(h)]
        for name in MODELS:
            r = results[name]
            row.append(f"{r['mean_test_score'][i]:.3f} ± {r['std_test_score'][i]:.3f}")
        for name in MODELS:
            row.append(f"{results[name]['mean_fit_time'][i]:.3f}")
        rows.append(row)
    walls = ", ".join(f"{n} {s.wall_seconds_:.1f} s" for n, s in searches.items())
    return Table(
        title=(
            f"Grid search over hidden_layer_sizes: {settings.cv}-fold CV accuracy "
            f"in Pipeline(MinMaxScaler, classifier) on the {N_TRAIN} training digits"
        ),
        header=[
            "hidden size",
            "Keras CV accuracy",
            "MLP CV accuracy",
            "Keras fit (s)",
            "MLP fit (s)",
        ],
        rows=rows,
        notes=[
            "Accuracy: mean ± sd over folds; fit: mean time per fold.",
            f"Search wall time (all fits and the refit): {walls}.",
        ],
    )


def _best_table(searches, split):
    from ._report import Table

    _, _, X_test, y_test = split
    rows = []
    for name, search in searches.items():
        best = search.best_params_["clf__hidden_layer_sizes"]
        rows.append(
            [
                name,
                str(best[0]),
                f"{search.best_score_:.3f}",
                f"{search.best_estimator_.score(X_test, y_test):.3f}",
            ]
        )
    return Table(
        title="Best hidden size of each search, refit on the training digits",
        header=["model", "hidden size", "CV accuracy", "test accuracy"],
        rows=rows,
    )


def _save_figures(tutorial, searches, split, settings, bar):
    """Draw the figures on figures not managed by pyplot and save them."""
    import numpy as np
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    from ._plotting import (
        plot_grid_search,
        plot_learning_curves,
        plot_predictions,
        predictions_figsize,
    )

    _, _, X_test, y_test = split
    keras_clf = tutorial["KerasDigitClassifier"][0]["model"]
    mlp_clf = tutorial["MLPClassifier"][0]["model"]
    out = settings.out
    saved = []

    def save(fig, name):
        fig.savefig(out / name, dpi=100)
        saved.append(out / name)
        bar.update()

    def digits_figure(n):
        size = predictions_figsize(min(n, settings.images))
        return Figure(figsize=size, layout="constrained")

    fig = digits_figure(len(y_test))
    plot_predictions(keras_clf, X_test, y_test, max_images=settings.images, fig=fig)
    save(fig, "predictions.png")

    wrong = np.flatnonzero(keras_clf.predict(X_test) != y_test)
    fig = digits_figure(max(len(wrong), 1))
    if len(wrong):
        plot_predictions(
            keras_clf, X_test[wrong], y_test[wrong], max_images=settings.images, fig=fig
        )
        fig.suptitle(
            f"{len(wrong)} of {len(y_test)} test digits misclassified"
            + (
                f" (first {settings.images} shown)"
                if len(wrong) > settings.images
                else ""
            )
        )
    else:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "No test digit misclassified", ha="center", va="center")
        ax.set_axis_off()
    save(fig, "mistakes.png")

    save(
        plot_learning_curves(
            {"KerasDigitClassifier": keras_clf, "MLPClassifier": mlp_clf},
            fig=Figure(figsize=(7, 4.5), layout="constrained"),
        ),
        "loss_curves.png",
    )

    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = plot_grid_search(searches, ax=fig.subplots())
    ax.set_ylabel(f"mean accuracy ± sd, {settings.cv}-fold CV")
    save(fig, "grid_search.png")

    fig = Figure(figsize=(11, 5), layout="constrained")
    for ax, (name, clf) in zip(
        fig.subplots(1, 2),
        [("KerasDigitClassifier", keras_clf), ("MLPClassifier", mlp_clf)],
        strict=True,
    ):
        ConfusionMatrixDisplay.from_predictions(
            y_test, clf.predict(X_test), ax=ax, colorbar=False
        )
        ax.set_title(f"{name}: accuracy {clf.score(X_test, y_test):.3f}")
    save(fig, "confusion_matrix.png")
    return saved


def _write_report(settings, tables, figures, seconds):
    import platform

    import keras
    import sklearn
    import tensorflow as tf

    from ._report import write_report
    from ._version import __version__

    details = [
        ("Run", "quick (--quick)" if settings.quick else "full"),
        ("Seeds", settings.seeds),
        ("Hidden sizes searched", ", ".join(map(str, settings.hidden_sizes))),
        ("Cross-validation folds", settings.cv),
        ("Wall time", f"{seconds:.1f} s on {os.cpu_count()} CPU(s)"),
        (
            "Versions",
            f"sk_keras_digits {__version__}, scikit-learn {sklearn.__version__}, "
            f"Keras {keras.__version__}, TensorFlow {tf.__version__}, "
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

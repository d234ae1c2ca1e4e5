"""The command line's parser: options, ``--quick`` and the checks of ``--out``.

:func:`parse_args` reads and checks the command line without importing
Keras or its backend, so ``--help`` and bad options answer at once: ``--out`` is checked
by writing into the folder before the job starts, ``--hidden-sizes`` is
bounded by :data:`MAX_HIDDEN_SIZE` and ``--cv`` by :func:`most_folds`.
"""

import argparse
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._tutorial import N_TRAIN
from ._figures import FIGURES
from ._report import REPORT_NAME

DEFAULT_OUT = "sk-keras-digits-report"

#: Settings of a full run and of ``--quick``.
FULL = dict(seeds=5, hidden_sizes=(5, 10, 15, 30, 60), cv=5, images=32)
QUICK = dict(seeds=1, hidden_sizes=(5, 15), cv=3, images=16)

#: The largest ``--hidden-sizes`` value: a 64-H-10 network then has 75H + 10
#: weights (7.5 million, some 60 MB in float64 per copy); past it a size is a
#: typo, and one of 10**12 cannot be allocated at all.
MAX_HIDDEN_SIZE = 100_000
#: Most tutorial fits per model (two fits a seed, a fraction of a second each).
MAX_SEEDS = 1_000


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


def most_folds():
    """The most folds the grid search's stratified cross-validation allows.

    Every fold holds every class, so there are at most as many folds as the
    fewest training digits of one class (98 of scikit-learn's first 1000).
    """
    import numpy as np
    from sklearn.datasets import load_digits

    return int(np.bincount(load_digits().target[:N_TRAIN]).min())


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
    from .._version import __version__

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
        type=_positive_int(1, MAX_SEEDS),
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
    folds = most_folds()
    parser.add_argument(
        "--cv",
        type=_positive_int(2, folds),
        metavar="K",
        help=f"folds of the grid search's cross-validation, from 2 to {folds} "
        f"(default: {full['cv']})",
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
    """Parse and check the command line, without importing Keras or a backend.

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
    if not args.out.strip():
        parser.error(
            f"--out {args.out!r} is empty; expected a folder path (omit --out for "
            f"./{DEFAULT_OUT})"
        )
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
    try:
        if out.exists() and not out.is_dir():
            return (
                f"{option} is an existing file; expected a folder (it is created "
                "if missing)"
            )
        created = [p for p in (out, *out.parents) if not os.path.lexists(p)]
    except OSError as exc:  # a name too long, a folder that cannot be searched
        return f"{option}: cannot use the path ({_reason(exc)})"
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
        if path.is_symlink():  # the job would replace the link by a file
            problem = (
                f"{option}: {name!r} in it is a symbolic link; expected a file "
                "there or none"
            )
            break
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

"""``sk-keras-digits``: parse the command line, run the job, map errors to status."""

import os
import sys

from ._files import OutputError
from ._job import run
from ._parser import parse_args


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
    except OutputError as exc:  # "could not write PATH: [Errno N] reason"
        print(f"sk-keras-digits: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"sk-keras-digits: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0

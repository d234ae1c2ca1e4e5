"""Warnings that point at the user's code, however deep they are raised."""

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# scikit-learn's ``_fit_context`` wraps ``fit`` and ``partial_fit``.
_WRAPPERS = (os.path.join("sklearn", "base.py"),)


def _internal(filename):
    filename = os.path.abspath(filename)
    return filename.startswith(_PACKAGE + os.sep) or filename.endswith(_WRAPPERS)


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first frame outside this package.

    The frames of this package, and scikit-learn's wrapper of ``fit``, are
    skipped, so the warning names the line that called into the estimator
    (the user's, or a meta-estimator's such as ``GridSearchCV``), wherever in
    the package it is raised.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 is the frame that called this function
    while frame is not None and _internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)

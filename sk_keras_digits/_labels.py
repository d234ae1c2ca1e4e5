"""Label encoding: the user's targets to the network's indicator outputs and back.

The encoding is scikit-learn's :class:`~sklearn.preprocessing.LabelBinarizer`,
as in :class:`~sklearn.neural_network.MLPClassifier`: one-hot columns for
multiclass targets (softmax output), a single column for binary targets and one
column per label for multilabel indicator targets (logistic outputs).
"""

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import type_of_target, unique_labels


def fit_binarizer(y, classes=None):
    """Fit the label binarizer on ``y``, or on ``classes`` when given.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        Targets: class labels of any type, or a multilabel indicator matrix.
    classes : array-like, default=None
        Every class the estimator will see (``partial_fit``).

    Returns
    -------
    binarizer : LabelBinarizer
    """
    binarizer = LabelBinarizer()
    try:
        if classes is not None and not type_of_target(y).startswith("multilabel"):
            binarizer.fit(np.asarray(classes))
        else:
            binarizer.fit(y)
    except TypeError as exc:
        raise ValueError(
            f"y mixes label types that cannot be compared ({exc}): use labels "
            "of one type, all strings or all numbers."
        ) from exc
    return binarizer


def output_activation(binarizer):
    """The output activation for these targets, in MLPClassifier's names."""
    return "softmax" if binarizer.y_type_ == "multiclass" else "logistic"


def encode(binarizer, y, dtype):
    """Indicator matrix of ``y`` with one column per network output."""
    return binarizer.transform(y).astype(dtype, copy=False)


def decode(binarizer, proba):
    """Labels for the network's output ``proba`` (the user's own values)."""
    if proba.shape[1] == 1:
        proba = proba.ravel()
    return binarizer.inverse_transform(proba)


def check_known_labels(binarizer, y, context):
    """Raise a ValueError if ``y`` holds labels the binarizer does not know."""
    if binarizer.y_type_.startswith("multilabel"):
        return
    unknown = np.setdiff1d(unique_labels(y), binarizer.classes_)
    if len(unknown):
        raise ValueError(
            f"y has labels {unknown.tolist()} not in classes_ "
            f"{binarizer.classes_.tolist()} ({context})."
        )

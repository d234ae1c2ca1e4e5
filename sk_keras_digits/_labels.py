"""Label encoding: the user's targets to the network's indicator outputs and back.

The encoding is scikit-learn's :class:`~sklearn.preprocessing.LabelBinarizer`'s,
as in :class:`~sklearn.neural_network.MLPClassifier`: one-hot columns for
multiclass targets (softmax output), a single column for binary targets and one
column per label for multilabel indicator targets (logistic outputs). The
fitted encoding is the small record :class:`LabelEncoding`: the classes and
the kind of target, from which everything else follows.
"""

from numbers import Real
from typing import NamedTuple

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import type_of_target, unique_labels

#: The kinds of target an estimator can be fitted on.
KINDS = ("binary", "multiclass", "multilabel-indicator")


class LabelEncoding(NamedTuple):
    """The fitted label encoding.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        The class labels, sorted (for multilabel targets, the label indices
        ``0 .. n_labels - 1``).
    kind : {"binary", "multiclass", "multilabel-indicator"}
        The kind of target.
    """

    classes: np.ndarray
    kind: str

    @classmethod
    def fit(cls, y, classes=None):
        """The encoding of ``y``, or of ``classes`` when given (``partial_fit``).

        Parameters
        ----------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Targets: class labels of any type, or a multilabel indicator matrix.
        classes : array-like, default=None
            Every class the estimator will see.

        Returns
        -------
        encoding : LabelEncoding
        """
        binarizer = LabelBinarizer()
        source, labels = "y", y
        try:
            multilabel = type_of_target(y).startswith("multilabel")
            if classes is not None and not multilabel:
                source, labels = "classes", np.asarray(classes)
            binarizer.fit(labels)
        except TypeError as exc:
            if _holds_bytes(labels):
                raise TypeError(
                    f"{source} holds labels represented as bytes, which "
                    f"scikit-learn does not support ({exc}): decode them to "
                    f"strings, e.g. {source}.astype(str)."
                ) from exc
            raise _mixed_types_error(exc, source) from exc
        if multilabel and classes is not None:
            given = np.unique(np.asarray(classes))
            if not np.array_equal(given, binarizer.classes_):
                raise ValueError(
                    f"classes={given!r} are not the labels of y, a multilabel "
                    f"indicator matrix of {len(binarizer.classes_)} columns: pass "
                    f"its column indices, classes={binarizer.classes_!r}."
                )
        return cls(binarizer.classes_, binarizer.y_type_)

    @property
    def n_outputs(self):
        """Width of the network's output."""
        return 1 if self.kind == "binary" else len(self.classes)

    @property
    def out_activation(self):
        """The output activation, in MLPClassifier's names."""
        return "softmax" if self.kind == "multiclass" else "logistic"

    @property
    def multilabel(self):
        return self.kind.startswith("multilabel")

    def _binarizer(self):
        binarizer = LabelBinarizer()
        binarizer.classes_ = self.classes
        binarizer.y_type_ = self.kind
        binarizer.sparse_input_ = False
        return binarizer

    def _single_label(self):
        """Whether each sample has one label of two or more classes."""
        return self.kind != "multilabel-indicator" and len(self.classes) >= 2

    def encode(self, y, dtype):
        """Indicator matrix of ``y`` with one column per network output.

        :class:`~sklearn.preprocessing.LabelBinarizer`'s ``transform``. Labels
        of a 1-d array, each one of the classes, are indexed directly (its
        checks cost a fit of the tutorial's 800 rows 0.5 ms); anything else
        goes through the binarizer.
        """
        if self._single_label() and isinstance(y, np.ndarray) and y.ndim == 1:
            try:
                index = np.searchsorted(self.classes, y)
                known = index < len(self.classes)
                known &= self.classes[np.minimum(index, len(self.classes) - 1)] == y
            except TypeError:  # labels that do not compare with the classes
                known = None
            if known is not None and known.all():
                if self.kind == "binary":
                    return (index == 1).astype(dtype)[:, None]
                Y = np.zeros((len(y), len(self.classes)), dtype)
                Y[np.arange(len(y)), index] = 1
                return Y
        return self._binarizer().transform(y).astype(dtype, copy=False)

    def decode(self, proba):
        """Labels for the network's output ``proba`` (the user's own values).

        :class:`~sklearn.preprocessing.LabelBinarizer`'s ``inverse_transform``:
        the class of the greatest output, or of the single output's side of
        0.5; computed directly for a NumPy array (the binarizer took 33 us of
        a one-row prediction).
        """
        if proba.shape[1] == 1:
            proba = proba.ravel()
        if self._single_label() and isinstance(proba, np.ndarray):
            if self.kind == "multiclass" and proba.ndim == 2:
                return self.classes[np.argmax(proba, axis=1)]
            if self.kind == "binary" and proba.ndim == 1:
                return self.classes[(proba > 0.5).astype(np.intp)]
        return self._binarizer().inverse_transform(proba)

    def check_class_weight(self, class_weight):
        """Raise a ValueError unless ``class_weight`` can weigh these classes.

        None and ``'balanced'`` always can, but for multilabel targets; a dict
        needs class labels as keys and finite non-negative numbers as values.
        """
        if class_weight is None:
            return
        if self.multilabel:
            raise ValueError(
                f"class_weight={class_weight!r} is not supported for multilabel "
                "targets (a sample belongs to several classes). Pass "
                "sample_weight instead."
            )
        if not isinstance(class_weight, dict):
            return
        classes = set(self.classes.tolist())
        unknown = [c for c in class_weight if c not in classes]
        if unknown:
            raise ValueError(
                f"class_weight has keys {unknown} that are not classes; the "
                f"classes are {self.classes.tolist()}."
            )
        invalid = {
            c: w
            for c, w in class_weight.items()
            if not isinstance(w, Real)
            or isinstance(w, (bool, np.bool_))
            or not (np.isfinite(w) and w >= 0)
        }
        if invalid:
            raise ValueError(
                f"class_weight should map classes to finite non-negative numbers; "
                f"got {invalid}."
            )

    def check_known(self, y, context):
        """Raise a ValueError if ``y`` holds labels this encoding does not know."""
        if self.multilabel:
            return
        unknown = np.setdiff1d(sorted_labels(y), self.classes)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown.tolist()} not in classes_ "
                f"{self.classes.tolist()} ({context})."
            )


def sorted_labels(labels, name="y"):
    """``unique_labels(labels)``, with a ValueError for labels of mixed types.

    ``name`` is the argument's, for the error.
    """
    try:
        return unique_labels(labels)
    except TypeError as exc:
        raise _mixed_types_error(exc, name) from exc


def _mixed_types_error(exc, name="y"):
    """The error for labels that ``exc`` (a TypeError) found incomparable."""
    return ValueError(
        f"{name} mixes label types that cannot be compared ({exc}): use labels of "
        "one type, all strings or all numbers."
    )


def _holds_bytes(labels):
    """Whether ``labels`` (array-like) hold a ``bytes`` label."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "S":
        return True
    return labels.dtype == object and any(isinstance(v, bytes) for v in labels.flat)

"""Sample weights as the loss takes them: non-negative, in X's dtype.

The weights are checked in float64 whatever X's dtype (as MLPClassifier keeps
them), then cast to X's dtype, in which the network computes its loss: a
weight that would overflow there, or weights all too small to count, are
refused naming ``sample_weight``. (Negative weights, which MLPClassifier
takes, are refused: ``docs/parameters.rst``.)
"""

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from ._casting import cast_in_range


def check_sample_weight(sample_weight, X):
    """``sample_weight`` checked, as a 1-d array of X's dtype.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        None weighs every sample 1.
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        The validated input (a float dtype).

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        If a weight is negative or not finite, the weights sum to zero, the
        largest is below the smallest normal number of X's dtype, or a weight
        or their sum exceeds its range.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_keras_digits._sample_weights import check_sample_weight
    >>> check_sample_weight([1, 2], np.zeros((2, 3), np.float32))
    array([1., 2.], dtype=float32)
    >>> check_sample_weight([1e-300, 0], np.zeros((2, 3), np.float32))
    Traceback (most recent call last):
    ...
    ValueError: sample_weight's largest value, 1e-300, is below 1.17549e-38, \
the smallest normal float32 number: the loss, computed in X's dtype, would \
weigh every sample as nothing. Scale sample_weight up.
    """
    if sample_weight is None:
        return np.ones(X.shape[0], X.dtype)
    sample_weight = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    with np.errstate(over="ignore"):
        total = sample_weight.sum()
    if not total > 0:
        raise ValueError(
            f"sample_weight must have a positive sum; got weights summing to {total}."
        )
    tiny = float(np.finfo(X.dtype).tiny)
    if sample_weight.max() < tiny:
        raise ValueError(
            f"sample_weight's largest value, {sample_weight.max():.6g}, is "
            f"below {tiny:.6g}, the smallest normal {X.dtype} number: the "
            "loss, computed in X's dtype, would weigh every sample as "
            "nothing. Scale sample_weight up."
        )
    remedy = "Scale sample_weight down, or pass X as float64."
    cast = cast_in_range(
        sample_weight,
        X.dtype,
        "sample_weight",
        "the loss weighs the samples in X's dtype",
        remedy,
    )
    if total > np.finfo(X.dtype).max:
        raise ValueError(
            f"sample_weight sums to {total:.6g}, beyond {X.dtype}'s range "
            f"(up to {np.finfo(X.dtype).max:.6g}): the loss divides by that sum, "
            f"in X's dtype. {remedy}"
        )
    return cast

"""Inputs as a network takes them: in its dtype, within its range, dense.

A network computes in one float dtype (X's on a first fit, the fitted
weights' on a continuing one). A finite value beyond that dtype's range
(float64 data over 3.4e38 cast to float32) would become infinite there and
poison the fit; it is refused instead, naming the input. Training holds X
dense: a sparse X whose dense form would not fit in memory is refused before
it is made.
"""

import numpy as np

from ._memory import beyond_share


def stored_values(X):
    """The values ``X`` stores: a sparse matrix's ``data``, else ``X`` itself.

    What a check of magnitudes or finiteness needs to read (the implicit
    zeros of a sparse matrix are finite and small).
    """
    return X.data if hasattr(X, "toarray") else np.asarray(X)


def densified(X, memory=None):
    """``X`` as a dense array (itself if already one).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    memory : int, default=None
        The machine's memory in bytes (None: its physical memory).

    Raises
    ------
    ValueError
        If ``X`` is sparse and its dense form would take more than a
        quarter of ``memory`` (:func:`~sk_keras_digits._memory.beyond_share`).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from sk_keras_digits._casting import densified
    >>> densified(sp.eye(2, format="csr")).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> densified(sp.eye(10**5, format="csr"), memory=2**30)
    Traceback (most recent call last):
    ...
    ValueError: X is a sparse 100000 x 100000 matrix (100000 stored values), \
and training holds X dense: 80 GB, over a quarter of this machine's memory \
(1.07 GB). Reduce its features (TruncatedSVD, SelectKBest), or train on fewer \
rows at a time with partial_fit.
    """
    if not hasattr(X, "toarray"):
        return X
    needed = X.shape[0] * X.shape[1] * X.dtype.itemsize
    memory = beyond_share(needed, memory)
    if memory is not None:
        raise ValueError(
            f"X is a sparse {X.shape[0]} x {X.shape[1]} matrix ({X.nnz} stored "
            f"values), and training holds X dense: {needed / 1e9:.3g} GB, over "
            f"a quarter of this machine's memory ({memory / 1e9:.3g} GB). Reduce "
            "its features (TruncatedSVD, SelectKBest), or train on fewer rows "
            "at a time with partial_fit."
        )
    return X.toarray()


def cast_in_range(values, dtype, name, why, remedy):
    """``values`` (an array or a sparse matrix) cast to ``dtype``.

    Parameters
    ----------
    values : ndarray or sparse matrix
        Finite numbers.
    dtype : dtype
        A float dtype.
    name : str
        The input's name in an error message (``"X"``, ``"y"``).
    why, remedy : str
        Why ``dtype`` is the dtype, and what the user can do, for the message.

    Returns
    -------
    cast : ndarray or sparse matrix
        ``values`` as ``dtype`` (``values`` itself if already of it).

    Raises
    ------
    ValueError
        If a value's magnitude exceeds ``dtype``'s largest finite number.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_keras_digits._casting import cast_in_range
    >>> cast_in_range(np.array([1.0, 2.0]), np.float32, "X", "", "").dtype
    dtype('float32')
    >>> cast_in_range(np.array([1e39]), np.float32, "X", "why", "Scale X.")
    Traceback (most recent call last):
    ...
    ValueError: X holds values too large for float32 (largest |X| = 1e+39; \
float32 holds up to 3.40282e+38): why. Scale X.
    """
    dtype = np.dtype(dtype)
    if values.dtype == dtype:
        return values
    largest = float(np.abs(stored_values(values)).max(initial=0))
    limit = float(np.finfo(dtype).max)
    if largest > limit:
        raise ValueError(
            f"{name} holds values too large for {dtype} (largest |{name}| = "
            f"{largest:.6g}; {dtype} holds up to {limit:.6g}): {why}. {remedy}"
        )
    return values.astype(dtype)

"""Casting an input to the dtype a network computes in, within its range.

A network computes in one float dtype (X's on a first fit, the fitted
weights' on a continuing one). A finite value beyond that dtype's range
(float64 data over 3.4e38 cast to float32) would become infinite there and
poison the fit; it is refused instead, naming the input.
"""

import numpy as np


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
    data = values.data if hasattr(values, "toarray") else np.asarray(values)
    largest = float(np.abs(data).max(initial=0))
    limit = float(np.finfo(dtype).max)
    if largest > limit:
        raise ValueError(
            f"{name} holds values too large for {dtype} (largest |{name}| = "
            f"{largest:.6g}; {dtype} holds up to {limit:.6g}): {why}. {remedy}"
        )
    return values.astype(dtype)

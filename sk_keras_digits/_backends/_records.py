"""Records of NumPy values and their tensor twins: the rule both backends use.

A backend turns a record of :mod:`sk_keras_digits._state` (nested named
tuples of NumPy arrays and Python numbers, None for an absent part) into
tensors leaf by leaf, with the dtypes :func:`leaf_dtype` gives, and back with
:func:`restore`. Written once, so a state crosses either backend the same way
and a model file saved on one trains on the other.
"""

import numpy as np


def leaf_dtype(value, dtype):
    """The dtype of ``value``'s tensor in a program computing in ``dtype``.

    Arrays keep their own dtype; Python and NumPy integers (counters such as
    ``Progress.no_improvement``) are ``int32``; every other number (Python or
    NumPy floats, bools read as numbers) takes the compute ``dtype``.
    """
    if isinstance(value, np.ndarray):
        return value.dtype
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return np.dtype("int32")
    return np.dtype(dtype)


def restore(values, like, convert):
    """``values`` (tensors) back to the NumPy record ``like`` has.

    ``values`` has the structure of ``like``, except where ``like`` holds None
    (an absent part, which a program may carry as anything). Arrays come back
    as arrays (a 0-d array stays one), numbers as ``like``'s type.

    Parameters
    ----------
    values : nested tuples of tensors
    like : nested tuples of NumPy arrays, numbers and None
    convert : callable
        One tensor to a NumPy array (the backend's).
    """
    if like is None:
        return None
    if isinstance(like, tuple):
        pairs = zip(values, like, strict=True)
        parts = [restore(value, part, convert) for value, part in pairs]
        return type(like)(*parts) if hasattr(like, "_fields") else tuple(parts)
    value = np.asarray(convert(values))
    if isinstance(like, np.ndarray):
        return value
    return type(like)(value)

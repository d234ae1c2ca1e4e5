"""Methods an estimator offers only under some parameters (``partial_fit``).

:func:`available_if` is scikit-learn's decorator of the same name with one
difference: the ``AttributeError`` of an unavailable method carries the
check's own message (what to change, what to use instead), where
scikit-learn's says only that the attribute is missing and chains the reason.
``hasattr`` is False for such a method, so scikit-learn's checks and
meta-estimators skip it.
"""

from functools import update_wrapper, wraps
from types import MethodType


def available_if(check):
    """Offer the decorated method only where ``check(estimator)`` passes.

    Parameters
    ----------
    check : callable
        Called with the estimator; raises an ``AttributeError`` saying why the
        method is unavailable, or returns.

    Returns
    -------
    decorator : callable
    """
    return lambda method: _Available(method, check)


class _Available:
    """The descriptor :func:`available_if` puts in the method's place."""

    def __init__(self, method, check):
        self.method = method
        self.check = check
        update_wrapper(self, method)  # its name and docstring, for the docs

    def _check(self, estimator, owner):
        try:
            self.check(estimator)
        except AttributeError as exc:
            raise AttributeError(
                f"This {owner.__name__!r} has no attribute "
                f"{self.method.__name__!r}: {exc}"
            ) from None

    def __get__(self, estimator, owner=None):
        if estimator is None:  # on the class: the method, checked when called

            @wraps(self.method)
            def unbound(*args, **kwargs):
                self._check(args[0], type(args[0]))
                return self.method(*args, **kwargs)

            return unbound
        self._check(estimator, owner or type(estimator))
        return MethodType(self.method, estimator)

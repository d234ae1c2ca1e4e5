"""NetworkBuilder: a custom architecture whose parameters grid-search by name.

A :class:`NetworkBuilder` is to the ``network`` of
:class:`~sk_keras_digits.KerasDigitClassifier` and
:class:`~sk_keras_digits.KerasDigitRegressor` what a kernel object is to
:class:`~sklearn.gaussian_process.GaussianProcessClassifier`'s ``kernel``: its
constructor's keyword arguments are parameters that ``get_params``,
``set_params``, :func:`~sklearn.base.clone` and
:class:`~sklearn.model_selection.GridSearchCV` reach as ``network__<name>``.

This module does not import Keras: ``import sk_keras_digits`` stays light, and
Keras is imported only when a builder is called (at fit).
"""

import math
from abc import ABCMeta, abstractmethod
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator

from ._backends import import_keras


class NetworkBuilder(BaseEstimator, metaclass=ABCMeta):
    """Base class for custom architectures with searchable parameters.

    Subclass it, take the architecture's hyper-parameters as keyword
    arguments of ``__init__`` and store them unchanged under the same names
    (as a scikit-learn estimator does: no validation, no other work), and
    implement :meth:`build`. Pass an instance as
    ``KerasDigitClassifier(network=...)``: its parameters then appear in the
    estimator's ``get_params()`` as ``network__<name>``, so ``set_params``,
    :func:`~sklearn.base.clone` and
    :class:`~sklearn.model_selection.GridSearchCV` reach them by name.

    Define subclasses at module level (not inside a function), so that pickle
    and process-based parallelism can find the class again.

    See Also
    --------
    KerasDigitClassifier : The estimator whose ``network`` takes a builder.
    sklearn.gaussian_process.kernels.Kernel : The same idea for Gaussian
        process kernels.

    Notes
    -----
    Calling a builder, ``builder(n_features_in, n_outputs,
    output_activation)``, calls :meth:`build` and checks that it returned a
    ``keras.Model``: a builder is a valid ``network`` wherever a function is.

    Two builders are equal when they are of the same class and their
    parameters are equal; parameters that are Keras objects (initializers,
    regularizers, layers: anything with ``get_config()``) compare by class and
    config, so a clone equals its original. Builders hash by class alone,
    which stays consistent with equality when ``set_params`` changes one.

    Examples
    --------
    >>> from sk_keras_digits import KerasDigitClassifier, NetworkBuilder
    >>> class Dense(NetworkBuilder):
    ...     def __init__(self, units=32, dropout=0.0):
    ...         self.units = units
    ...         self.dropout = dropout
    ...
    ...     def build(self, n_features_in, n_outputs, output_activation):
    ...         import keras
    ...
    ...         return keras.Sequential([
    ...             keras.Input((n_features_in,)),
    ...             keras.layers.Dense(self.units, activation="relu"),
    ...             keras.layers.Dropout(self.dropout),
    ...             keras.layers.Dense(n_outputs, activation=output_activation),
    ...         ])
    >>> clf = KerasDigitClassifier(network=Dense(units=16))
    >>> clf
    KerasDigitClassifier(network=Dense(units=16))
    >>> clf.get_params()["network__units"]
    16
    >>> clf.set_params(network__dropout=0.2).network
    Dense(dropout=0.2, units=16)
    """

    @abstractmethod
    def build(self, n_features_in, n_outputs, output_activation):
        """Build the network, freshly initialised, from this builder's parameters.

        Called at fit under a scoped seed drawn from the estimator's
        ``random_state``; layers that do not set their own dtype compute in
        the dtype of ``X``. Import Keras inside this method (or in the module
        that defines the subclass), not at the top of a module that must
        stay light.

        Parameters
        ----------
        n_features_in : int
            The number of input features (columns of ``X``).
        n_outputs : int
            The width of the output: for a classifier, the number of classes
            for multiclass targets, 1 for binary targets, the number of
            labels for multilabel targets; for a regressor, the number of
            target columns (1 for a 1-d ``y``).
        output_activation : {"softmax", "sigmoid", "linear", "exponential"}
            Keras' name of the activation the last layer must apply: a
            classifier's ``"softmax"`` (multiclass) or ``"sigmoid"`` (binary,
            multilabel); a regressor's ``"linear"`` (``loss="squared_error"``)
            or ``"exponential"`` (``loss="poisson"``).

        Returns
        -------
        model : keras.Model
            An uncompiled model mapping ``(n_samples, n_features_in)`` inputs
            to ``(n_samples, n_outputs)`` outputs: class probabilities, or
            predicted targets.
        """

    def __call__(self, n_features_in, n_outputs, output_activation):
        """Build the network with :meth:`build` and check that it is a model.

        Parameters
        ----------
        n_features_in : int
            The number of input features.
        n_outputs : int
            The width of the output.
        output_activation : {"softmax", "sigmoid", "linear", "exponential"}
            Keras' name of the activation the last layer must apply.

        Returns
        -------
        model : keras.Model
            The model :meth:`build` returned.
        """
        model = self.build(n_features_in, n_outputs, output_activation)
        keras = import_keras()

        if not isinstance(model, keras.Model):
            raise TypeError(
                f"{type(self).__name__}.build must return a keras.Model, got "
                f"{type(model).__name__} from {self!r}."
            )
        return model

    def __eq__(self, other):
        if not isinstance(other, NetworkBuilder):
            return NotImplemented
        if type(self) is not type(other):
            return False
        return _equal(self.get_params(deep=False), other.get_params(deep=False))

    def __hash__(self):
        # Equal builders share a class, so this agrees with __eq__, and it
        # does not change when set_params changes a parameter.
        return hash(type(self))


def _equal(a, b):
    """Whether two parameter values are equal, for builders' ``__eq__``."""
    if a is b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if _is_nan(a) and _is_nan(b):
        return True
    if _has_config(a) or _has_config(b):
        # Keras objects compare by identity; their config says what they do.
        if type(a) is not type(b):
            return False
        from ._fixes import serialization_without_tensorflow

        try:
            with serialization_without_tensorflow():
                return _equal(a.get_config(), b.get_config())
        except Exception:
            return False
    try:
        result = a == b
    except Exception:
        return False
    return isinstance(result, (bool, np.bool_)) and bool(result)


def _is_nan(value):
    return isinstance(value, Real) and math.isnan(value)


def _has_config(value):
    """Whether ``value`` follows Keras' convention of describing itself by config."""
    return (
        not isinstance(value, type)
        and not hasattr(value, "get_params")
        and callable(getattr(value, "get_config", None))
    )

"""sk_keras_digits: a Keras network as a scikit-learn estimator.

:class:`KerasDigitClassifier` and :class:`KerasDigitRegressor` are the twins of
scikit-learn's ``MLPClassifier`` and ``MLPRegressor``.

``import sk_keras_digits`` is light: Keras and its backend (TensorFlow or
JAX) load on the first fit, so that import, :func:`~sklearn.base.clone`,
``get_params`` and the command line's ``--help`` stay fast.
"""

from ._classifier import KerasDigitClassifier
from ._distributed import dask_backend
from ._network_builder import NetworkBuilder
from ._persistence import ModelFileError, load, save
from ._plotting import plot_grid_search, plot_learning_curves, plot_predictions
from ._regressor import KerasDigitRegressor
from ._version import __version__

__all__ = [
    "KerasDigitClassifier",
    "KerasDigitRegressor",
    "ModelFileError",
    "NetworkBuilder",
    "__version__",
    "dask_backend",
    "load",
    "plot_grid_search",
    "plot_learning_curves",
    "plot_predictions",
    "save",
]

"""Small regression data and fits for the persistence tests.

Imports neither Keras nor a backend, so that ``conftest.py`` may use it
before the tests' backend is chosen.
"""

import numpy as np

#: A small SGD fit of a regressor, on :func:`regression_data`'s 6 features.
SMALL_REGRESSION = dict(
    hidden_layer_sizes=(5,),
    solver="sgd",
    learning_rate_init=0.05,
    batch_size=20,
    max_iter=4,
    random_state=0,
)


def regression_data():
    """60 samples of 6 standardized features and 2 scaled targets (X, Y).

    ``Y[:, 0]`` is a 1-d target; :func:`counts` gives Poisson targets.
    """
    from sklearn.datasets import make_regression

    X, Y = make_regression(n_samples=60, n_features=6, n_targets=2, random_state=0)
    return (X - X.mean(axis=0)) / X.std(axis=0), Y / Y.std()


def counts(Y):
    """Non-negative integer targets (Poisson counts) made from ``Y``."""
    return np.round(np.exp(Y))

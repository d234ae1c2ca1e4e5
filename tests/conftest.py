"""Shared fixtures: small slices of scikit-learn's 8x8 digits."""

import os

# Quiet TensorFlow's C++ logging in the test run; set before TensorFlow loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

#: The tutorial's network and solver settings, in MLPClassifier's names.
TUTORIAL = dict(
    hidden_layer_sizes=(15,),
    activation="logistic",
    solver="sgd",
    learning_rate_init=0.1,
    momentum=0.9,
    alpha=1e-4,
    batch_size=100,
    max_iter=50,
)


@pytest.fixture(scope="session")
def digits():
    """All 1797 digits as float64 (X, y)."""
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y


@pytest.fixture(scope="session")
def tutorial_split(digits):
    """The tutorial's split: the first 1000 digits train, the rest test."""
    X, y = digits
    return X[:1000], y[:1000], X[1000:], y[1000:]


@pytest.fixture(scope="session")
def small_digits(digits):
    """300 digits scaled to [0, 1], for quick fits."""
    X, y = digits
    return X[:300] / 16.0, y[:300]


@pytest.fixture
def tutorial_params():
    return dict(TUTORIAL)

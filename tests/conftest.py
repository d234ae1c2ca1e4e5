"""Shared fixtures: small slices of scikit-learn's 8x8 digits."""

import os

# Quiet TensorFlow's C++ logging in the test run; set before TensorFlow loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from sk_keras_digits._tutorial import N_TRAIN, TUTORIAL_PARAMS  # noqa: E402

# Property-based tests (hypothesis) share these profiles. "ci", the default, is
# reproducible (a fixed seed per test, no example database) and bounded: each
# test sets its own max_examples, sized to the suite's time budget, and fits
# are slow (no deadline, no too_slow health check). "thorough" explores anew
# with more examples: HYPOTHESIS_PROFILE=thorough pytest tests/test_parameters.py
_PROFILE = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", derandomize=True, max_examples=50, **_PROFILE)
settings.register_profile("thorough", max_examples=500, **_PROFILE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def digits():
    """All 1797 digits as float64 (X, y)."""
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y


@pytest.fixture(scope="session")
def tutorial_split(digits):
    """The tutorial's split: the first 1000 digits train, the rest test."""
    X, y = digits
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


@pytest.fixture(scope="session")
def small_digits(digits):
    """300 digits scaled to [0, 1], for quick fits."""
    X, y = digits
    return X[:300] / 16.0, y[:300]


@pytest.fixture
def tutorial_params():
    return dict(TUTORIAL_PARAMS)

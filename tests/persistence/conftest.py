"""Fixtures shared by the persistence tests: small fits and their model files."""

import pytest

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor, save
from tests._helpers import SMALL
from tests.persistence._regression import SMALL_REGRESSION, regression_data


# -- fixtures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(small_digits):
    X, y = small_digits
    return X[:200], y[:200]


@pytest.fixture(scope="module")
def dense(data):
    return KerasDigitClassifier(**SMALL).fit(*data)


@pytest.fixture(scope="module")
def dense_file(dense, tmp_path_factory):
    path = tmp_path_factory.mktemp("dense") / "dense.skd"
    save(dense, path)
    return path


@pytest.fixture(scope="module")
def regression():
    """(X, Y): 60 samples, 6 features, 2 targets."""
    return regression_data()


@pytest.fixture(scope="module")
def regressor(regression):
    """A small regressor fitted on the first target (1-d y)."""
    X, Y = regression
    return KerasDigitRegressor(**SMALL_REGRESSION).fit(X, Y[:, 0])


@pytest.fixture(scope="module")
def regressor_file(regressor, tmp_path_factory):
    path = tmp_path_factory.mktemp("regressor") / "regressor.skd"
    save(regressor, path)
    return path

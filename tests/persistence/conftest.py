"""Fixtures shared by the persistence tests: a small fit and its model file."""

import pytest

from sk_keras_digits import KerasDigitClassifier, save
from tests._helpers import SMALL


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

"""Format-2 files written before the persistence subpackage load unchanged.

The files in ``tests/data/format_2`` were written by
``tests/data/format_2/make_files.py`` at the commit before
``sk_keras_digits._persistence`` became a subpackage, with the probabilities
and fitted attributes it computed.
"""

import json
import pathlib

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from sk_keras_digits import KerasDigitClassifier, load, save
from sk_keras_digits._persistence import SavedNetwork
from tests._helpers import backend_name
from tests._networks import SmallDense

DATA = pathlib.Path(__file__).parents[1] / "data" / "format_2"
CASES = [
    "sgd",
    "adam_early_stopping_strings",
    "lbfgs_multilabel",
    "custom_adam",
    "keras_optimizer",
    "pipeline",
]


@pytest.fixture(scope="module")
def X():
    return np.load(DATA.parent / "format_1" / "X.npy")


def _rtol(case):
    """Files were written on TensorFlow. A custom network's Keras layers compute
    a little differently on another backend (batch normalisation's epsilon is
    a float32 constant on JAX): the default network is exact everywhere."""
    if case == "custom_adam" and backend_name() != "tensorflow":
        return 1e-6
    return 1e-12


def _attributes(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


@pytest.mark.parametrize("case", CASES)
def test_format_2_files_load_as_they_were_saved(case, X, tmp_path):
    expected = json.loads((DATA / "attributes.json").read_text())[case]
    est = load(DATA / f"{case}.skd")
    np.testing.assert_allclose(
        est.predict_proba(X), np.load(DATA / f"{case}_proba.npy"), rtol=_rtol(case)
    )
    last = _attributes(est)
    assert isinstance(last, KerasDigitClassifier)
    for name, value in expected.items():
        got = getattr(last, name)
        got = got.tolist() if isinstance(got, np.ndarray) else got
        assert got == value, name
    if case == "custom_adam":
        assert isinstance(est.network, SavedNetwork)
    # Saved again, it loads with the same state.
    save(est, tmp_path / "again.skd")
    again = load(tmp_path / "again.skd")
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    assert repr(_attributes(again)._fitted_record().state) == repr(
        last._fitted_record().state
    )


def test_format_2_custom_network_loads_with_its_builder(X):
    est = load(DATA / "custom_adam.skd", network=SmallDense())
    assert est.network == SmallDense()
    np.testing.assert_allclose(
        est.predict_proba(X),
        np.load(DATA / "custom_adam_proba.npy"),
        rtol=_rtol("custom_adam"),
    )

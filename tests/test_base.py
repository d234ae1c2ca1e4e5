"""The shared base: the fitted record hooks persistence uses."""

import numpy as np
import pytest

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._state import FittedEstimator


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    return KerasDigitClassifier(hidden_layer_sizes=[7], max_iter=3, random_state=0).fit(
        X, y
    )


def test_a_record_restores_an_equal_estimator(fitted, small_digits):
    X, _ = small_digits
    record = fitted._fitted_record()
    assert isinstance(record, FittedEstimator)
    assert record.hidden_layer_sizes == (7,) and record.n_features_in == 64
    restored = KerasDigitClassifier._from_fitted_record(record)
    assert restored.get_params() == fitted.get_params()
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.coefs_[0] is fitted.coefs_[0]  # the state, not a copy


@pytest.mark.parametrize(
    "change, match",
    [
        ({"params": {"alpha": -1.0}}, "alpha"),
        ({"params": {"hidden_layer_sizes": [0]}}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (8,)}, "hidden_layer_sizes"),
    ],
)
def test_a_record_with_invalid_parameters_is_refused(fitted, change, match):
    record = fitted._fitted_record()
    if "params" in change:
        record = record._replace(params={**record.params, **change["params"]})
    else:
        record = record._replace(**change)
    with pytest.raises((TypeError, ValueError), match=match):
        KerasDigitClassifier._from_fitted_record(record)


def test_an_unfitted_estimator_has_no_record():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KerasDigitClassifier()._fitted_record()

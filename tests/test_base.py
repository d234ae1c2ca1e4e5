"""The shared base: the fitted record hooks persistence uses, prediction's checks."""

import warnings

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import validate_data

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._state import FittedEstimator
from tests._helpers import TENSORFLOW_SESSION


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


# -- the checks of prediction's input -------------------------------------------
def _outcome(call):
    """What ``call()`` returns or raises, and the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("returned", call())
        except Exception as exc:  # compared, not hidden
            result = ("raised", type(exc), str(exc))
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.fixture(scope="module")
def narrow(small_digits):
    """Estimators fitted on 4 features: from an array, and from a data frame."""
    pd = pytest.importorskip("pandas")
    X, y = small_digits
    X = X[:100, 20:24]
    plain = KerasDigitClassifier(hidden_layer_sizes=[3], max_iter=2, random_state=0)
    named = KerasDigitClassifier(hidden_layer_sizes=[3], max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X, y[:100])
        named.fit(pd.DataFrame(X, columns=list("abcd")), y[:100])
    return plain, named


def _cast(array, dtype):
    with np.errstate(all="ignore"):
        return array.astype(dtype)


#: Inputs for prediction: float matrices of the fitted width (4), which the
#: predict path checks itself, and arrays of any dtype and shape.
_PREDICT_INPUTS = st.one_of(
    arrays(
        st.sampled_from(["float64", "float32"]),
        st.tuples(st.integers(0, 6), st.just(4)),
        elements=st.floats(width=32),
    ),
    arrays(
        "float64",
        array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)
        | st.tuples(st.integers(0, 6), st.sampled_from([3, 4, 5])),
        elements=st.floats(width=32),
    ).flatmap(
        lambda a: st.sampled_from(
            ["float64", "float32", "float16", "int64", "bool", "O"]
        ).map(lambda dtype: _cast(a, dtype))
    ),
)


@TENSORFLOW_SESSION
@settings(max_examples=120, deadline=None)
@given(
    X=_PREDICT_INPUTS,
    layout=st.sampled_from(["C", "F", "strided"]),
    named=st.booleans(),
    assume_finite=st.booleans(),
)
def test_prediction_checks_its_input_as_validate_data(
    narrow, X, layout, named, assume_finite
):
    """Any array: the same array, error or warning as scikit-learn's
    ``validate_data`` gives (the predict path checks plain float matrices
    itself)."""
    est = narrow[named]
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided" and X.ndim == 2:
        X = np.repeat(X, 2, axis=1)[:, ::2]
    with sklearn.config_context(assume_finite=assume_finite):
        ours = _outcome(lambda: est._validate_for_predict(X))
        reference = _outcome(
            lambda: validate_data(
                est,
                X,
                accept_sparse=["csr", "csc"],
                dtype=(np.float64, np.float32),
                reset=False,
            )
        )
    (kind, *result), caught = ours
    (expected_kind, *expected), expected_caught = reference
    assert (kind, caught) == (expected_kind, expected_caught)
    if kind == "raised":
        assert result == expected
    else:
        (array,), (expected_array,) = result, expected
        assert (array is X) == (expected_array is X)
        assert array.dtype == expected_array.dtype
        np.testing.assert_array_equal(array, expected_array)

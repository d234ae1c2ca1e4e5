"""Sample weights: checked in float64, cast to X's dtype within its range."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._sample_weights import check_sample_weight

weights = hnp.arrays(
    np.float64,
    st.integers(1, 6),
    elements=st.one_of(
        st.just(0.0),
        st.floats(0, 1e308, allow_subnormal=True),
        st.sampled_from([1e-320, 1e-300, 1e-40, 1e38, 1e39]),
    ),
)


@given(sample_weight=weights, dtype=st.sampled_from([np.float32, np.float64]))
def test_weights_are_cast_to_xs_dtype_or_refused_naming_them(sample_weight, dtype):
    """Refused if all zero, all below the smallest normal number, or beyond
    the range, one or their sum (the loss divides by it); else cast."""
    X = np.zeros((len(sample_weight), 2), dtype)
    info = np.finfo(dtype)
    largest = sample_weight.max()
    if largest == 0:
        with pytest.raises(ValueError, match="at least one non-zero"):
            check_sample_weight(sample_weight, X)
    elif largest < info.tiny:
        with pytest.raises(ValueError, match="^sample_weight's largest value"):
            check_sample_weight(sample_weight, X)
    elif largest > info.max:
        with pytest.raises(ValueError, match="^sample_weight holds values too large"):
            check_sample_weight(sample_weight, X)
    elif sample_weight.sum() > info.max:
        with pytest.raises(ValueError, match=f"^sample_weight sums to .* {X.dtype}'s"):
            check_sample_weight(sample_weight, X)
    else:
        checked = check_sample_weight(sample_weight, X)
        assert checked.dtype == dtype
        np.testing.assert_array_equal(checked, sample_weight.astype(dtype))


def test_no_weights_weigh_every_sample_one():
    checked = check_sample_weight(None, np.zeros((3, 2), np.float32))
    assert checked.dtype == np.float32
    np.testing.assert_array_equal(checked, np.ones(3))


@pytest.mark.parametrize(
    "dtype, weight, match",
    [
        (np.float64, 1e-320, "smallest normal float64"),  # MLP: diverged
        (np.float32, 1e-300, "smallest normal float32"),
        (np.float32, 1e39, "sample_weight holds values too large for float32"),
    ],
)
def test_a_fit_refuses_weights_its_loss_cannot_hold(small_digits, dtype, weight, match):
    X, y = small_digits
    with pytest.raises(ValueError, match=match):
        KerasDigitClassifier(max_iter=2).fit(
            X.astype(dtype), y, sample_weight=np.full(len(y), weight)
        )

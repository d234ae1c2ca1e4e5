"""Casting to the network's dtype: within its range, or refused naming the input."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sk_keras_digits._casting import cast_in_range, densified

FLOAT32_MAX = float(np.finfo(np.float32).max)

finite_doubles = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
    elements=st.floats(allow_nan=False, allow_infinity=False),
)


@given(values=finite_doubles, sparse=st.booleans())
def test_a_cast_is_exact_within_range_and_refused_beyond(values, sparse):
    if sparse:
        values = sp.csr_matrix(np.atleast_2d(values))
    data = values.data if sparse else values
    beyond = data.size and np.abs(data).max() > FLOAT32_MAX
    if beyond:
        with pytest.raises(ValueError, match=r"^X holds values too large for float32"):
            cast_in_range(values, np.float32, "X", "why", "remedy")
        return
    cast = cast_in_range(values, np.float32, "X", "why", "remedy")
    expected = values.astype(np.float32)
    assert cast.dtype == np.float32
    if sparse:
        cast, expected = cast.toarray(), expected.toarray()
    np.testing.assert_array_equal(cast, expected)
    assert np.isfinite(cast).all()


@given(values=finite_doubles)
def test_the_same_dtype_is_returned_as_is(values):
    assert cast_in_range(values, np.float64, "y", "why", "remedy") is values


def test_the_message_names_the_input_value_limit_and_remedy():
    with pytest.raises(ValueError) as error:
        cast_in_range(np.array([1.0, -5e38]), np.float32, "y", "the reason", "Scale y.")
    assert str(error.value) == (
        "y holds values too large for float32 (largest |y| = 5e+38; float32 "
        "holds up to 3.40282e+38): the reason. Scale y."
    )


def test_integer_values_cast_within_range():
    cast = cast_in_range(np.arange(4), np.float32, "y", "why", "remedy")
    np.testing.assert_array_equal(cast, np.arange(4, dtype=np.float32))


@given(
    rows=st.integers(1, 50),
    columns=st.integers(1, 50),
    memory=st.integers(0, 2**16),
)
def test_a_sparse_x_is_made_dense_only_within_a_quarter_of_memory(
    rows, columns, memory
):
    X = sp.random(rows, columns, density=0.3, format="csr", random_state=0)
    needed = rows * columns * 8
    if needed > memory / 4:
        with pytest.raises(ValueError, match=r"^X is a sparse .* training holds X"):
            densified(X, memory=memory)
    else:
        np.testing.assert_array_equal(densified(X, memory=memory), X.toarray())
    dense = X.toarray()
    assert densified(dense, memory=0) is dense


def test_a_fit_refuses_a_sparse_x_too_wide_to_train_dense(small_digits):
    """MLPClassifier multiplies sparse X as it is; training here holds X dense:
    a billion features would need 1.6 TB for 200 rows. The estimator is left
    as it was (unfitted)."""
    from sk_keras_digits import KerasDigitClassifier

    _, y = small_digits
    rows = np.arange(200)
    X = sp.csr_matrix((np.ones(200), (rows, rows * 4_999_999)), shape=(200, 10**9))
    est = KerasDigitClassifier(max_iter=1)
    with pytest.raises(ValueError, match=r"^X is a sparse 200 x 1000000000 matrix"):
        est.fit(X, y[:200])
    assert not hasattr(est, "n_features_in_")

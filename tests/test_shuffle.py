"""The rows' order of each epoch (sk_keras_digits._shuffle)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sk_keras_digits._shuffle import (
    MAX_ORDER_ENTRIES,
    MIN_CAPACITY,
    capacity,
    epoch_orders,
)


@given(
    n_rows=st.integers(1, 500),
    extra=st.integers(0, 40),
    n_epochs=st.integers(1, 20),
    seed=st.integers(0, 2**31 - 2),
)
def test_each_epoch_permutes_the_real_rows_and_keeps_the_padding(
    n_rows, extra, n_epochs, seed
):
    rows = n_rows + extra
    length = capacity(n_epochs, rows)
    orders = epoch_orders(seed, 0, n_epochs, n_rows, rows, length)
    assert orders.shape == (length, rows) and orders.dtype == np.int32
    for order in orders[:n_epochs]:
        assert sorted(order[:n_rows]) == list(range(n_rows))
        np.testing.assert_array_equal(order[n_rows:], np.arange(n_rows, rows))


@given(split=st.integers(1, 9), seed=st.integers(0, 1000))
def test_orders_do_not_depend_on_the_chunks(split, seed):
    whole = epoch_orders(seed, 0, 10, 50, 64, 16)[:10]
    first = epoch_orders(seed, 0, split, 50, 64, 16)[:split]
    rest = epoch_orders(seed, split, 10 - split, 50, 64, 16)[: 10 - split]
    np.testing.assert_array_equal(whole, np.concatenate([first, rest]))


def test_seeds_and_epochs_give_different_orders():
    a = epoch_orders(1, 0, 2, 100, 100, 16)
    b = epoch_orders(2, 0, 2, 100, 100, 16)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], b[0])


@given(n_epochs=st.integers(1, 5000), rows=st.integers(1, 1 << 24))
def test_capacity_is_a_bounded_power_of_two(n_epochs, rows):
    length = capacity(n_epochs, rows)
    assert length >= n_epochs and length & (length - 1) == 0
    if length > MIN_CAPACITY:
        assert length < 2 * n_epochs
    if MIN_CAPACITY * rows > MAX_ORDER_ENTRIES:
        assert length < 2 * n_epochs

"""The rows' order of each epoch (sk_keras_digits._shuffle)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sk_keras_digits._shuffle import (
    MAX_ORDER_ENTRIES,
    MIN_CAPACITY,
    EpochOrders,
    capacity,
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
    orders = EpochOrders(seed, n_rows, rows).draw(n_epochs, length)
    assert orders.shape == (length, rows) and orders.dtype == np.int32
    for order in orders[:n_epochs]:
        assert sorted(order[:n_rows]) == list(range(n_rows))
        np.testing.assert_array_equal(order[n_rows:], np.arange(n_rows, rows))
    # The rows after the call's epochs are never read: zeros.
    assert not orders[n_epochs:].any()


@given(
    chunks=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    seed=st.integers(0, 2**31 - 2),
)
def test_orders_do_not_depend_on_the_chunks(chunks, seed):
    n_epochs = sum(chunks)
    whole = EpochOrders(seed, 50, 64).draw(n_epochs, capacity(n_epochs))[:n_epochs]
    orders = EpochOrders(seed, 50, 64)
    parts = [orders.draw(count, capacity(count))[:count] for count in chunks]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    assert orders.drawn == n_epochs


def test_orders_are_numpys_permutations_of_the_seed():
    """Epoch e's order is the e-th permutation default_rng(seed) draws."""
    rng = np.random.default_rng(1234)
    expected = [rng.permutation(30) for _ in range(4)]
    orders = EpochOrders(1234, 30, 32).draw(4, 8)
    np.testing.assert_array_equal(orders[:4, :30], expected)


def test_seeds_and_epochs_give_different_orders():
    a = EpochOrders(1, 100, 100).draw(2, 16)
    b = EpochOrders(2, 100, 100).draw(2, 16)
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

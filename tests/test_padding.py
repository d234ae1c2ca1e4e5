"""Shape buckets and width padding (sk_keras_digits._padding)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sk_keras_digits._padding import (
    NARROW_WIDTHS,
    WidthPadding,
    bucket,
    padded_rows,
    padded_width,
    row_bucket,
)
from sk_keras_digits._solvers import SGD, Adam
from sk_keras_digits._state import Progress, TrainingState, Weights
from sk_keras_digits._training_config import TrainingData

sizes = st.integers(1, 1 << 20)


@given(n=sizes, minimum=st.integers(1, 4096))
def test_a_bucket_holds_n_and_pads_less_than_a_quarter_above_64(n, minimum):
    size = bucket(n, minimum)
    n = max(n, minimum)
    assert size >= n
    if n > 64:
        # Steps of an eighth of the enclosing power of two, which is < 2n.
        assert size - n < n / 4
    assert bucket(size, minimum) == size  # a bucket is its own bucket


@given(a=sizes, b=sizes)
def test_buckets_are_monotonic(a, b):
    a, b = sorted((a, b))
    assert bucket(a) <= bucket(b)
    assert padded_width(a) <= padded_width(b)


@given(n=st.integers(1, 64))
def test_narrow_widths_fall_in_two_buckets(n):
    assert padded_width(n) in NARROW_WIDTHS


def test_a_grid_of_five_hidden_sizes_needs_two_widths():
    assert {padded_width(n) for n in (5, 10, 15, 30, 60)} == {16, 64}


@given(n=st.integers(1, 3000))
def test_padded_rows_weigh_zero(n):
    rng = np.random.default_rng(n)
    part = TrainingData(rng.random((n, 3)), rng.random((n, 2)), rng.random(n) + 0.5)
    padded = padded_rows(part)
    rows = len(padded.X)
    assert rows == row_bucket(n) and all(len(v) == rows for v in padded)
    assert rows >= 16 and rows & (rows - 1) == 0 and (rows < 2 * n or rows == 16)
    for real, pad in zip(part, padded, strict=True):
        np.testing.assert_array_equal(pad[:n], real)
        assert not pad[n:].any()


units = st.lists(st.integers(1, 150), min_size=2, max_size=4)


def _weights(layer_units, rng, dtype):
    params = []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:], strict=True):
        params += [rng.random((fan_in, fan_out)), rng.random(fan_out)]
    return Weights(tuple(p.astype(dtype) for p in params), ())


@given(layer_units=units, dtype=st.sampled_from(["float32", "float64"]))
def test_a_padded_state_unpads_to_itself(layer_units, dtype):
    rng = np.random.default_rng(len(layer_units))
    padding = WidthPadding(layer_units)
    weights = _weights(layer_units, rng, dtype)
    for solver in (SGD(), Adam()):
        solver_state = solver.initial_state(weights)
        solver_state = type(solver_state)(
            *(
                rng.random(v.shape).astype(dtype) if isinstance(v, np.ndarray) else v
                for v in solver_state
            )
        )
        state = TrainingState(
            weights, solver_state, Progress(0.1, 1.0, 0.5, 2, 3.0, weights)
        )
        padded = padding.pad_state(state)
        shapes = [p.shape for p in padded.weights.params]
        assert shapes == padding.padded_shapes
        # The padding is zeros, and the mask marks exactly the real entries.
        flat = np.concatenate([p.ravel() for p in padded.weights.params])
        assert flat.size == padding.padded_size == padding.mask.size
        assert not flat[~padding.mask].any()
        np.testing.assert_array_equal(
            flat[padding.mask], np.concatenate([p.ravel() for p in weights.params])
        )
        back = padding.unpad_state(padded)
        for a, b in zip(back.weights.params, weights.params, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        for a, b in zip(back.progress.best_weights.params, weights.params, strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(back.solver, solver_state, strict=True):
            np.testing.assert_array_equal(a, b)


def test_outputs_are_never_padded():
    padding = WidthPadding([64, 15, 10])
    assert padding.padded_units == [64, 16, 10]
    assert padding.pads
    assert not WidthPadding([16, 64, 3]).pads


def test_padded_data_gain_zero_columns():
    padding = WidthPadding([5, 7, 2])
    part = TrainingData(np.ones((4, 5)), np.ones((4, 2)), np.ones(4))
    padded = padding.pad_data(part)
    assert padded.X.shape == (4, 16)
    assert not padded.X[:, 5:].any()
    assert padding.pad_data(None) is None


@pytest.mark.parametrize("bad", [0, -3])
def test_sizes_below_one_count_as_one(bad):
    assert bucket(bad) == 1

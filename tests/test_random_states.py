"""The user's global random generators, kept around Keras' code."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_keras_digits._random_states import random_states_kept


def test_the_generators_are_restored_even_when_the_block_fails():
    random.seed(3)
    np.random.seed(3)
    before = (random.getstate(), np.random.get_state()[1].copy())
    with pytest.raises(ZeroDivisionError):
        with random_states_kept():
            random.random()
            np.random.rand(5)
            raise ZeroDivisionError
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    python_draws=st.integers(0, 700),
    numpy_draws=st.integers(0, 700),
    gauss=st.booleans(),
)
def test_any_draws_inside_are_undone(seed, python_draws, numpy_draws, gauss):
    """Whatever the block draws (past a Mersenne twister's 624-word block, with
    a cached Gaussian or not), both generators continue as if it had not run."""
    random.seed(seed)
    np.random.seed(seed)
    if gauss:
        np.random.standard_normal()  # leaves a cached Gaussian in the state
    with random_states_kept():
        for _ in range(python_draws):
            random.random()
        np.random.rand(numpy_draws)
        np.random.standard_normal()
    after = (random.random(), np.random.standard_normal(), np.random.rand())
    random.seed(seed)
    np.random.seed(seed)
    if gauss:
        np.random.standard_normal()
    assert after == (random.random(), np.random.standard_normal(), np.random.rand())

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


#: NumPy's legacy global generator, or the bit generator a user may set for it
#: (``np.random.set_bit_generator``), whose state has another form.
BIT_GENERATORS = [None, np.random.PCG64, np.random.Philox, np.random.SFC64]


def _seed(seed, bit_generator, gauss):
    random.seed(seed)
    if bit_generator is None:
        np.random.seed(seed)
    else:
        np.random.set_bit_generator(bit_generator(seed))
    if gauss:
        np.random.standard_normal()  # leaves a cached Gaussian in the state


@pytest.mark.filterwarnings("error")
@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    bit_generator=st.sampled_from(BIT_GENERATORS),
    python_draws=st.integers(0, 700),
    numpy_draws=st.integers(0, 700),
    gauss=st.booleans(),
)
def test_any_draws_inside_are_undone(
    seed, bit_generator, python_draws, numpy_draws, gauss
):
    """Whatever the block draws (past a Mersenne twister's 624-word block, with
    a cached Gaussian or not), from whichever bit generator NumPy's global
    generator has, both generators continue as if it had not run, silently."""
    saved = np.random.get_bit_generator()
    try:
        _seed(seed, bit_generator, gauss)
        with random_states_kept():
            for _ in range(python_draws):
                random.random()
            np.random.rand(numpy_draws)
            np.random.standard_normal()
        after = (random.random(), np.random.standard_normal(), np.random.rand())
        _seed(seed, bit_generator, gauss)
        again = (random.random(), np.random.standard_normal(), np.random.rand())
    finally:
        np.random.set_bit_generator(saved)
    assert after == again


def test_another_threads_draws_during_a_block_repeat_no_value_of_the_users():
    """A thread drawing while a block runs draws from the private streams: the
    user's streams go on afterwards as if neither had drawn, and no value of
    theirs is handed out twice."""
    import threading

    np.random.seed(7)
    random.seed(7)
    expected = np.random.RandomState(7).random_sample(20), random.Random(7).random()
    inside, other = threading.Event(), []

    def draw():
        inside.wait()
        other.extend(np.random.random_sample(20))

    thread = threading.Thread(target=draw)
    thread.start()
    with random_states_kept():
        inside.set()
        thread.join()
    np.testing.assert_array_equal(np.random.random_sample(20), expected[0])
    assert random.random() == expected[1]
    assert not set(other) & set(expected[0])

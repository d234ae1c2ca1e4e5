"""The share of the machine's memory one piece of a fit's work may take."""

from hypothesis import given
from hypothesis import strategies as st

from sk_keras_digits._memory import MEMORY_SHARE, beyond_share, physical_memory


@given(needed=st.integers(0, 2**70), memory=st.integers(1, 2**50))
def test_work_beyond_the_share_of_memory_is_named(needed, memory):
    expected = memory if needed > MEMORY_SHARE * memory else None
    assert beyond_share(needed, memory) == expected


def test_the_machines_memory_is_read():
    memory = physical_memory()
    assert memory is None or memory > 2**20
    assert beyond_share(0) is None

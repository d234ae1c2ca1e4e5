"""The machine's memory, and the share of it one array of a fit may take.

Work whose size follows from the data or a network (a sparse X made dense, a
custom network's training step) is refused, with its size, when it would
take more than :data:`MEMORY_SHARE` of the machine's memory, rather than
left to fail in the allocator or to the system's out-of-memory killer.
"""

import os

#: Most of the machine's memory one such piece of work may take.
MEMORY_SHARE = 0.25


def physical_memory():
    """The machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def beyond_share(needed, memory=None):
    """The machine's memory (``memory``, else :func:`physical_memory`) if
    ``needed`` bytes exceed :data:`MEMORY_SHARE` of it, else None (also
    where the memory is unknown).

    Examples
    --------
    >>> from sk_keras_digits._memory import beyond_share
    >>> beyond_share(300, memory=1000), beyond_share(200, memory=1000)
    (1000, None)
    """
    memory = physical_memory() if memory is None else memory
    if memory is not None and needed > MEMORY_SHARE * memory:
        return memory
    return None

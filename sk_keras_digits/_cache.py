"""A small thread-safe least-recently-used cache.

It keeps what is costly to build and shared by every fit of the process: the
compiled training programs (:mod:`sk_keras_digits._training`) and the initial
states of Keras optimizers (:mod:`sk_keras_digits._solvers`).
"""

import collections
import threading


class LRUCache:
    """At most ``maxsize`` values, the least recently used evicted first.

    Parameters
    ----------
    maxsize : int
        Most values kept.
    """

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self._values = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, factory):
        """The value for ``key``, built with ``factory()`` if absent.

        The build runs under the cache's lock: two threads asking for the same
        key get the same value, built once.
        """
        with self._lock:
            value = self._values.get(key)
            if value is None:
                value = factory()
                self._values[key] = value
                while len(self._values) > self.maxsize:
                    self._values.popitem(last=False)
            else:
                self._values.move_to_end(key)
            return value

    def items(self):
        """The cached ``(key, value)`` pairs, least recently used first."""
        with self._lock:
            return list(self._values.items())

    def values(self):
        """The cached values, least recently used first."""
        return [value for _, value in self.items()]

    def __len__(self):
        return len(self._values)

    def clear(self):
        with self._lock:
            self._values.clear()

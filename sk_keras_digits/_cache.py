"""A small thread-safe least-recently-used cache.

It keeps what is costly to build and shared by every fit of the process: the
compiled training programs (:mod:`sk_keras_digits._training`) and the initial
states of Keras optimizers (:mod:`sk_keras_digits._solvers`).

Values are built *outside* the cache's lock. A build may run user code (a
custom network's builder), which may itself fit or predict with other
estimators and so ask the cache for other programs, or take long: the lock
is held only to look up and to record, never while building. Threads asking
for a key that another thread is building wait for that build (one build per
key), and only for it.
"""

import collections
import threading


class _Pending:
    """A value some thread is building: the others wait for it."""

    def __init__(self):
        self.builder = threading.get_ident()
        self._done = threading.Event()
        self.value = None
        self.failed = False

    def resolve(self, value):
        self.value = value
        self._done.set()

    def fail(self):
        self.failed = True
        self._done.set()

    def wait(self):
        self._done.wait()


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
        #: Evicted values that eviction would not free (``evictable`` False).
        self._aside = {}
        self._lock = threading.Lock()

    def get(self, key, factory=None):
        """The value for ``key``, built with ``factory()`` if absent.

        Two threads asking for the same key get the same value, built once by
        the first of them; the other waits for that build only. A build that
        raises caches nothing: a thread that was waiting for it builds the
        value itself. A build that asks for its own key (re-entrantly, in the
        same thread) gets a value of its own, built without caching. With
        ``factory=None`` the cache is only looked up: None when absent or
        still being built.
        """
        while True:
            with self._lock:
                entry = self._values.get(key)
                if entry is None and key in self._aside:
                    entry = self._values[key] = self._aside.pop(key)
                    self._evict()
                if entry is None:
                    if factory is None:
                        return None
                    entry = _Pending()
                    self._values[key] = entry
                    self._evict()
                    break
                self._values.move_to_end(key)
            if not isinstance(entry, _Pending):
                return entry
            if factory is None:
                return None  # a look-up does not wait for a build
            if entry.builder == threading.get_ident():
                # Our own build asks for its key: waiting would deadlock.
                return factory()
            entry.wait()
            if not entry.failed:
                return entry.value
            # The build failed in another thread: try again (and build).
        try:
            value = factory()
        except BaseException:
            with self._lock:
                if self._values.get(key) is entry:
                    del self._values[key]
            entry.fail()
            raise
        with self._lock:
            if self._values.get(key) is entry:
                self._values[key] = value
        entry.resolve(value)
        return value

    def _evict(self):
        while len(self._values) > self.maxsize:
            key, value = self._values.popitem(last=False)
            if not getattr(value, "evictable", True):
                self._aside[key] = value

    def set_aside(self):
        """The evicted values kept because evicting them frees nothing."""
        with self._lock:
            return list(self._aside.values())

    def items(self):
        """The cached ``(key, value)`` pairs, least recently used first.

        Values still being built are left out.
        """
        with self._lock:
            return [
                (key, value)
                for key, value in self._values.items()
                if not isinstance(value, _Pending)
            ]

    def values(self):
        """The cached values, least recently used first."""
        return [value for _, value in self.items()]

    def __len__(self):
        """The values under the ``maxsize`` bound (those set aside excluded)."""
        return len(self._values)

    def clear(self):
        """Forget every value, those set aside too."""
        with self._lock:
            self._values.clear()
            self._aside.clear()

"""The LRU cache shared by compiled programs and optimizer initial states."""

import threading

import pytest

from sk_keras_digits._cache import LRUCache


def test_keeps_the_most_recently_used_values():
    cache = LRUCache(maxsize=2)
    built = []

    def factory(value):
        def build():
            built.append(value)
            return value

        return build

    assert cache.get("a", factory(1)) == 1
    assert cache.get("b", factory(2)) == 2
    assert cache.get("a", factory(10)) == 1  # cached: not rebuilt, now recent
    assert cache.get("c", factory(3)) == 3  # evicts "b", the least recent
    assert [k for k, _ in cache.items()] == ["a", "c"]
    assert cache.values() == [1, 3] and len(cache) == 2
    assert built == [1, 2, 3]
    cache.clear()
    assert len(cache) == 0


def test_threads_asking_for_one_key_share_one_build():
    cache = LRUCache(maxsize=4)
    builds = []
    barrier = threading.Barrier(4)
    results = []

    def build():
        builds.append(1)
        return object()

    def work():
        barrier.wait()
        results.append(cache.get("key", build))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len({id(r) for r in results}) == 1


@pytest.mark.timeout(30)  # the lock held while building deadlocked here
def test_a_build_runs_outside_the_lock_and_may_use_the_cache():
    cache = LRUCache(maxsize=4)

    def outer():
        # A build asking for other keys (a builder using another estimator)
        # and for its own key (re-entrantly) does not wait on itself.
        return (cache.get("inner", lambda: "inner"), cache.get("outer", lambda: 1))

    assert cache.get("outer", outer) == ("inner", 1)
    assert cache.get("outer", None) == ("inner", 1)
    assert cache.get("inner", None) == "inner"


@pytest.mark.timeout(30)
def test_a_slow_build_blocks_only_the_threads_waiting_for_its_key():
    cache = LRUCache(maxsize=4)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        assert release.wait(10)
        return "slow"

    thread = threading.Thread(target=lambda: cache.get("slow", slow))
    thread.start()
    assert started.wait(10)
    # Another key is built and looked up while the slow build is running.
    assert cache.get("fast", lambda: "fast") == "fast"
    assert cache.get("slow", None) is None  # a look-up does not wait
    release.set()
    thread.join(10)
    assert cache.get("slow", None) == "slow"


@pytest.mark.timeout(30)
def test_a_failed_build_caches_nothing_and_a_waiting_thread_builds_again():
    cache = LRUCache(maxsize=4)
    started, release = threading.Event(), threading.Event()
    results = []

    def failing():
        started.set()
        assert release.wait(10)
        raise RuntimeError("build failed")

    def first():
        try:
            cache.get("key", failing)
        except RuntimeError as exc:
            results.append(str(exc))

    def second():
        results.append(cache.get("key", lambda: "rebuilt"))

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert started.wait(10)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == ["build failed", "rebuilt"]
    assert cache.get("key", None) == "rebuilt"


def test_pending_builds_are_not_listed_and_eviction_keeps_the_bound():
    cache = LRUCache(maxsize=2)
    for key in "abcd":
        cache.get(key, lambda key=key: key.upper())
    assert cache.items() == [("c", "C"), ("d", "D")]


class _Kept:
    """A value whose eviction would free nothing (a TensorFlow program)."""

    evictable = False

    def __init__(self, name):
        self.name = name


def test_values_eviction_would_not_free_are_set_aside_and_handed_back():
    cache = LRUCache(maxsize=2)
    built = []

    def build(key):
        built.append(key)
        return _Kept(key) if key.startswith("kept") else key

    for key in ("kept-a", "b", "kept-c", "d"):
        cache.get(key, lambda key=key: build(key))
    # The bound holds: "kept-a" and "b" were evicted; only "b" was dropped.
    assert [k for k, _ in cache.items()] == ["kept-c", "d"] and len(cache) == 2
    assert [v.name for v in cache.set_aside()] == ["kept-a"]
    assert cache.get("b", None) is None  # dropped: a look-up finds nothing
    kept = cache.get("kept-a", lambda: build("kept-a"))
    assert kept.name == "kept-a" and built == ["kept-a", "b", "kept-c", "d"]
    # Handed back into the bound, it evicts the least recent in turn.
    assert [k for k, _ in cache.items()] == ["d", "kept-a"]
    assert [v.name for v in cache.set_aside()] == ["kept-c"]
    cache.clear()
    assert len(cache) == 0 and cache.set_aside() == []

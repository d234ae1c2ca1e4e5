"""The LRU cache shared by compiled programs and optimizer initial states."""

import threading

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

"""The persistent compilation cache's store (sk_keras_digits._compile_cache).

Its use by the JAX backend (executables read back, damaged entries compiled
again) is tested in ``tests/backends/test_jax.py``.
"""

import os
import stat
import subprocess
import sys
import threading
import time
import warnings

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sk_keras_digits import _compile_cache
from sk_keras_digits._compile_cache import (
    ENV_DIR,
    ENV_MAX_MB,
    MAX_ENTRY_BYTES,
    CompileCache,
    configured_folder,
    configured_max_bytes,
    default_folder,
)


@pytest.fixture
def cache(tmp_path):
    return CompileCache(tmp_path / "xla", max_bytes=1 << 20)


def entry_path(cache, key):
    [(_, _, path)] = [e for e in cache.entries() if e[2] == cache._path(key)]
    return path


def test_an_entry_round_trips_and_the_folder_is_private(cache):
    assert cache.get(b"k") is None
    assert cache.put(b"k", b"payload")
    assert cache.get(b"k") == b"payload"
    assert cache.get(b"other") is None
    assert stat.S_IMODE(os.stat(cache.folder).st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(cache.folder / "key").st_mode) == 0o600
    assert not list(cache.folder.glob("*.tmp"))  # writes leave no temporaries


@given(
    position=st.integers(0, 200),
    byte=st.integers(0, 255),
    truncate=st.booleans(),
)
def test_a_damaged_entry_is_ignored_and_removed(
    tmp_path_factory, position, byte, truncate
):
    cache = CompileCache(tmp_path_factory.mktemp("xla"), max_bytes=1 << 20)
    payload = bytes(range(100)) * 2
    cache.put(b"key", payload)
    path = entry_path(cache, b"key")
    data = bytearray(path.read_bytes())
    position %= len(data)
    if truncate:
        data = data[:position]
    elif data[position] == byte:
        return  # not a change
    else:
        data[position] = byte
    path.write_bytes(bytes(data))
    assert cache.get(b"key") is None
    assert not path.exists()
    cache.put(b"key", payload)  # and it is written again
    assert cache.get(b"key") == payload


def test_an_entry_signed_by_another_cache_is_ignored(tmp_path):
    ours = CompileCache(tmp_path / "ours", 1 << 20)
    theirs = CompileCache(tmp_path / "theirs", 1 << 20)
    theirs.put(b"key", b"machine code from elsewhere")
    ours.put(b"seed", b"x")  # creates our folder and key
    foreign = entry_path(theirs, b"key")
    os.replace(foreign, ours._path(b"key"))
    assert ours.get(b"key") is None
    assert not ours._path(b"key").exists()


def test_an_entry_under_another_key_name_is_ignored(cache):
    """A valid entry copied under another key's name fails its signature."""
    cache.put(b"a", b"payload of a")
    cache.put(b"b", b"payload of b")
    os.replace(cache._path(b"a"), cache._path(b"b"))
    assert cache.get(b"b") is None


@pytest.mark.parametrize("kind", ["pipe", "link", "folder"])
def test_an_entry_that_is_no_regular_file_is_removed_unread(cache, tmp_path, kind):
    """A pipe is never opened for reading (it would wait for a writer forever),
    a link never followed (its target is left alone), an empty folder removed;
    the entry is then written."""
    cache.put(b"seed", b"x")  # creates the folder and key
    path = cache._path(b"key")
    target = tmp_path / "elsewhere"
    target.write_bytes(b"outside the cache")
    if kind == "pipe":
        os.mkfifo(path)
    elif kind == "link":
        path.symlink_to(target)
    else:
        path.mkdir()
    found = []
    reader = threading.Thread(
        target=lambda: found.append(cache.get(b"key")), daemon=True
    )
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "get() waited on the entry"
    assert found == [None]
    assert not os.path.lexists(path)
    assert target.read_bytes() == b"outside the cache"
    assert cache.get(b"seed") == b"x"
    assert cache.put(b"key", b"v") and cache.get(b"key") == b"v"


def test_a_folder_holding_files_under_an_entrys_name_is_left_alone(cache):
    """Only an empty folder is removed: one that holds anything is not the
    cache's, and its program is compiled without being kept."""
    cache.put(b"seed", b"x")
    path = cache._path(b"key")
    path.mkdir()
    (path / "notes.txt").write_bytes(b"mine")
    for _ in range(2):
        assert cache.get(b"key") is None
        assert not cache.put(b"key", b"v")
    assert (path / "notes.txt").read_bytes() == b"mine"
    assert not list(cache.folder.glob("*.tmp"))
    assert cache.get(b"seed") == b"x" and not cache.disabled


def test_abandoned_temporary_files_are_removed(cache):
    """A writer killed mid-write leaves its temporary file: the next write
    removes it once it is old, and leaves a live writer's alone."""
    cache.put(b"seed", b"x")
    old = cache.folder / "sk-keras-digits-dead1234.tmp"
    fresh = cache.folder / "sk-keras-digits-live1234.tmp"
    for path in (old, fresh):
        path.write_bytes(b"y" * 1000)
    when = time.time() - _compile_cache.STALE_TEMPORARY_SECONDS - 1
    os.utime(old, (when, when))
    cache.put(b"k", b"v")
    assert not old.exists() and fresh.exists()
    assert cache.get(b"seed") == b"x" and cache.get(b"k") == b"v"


def test_files_the_cache_did_not_write_are_never_removed(tmp_path):
    """A folder shared with other files (the variable pointed at a project
    folder): eviction and the clean-up of temporaries touch only the cache's
    own names, however old or large the others are."""
    cache = CompileCache(tmp_path / "shared", max_bytes=3_000)
    cache.put(b"seed", b"x")
    others = {
        "notes.tmp": b"mine",
        "user_dump.xla": b"z" * 5_000,
        f"{'a' * 63}.xla": b"z" * 5_000,  # one hex digit short of a key's name
        "sk-keras-digits-.tmp": b"mine",
    }
    when = time.time() - _compile_cache.STALE_TEMPORARY_SECONDS - 3600
    for name, data in others.items():
        (cache.folder / name).write_bytes(data)
        os.utime(cache.folder / name, (when, when))
    for i in range(5):
        cache.put(b"k%d" % i, b"v" * 1_000)
    for name, data in others.items():
        assert (cache.folder / name).read_bytes() == data
    assert cache.size() <= 3_000


def test_oversized_entries_are_not_kept_or_read(cache, monkeypatch):
    assert not cache.put(b"big", b"x" * (2 << 20))  # over the folder's limit
    monkeypatch.setattr(_compile_cache, "MAX_ENTRY_BYTES", 10)
    assert not cache.put(b"k", b"x" * 11)
    assert cache.put(b"k", b"x" * 10)
    assert MAX_ENTRY_BYTES >= 16 << 20


@given(sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=25))
def test_the_folder_stays_within_its_limit(tmp_path_factory, sizes):
    cache = CompileCache(tmp_path_factory.mktemp("xla"), max_bytes=10_000)
    for i, size in enumerate(sizes):
        cache.put(str(i).encode(), b"x" * size)
        assert cache.size() <= 10_000
    # The most recent entry is kept.
    assert cache.get(str(len(sizes) - 1).encode()) == b"x" * sizes[-1]


def test_the_least_recently_used_entry_goes_first(cache):
    cache.max_bytes = 3 * (1000 + 40)
    for key in (b"a", b"b", b"c"):
        cache.put(key, b"x" * 1000)
    for key, when in ((b"a", 3), (b"b", 1), (b"c", 2)):
        os.utime(cache._path(key), (when, when))
    cache.get(b"a")  # used now
    cache.put(b"d", b"x" * 1000)
    assert cache.get(b"b") is None
    assert cache.get(b"a") is not None and cache.get(b"d") is not None


def test_a_folder_others_can_write_turns_the_cache_off(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    cache = CompileCache(folder, 1 << 20)
    with pytest.warns(UserWarning, match="accessible to other users"):
        assert not cache.put(b"k", b"v")
    assert cache.get(b"k") is None and cache.disabled


def test_a_readable_key_turns_the_cache_off(tmp_path):
    cache = CompileCache(tmp_path / "xla", 1 << 20)
    cache.put(b"k", b"v")
    (cache.folder / "key").chmod(0o644)
    again = CompileCache(cache.folder, 1 << 20)
    with pytest.warns(UserWarning, match="key"):
        assert again.get(b"k") is None


def test_a_key_that_is_a_link_turns_the_cache_off(tmp_path):
    folder = tmp_path / "xla"
    folder.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"k" * 32)
    target.chmod(0o600)
    (folder / "key").symlink_to(target)
    with pytest.warns(
        UserWarning, match="key is a symbolic link; a regular file itself"
    ):
        assert not CompileCache(folder, 1 << 20).put(b"k", b"v")


@settings(max_examples=30)
@given(damage=st.one_of(st.integers(0, 80), st.just("bytes")))
@example(damage=0)
@example(damage=31)
@example(damage=33)
def test_a_damaged_key_is_replaced_and_entries_written_again(tmp_path_factory, damage):
    """A key of the wrong length (truncated by a crash, emptied), the user's
    own and private, is replaced by a new one: no warning, the entries signed
    with the old key fail their signature, are removed and written again, and
    the next process reads the new key."""
    if damage == 32:
        return  # a key of the right length (not damage)
    folder = tmp_path_factory.mktemp("xla")
    first = CompileCache(folder, 1 << 20)
    assert first.put(b"k", b"old")
    key = folder / "key"
    old = key.read_bytes()
    if damage == "bytes":
        damaged = old + b"more"
    else:
        damaged = old[:damage] if damage < 32 else old + bytes(damage - 32)
    key.write_bytes(damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = CompileCache(folder, 1 << 20)
        assert second.get(b"k") is None  # signed with the old key
    assert not second.disabled
    new = key.read_bytes()
    assert len(new) == 32 and new != old
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert not second._path(b"k").exists()  # removed
    assert second.put(b"k", b"new") and second.get(b"k") == b"new"
    third = CompileCache(folder, 1 << 20)
    assert third.get(b"k") == b"new" and third._secret == new
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("kind", ["readable", "link"])
def test_a_damaged_key_that_is_not_private_is_left_alone(tmp_path, kind):
    """Only the user's own private key is replaced: a readable one, or a link,
    turns the cache off as before, and stays as it is."""
    folder = tmp_path / "xla"
    folder.mkdir(mode=0o700)
    key = folder / "key"
    target = tmp_path / "elsewhere"
    target.write_bytes(b"short")
    target.chmod(0o600)
    if kind == "link":
        key.symlink_to(target)
    else:
        key.write_bytes(b"short")
        key.chmod(0o644)
    with pytest.warns(UserWarning, match="symbolic link|accessible"):
        assert not CompileCache(folder, 1 << 20).put(b"k", b"v")
    assert key.read_bytes() == target.read_bytes() == b"short"
    assert os.path.islink(key) == (kind == "link")


@pytest.mark.parametrize("damaged", [False, True])
def test_a_new_key_is_on_disk_before_it_is_in_place(tmp_path, monkeypatch, damaged):
    """The key's temporary file is synced before it is linked (or renamed
    over a damaged key): a power cut never leaves an empty key in place."""
    folder = tmp_path / "xla"
    if damaged:
        CompileCache(folder, 1 << 20).put(b"k", b"v")
        (folder / "key").write_bytes(b"")
    synced, placed = [], []
    real_fsync, real_link, real_replace = os.fsync, os.link, os.replace

    def fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        return real_fsync(fd)

    def place(real):
        def placing(source, destination, **kwargs):
            if os.path.basename(destination) == "key":
                placed.append(os.stat(source).st_ino)
                assert placed[-1] in synced, "placed before it was synced"
            return real(source, destination, **kwargs)

        return placing

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", place(real_link))
    monkeypatch.setattr(os, "replace", place(real_replace))
    cache = CompileCache(folder, 1 << 20)
    assert cache.put(b"k", b"v") and not cache.disabled
    assert placed == [os.stat(folder / "key").st_ino]


def test_processes_opening_a_damaged_key_together_recover(tmp_path):
    """Workers finding an emptied key at once: none turns the cache off, and
    the folder ends with one whole key."""
    folder = tmp_path / "xla"
    CompileCache(folder, 1 << 20).put(b"k", b"v")
    (folder / "key").write_bytes(b"")
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from sk_keras_digits._compile_cache import CompileCache\n"
        "cache = CompileCache(sys.argv[1], 1 << 20)\n"
        "cache.put(sys.argv[2].encode(), b'v')\n"
        "print(len(cache._secret), cache.disabled)\n"
    )
    outputs = _outputs_of_processes_at_once(script, folder)
    assert outputs == {"32 None"}
    assert len((folder / "key").read_bytes()) == 32
    assert not list(folder.glob("*.tmp"))


#: A JAX fit in a fresh process: what it compiled, what it read from the
#: cache, and the cache's warnings.
_JAX_FIT = """
import json, warnings
from sklearn.datasets import load_digits
from sk_keras_digits import KerasDigitClassifier, _training

X, y = load_digits(return_X_y=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    KerasDigitClassifier(hidden_layer_sizes=(11,), max_iter=2, random_state=0).fit(
        X[:100] / 16, y[:100]
    )
programs = [p for p in _training.PROGRAMS.values() if hasattr(p, "_run")]
print(json.dumps([
    sum(p.compilations() for p in programs),
    sum(p.loaded() for p in programs),
    [str(w.message) for w in caught if "compilation cache" in str(w.message)],
]))
"""


@pytest.mark.parametrize("damage", ["key", "entry folder"])
def test_jax_recovers_from_a_damaged_key_or_entry(tmp_path, damage):
    """On JAX, in fresh processes: an emptied key is replaced (the programs
    are compiled again, with no warning, and written), and an empty folder
    under an entry's name is replaced by the entry; the next process reads
    them back."""
    import json
    import subprocess
    import sys

    pytest.importorskip("jax")
    folder = tmp_path / "xla"
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        TF_CPP_MIN_LOG_LEVEL="3",
        SK_KERAS_DIGITS_COMPILE_CACHE=str(folder),
    )

    def fit():
        result = subprocess.run(
            [sys.executable, "-c", _JAX_FIT],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.splitlines()[-1])

    compiled, loaded, warned = fit()
    assert compiled >= 1 and loaded == 0 and not warned
    entries = sorted(folder.glob("*.xla"))
    assert entries
    if damage == "key":
        (folder / "key").write_bytes(b"")
    else:
        for entry in entries:
            entry.unlink()
            entry.mkdir()
    assert fit() == [compiled, 0, []]  # compiled again, quietly
    assert len((folder / "key").read_bytes()) == 32
    assert all(entry.is_file() for entry in entries)
    assert fit() == [0, compiled, []]  # and read back


def test_the_environment_chooses_folder_limit_or_off(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert configured_folder() == default_folder() == tmp_path / "sk_keras_digits/xla"
    for off in ("0", "off", "OFF", "false", ""):
        monkeypatch.setenv(ENV_DIR, off)
        assert configured_folder() is None
        assert _compile_cache.active() is None
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "mine"))
    assert configured_folder() == tmp_path / "mine"
    assert _compile_cache.active().folder == tmp_path / "mine"
    monkeypatch.setenv(ENV_MAX_MB, "2")
    assert configured_max_bytes() == 2 << 20
    for bad in ("lots", "-1", "nan", "inf", "-inf", "1e400", " "):
        monkeypatch.setenv(ENV_MAX_MB, bad)
        assert configured_max_bytes() == _compile_cache.DEFAULT_MAX_MB << 20


@example(value="inf")
@example(value="1e400")
@example(value="-Infinity")
@example(value="nan")
@given(
    value=st.one_of(
        st.text(max_size=20),
        st.floats().map(repr),
        st.integers(-(10**30), 10**30).map(str),
    )
)
def test_any_size_limit_from_the_environment_is_a_bound(value):
    """Whatever the environment says, the limit is a finite number of bytes."""
    if "\0" in value:
        return  # an environment value cannot hold a NUL
    old = os.environ.get(ENV_MAX_MB)
    os.environ[ENV_MAX_MB] = value
    try:
        limit = configured_max_bytes()
    finally:
        if old is None:
            del os.environ[ENV_MAX_MB]
        else:
            os.environ[ENV_MAX_MB] = old
    assert isinstance(limit, int) and limit >= 0
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = None
    if megabytes is not None and 0 <= megabytes < float("inf"):
        assert limit == int(megabytes * (1 << 20))
    else:
        assert limit == _compile_cache.DEFAULT_MAX_MB << 20


def test_processes_starting_together_share_one_key(tmp_path):
    """Workers opening a new cache folder at once all read the same whole key."""
    folder = tmp_path / "xla"
    script = (
        "import sys\n"
        "from sk_keras_digits._compile_cache import CompileCache\n"
        "cache = CompileCache(sys.argv[1], 1 << 20)\n"
        "cache.put(sys.argv[2].encode(), b'v')\n"
        "print(cache._secret.hex(), cache.disabled)\n"
    )
    outputs = _outputs_of_processes_at_once(script, folder)
    assert len(outputs) == 1 and outputs.pop().endswith(" None")
    assert not list(folder.glob("*.tmp"))


def _outputs_of_processes_at_once(script, folder, n=6):
    """The set of what ``n`` processes running ``script`` at once printed
    (each given ``folder`` and its index as arguments)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder), str(i)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    return {proc.communicate(timeout=60)[0].strip() for proc in procs}

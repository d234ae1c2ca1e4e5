"""The one atomic writer, under interrupts, kills and the longest names.

An interrupt (``KeyboardInterrupt``) at any point of a write (a model file's
archive, so zipfile's points too) leaves no temporary file, no open file
descriptor and no error printed as its objects are freed, and the target
whole; any name the file system accepts (255 bytes, not characters) can be
written, and an error names the user's path, never the hidden temporary file;
a killed writer's temporary file is removed by the next write to its target.
(Saves through :func:`sk_keras_digits.save` are tested in
``tests/persistence/test_atomic.py``, the command line's outputs in
``tests/cli/test_files.py``.)
"""

import contextlib
import errno
import functools
import gc
import os
import stat
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sk_keras_digits import _atomic_file as atomic
from sk_keras_digits._atomic_file import write_atomically
from sk_keras_digits._persistence.archive import write_zip
from tests._helpers import read_members

MEMBERS = [("manifest.json", b'{"a": 1}' * 20), ("state.npz", bytes(range(256)) * 8)]
PREVIOUS = [("manifest.json", b"{}")]
ATOMIC_FILE = atomic.__file__


def atomic_write(path, members):
    """Write the zip archive of ``members`` (``(name, bytes)`` pairs) to
    ``path``, as a save does."""
    write_atomically(path, functools.partial(write_zip, members=members))


#: Functions called as objects are freed (a file object's, a weak set's).
FINALIZERS = {"__del__", "_remove"}


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module", autouse=True)
def heap_frozen():
    """Collect the process's garbage once, then leave its objects out of the
    collections each interrupted save runs (``gc.freeze``): in a process that
    has loaded a backend, a full collection takes about a second, twice per
    point. A save's own objects are new, so still collected."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


needs_proc_fds = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd"
)


class Interrupt:
    """A profiler raising ``KeyboardInterrupt`` at the ``at``-th point of a
    call of :func:`write_atomically` (``at=None`` counts the points).

    The points are where CPython raises a pending interrupt: as a Python
    function starts, and as a C function returns (its result then lost: an
    interrupt right after ``os.open`` loses the descriptor). ``own`` counts
    only the points of :mod:`atomic`'s code (its calls and their returns),
    else every point, in the archive writer and zipfile too.
    """

    def __init__(self, at=None, own=True):
        self.at, self.own = at, own
        self.count = 0
        self.armed = False

    def _counts(self, frame, event):
        if frame.f_code.co_name in FINALIZERS:
            return False  # an exception there is printed, not raised
        if event == "call":
            if frame.f_code is write_atomically.__code__:
                self.armed = True
            caller = frame.f_back
            in_atomic = frame.f_code.co_filename == ATOMIC_FILE or (
                caller is not None and caller.f_code.co_filename == ATOMIC_FILE
            )
        elif event == "c_return":
            in_atomic = frame.f_code.co_filename == ATOMIC_FILE
        else:
            return False
        return self.armed and (in_atomic or not self.own)

    def __call__(self, frame, event, arg):
        if event == "return" and frame.f_code is write_atomically.__code__:
            self.armed = False
        if self._counts(frame, event):
            self.count += 1
            if self.count - 1 == self.at:
                raise KeyboardInterrupt(f"point {self.at}")

    def run(self, path, members):
        """Whether the save was interrupted."""
        sys.setprofile(self)
        try:
            atomic_write(str(path), members)
        except KeyboardInterrupt:
            return True
        finally:
            sys.setprofile(None)
        return False


def threads():
    return len(os.listdir("/proc/self/task"))


def wait_for_threads(count, timeout=60):
    """Wait for the threads beyond ``count`` to end: an interrupted wait leaves
    the folder's sync to finish in its own thread."""
    deadline = time.monotonic() + timeout
    while threads() > count and time.monotonic() < deadline:
        time.sleep(0.01)


@contextlib.contextmanager
def unraisable_errors():
    """The exceptions raised where Python can only print them ("Exception
    ignored in ..."), as objects are freed, while in the block."""
    printed = []
    hook, sys.unraisablehook = sys.unraisablehook, printed.append
    try:
        yield printed
    finally:
        sys.unraisablehook = hook


def interrupt_at(point, folder, existing, own):
    """Save with an interrupt at ``point``: nothing leaks, the target is whole."""
    target = folder / "m.skd"
    if existing:
        atomic_write(str(target), PREVIOUS)
    gc.collect()  # earlier saves' garbage: its descriptors closed before counting
    before, running = open_fds(), threads()
    with warnings.catch_warnings(), unraisable_errors() as printed:
        # A file object lost to an interrupt is closed as it is freed.
        warnings.simplefilter("ignore", ResourceWarning)
        interrupted = Interrupt(point, own).run(target, MEMBERS)
        gc.collect()
    assert printed == [], f"freeing the save's objects raised (point {point})"
    wait_for_threads(running)
    assert open_fds() == before, f"a descriptor leaked (point {point})"
    left = os.listdir(folder)
    if target.exists():
        assert left == ["m.skd"], f"left {left} (point {point})"
        found = read_members(target)
        assert found in (dict(MEMBERS), dict(PREVIOUS) if existing else None)
        assert interrupted or found == dict(MEMBERS)
    else:
        assert interrupted and not existing and left == [], (point, left)
    return interrupted


def count_points(folder, own, existing):
    """The points of a save, to a new target or replacing ``PREVIOUS``."""
    folder.mkdir()
    if existing:
        atomic_write(str(folder / "m.skd"), PREVIOUS)
    counter = Interrupt(own=own)
    assert not counter.run(folder / "m.skd", MEMBERS)
    return counter.count


@needs_proc_fds
@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupt_at_any_point_of_a_save_leaks_nothing(tmp_path, existing):
    """At every point of the save's own code, from the stale-file sweep to the
    folder's sync: no temporary file, no open descriptor, the target whole
    (its previous content, or the new one once renamed)."""
    points = count_points(tmp_path / "count", own=True, existing=existing)
    assert points > 20
    interrupted = []
    for point in range(points + 1):
        folder = tmp_path / f"p{point}"
        folder.mkdir()
        interrupted.append(interrupt_at(point, folder, existing, own=True))
    assert all(interrupted[:-1]) and not interrupted[-1]


@needs_proc_fds
@settings(max_examples=60)
@given(fraction=st.floats(0, 1, exclude_max=True))
@example(fraction=0.0)
def test_an_interrupt_inside_the_archive_writer_leaks_nothing(
    tmp_path_factory, fraction
):
    """Any point at all of the save, zipfile's included. (Their number may
    change from a save to the next, as caches such as ``re``'s fill: a save
    with fewer points than counted completes, and must then be whole.)"""
    folder = tmp_path_factory.mktemp("count")
    total = count_points(folder / "count", own=False, existing=True)
    folder = tmp_path_factory.mktemp("save")
    interrupt_at(int(fraction * total), folder, existing=True, own=False)


# -- long names ------------------------------------------------------------------
#: Characters of 1 to 4 bytes in UTF-8.
CHARACTERS = ["m", ".", "-", " ", "é", "ß", "字", "€", "😀", "𝄞"]


@st.composite
def names(draw, max_bytes=300):
    """A file name of up to ``max_bytes`` bytes of (multibyte) characters."""
    size = draw(st.integers(1, max_bytes))
    pool = draw(st.lists(st.sampled_from(CHARACTERS), min_size=1, max_size=4))
    name, used = "", 0
    while True:
        character = pool[len(name) % len(pool)]
        if used + len(character.encode()) > size:
            break
        name += character
        used += len(character.encode())
    if name in ("", ".", ".."):
        name = "m" * size
    return name


@settings(max_examples=80)
@given(name=names())
@example(name="m" * 240 + ".skd")
@example(name="m" * 255)
@example(name="m" * 256)
@example(name="字" * 85)  # 255 bytes
@example(name="字" * 86)
@example(name="😀" * 63 + "mmm")
def test_any_name_the_file_system_takes_can_be_saved(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("names")
    target = folder / name
    if len(name.encode()) <= os.pathconf(folder, "PC_NAME_MAX"):
        atomic_write(str(target), MEMBERS)
        assert os.listdir(folder) == [name]
        assert read_members(target) == dict(MEMBERS)
        atomic_write(str(target), PREVIOUS)  # and replaced
        assert os.listdir(folder) == [name]
        assert read_members(target) == dict(PREVIOUS)
    else:
        with pytest.raises(OSError) as info:
            atomic_write(str(target), MEMBERS)
        assert info.value.errno == errno.ENAMETOOLONG
        assert info.value.filename == str(target)
        assert os.listdir(folder) == []


DEAD_PID = 2**32 - 1  # ten digits: no process has it


def temporary_of(name, folder, host=None, pid=DEAD_PID):
    """The name of a temporary file of a save to ``name`` by process ``pid``."""
    own = atomic._temporary_name(atomic._name_part(name, atomic._name_max(folder)))
    parts = own.rsplit(".", 4)  # name part, host, pid, random, "tmp"
    assert parts[2] == str(os.getpid())
    return ".".join([parts[0], host or parts[1], str(pid), *parts[3:]])


@settings(max_examples=40)
@given(name=names(max_bytes=255), other=names(max_bytes=255))
@example(name="m" * 255, other="m" * 254 + "n")
def test_stale_temporaries_of_long_names_are_removed(tmp_path_factory, name, other):
    """However long the target's name, a dead save's temporary file fits the
    folder and the next save removes it; another target's, another host's and
    a live process's stay."""
    assume(name != other)
    folder = tmp_path_factory.mktemp("stale")
    stale = folder / temporary_of(name, folder)
    kept = [
        folder / temporary_of(name, folder, host="f" * 12),
        folder / temporary_of(other, folder),
        folder / temporary_of(name, folder, pid=os.getppid()),
    ]
    for path in [stale, *kept]:
        assert len(path.name.encode()) <= 255
        path.write_bytes(b"partial")
    atomic_write(str(folder / name), MEMBERS)
    assert not stale.exists()
    assert all(path.read_bytes() == b"partial" for path in kept)


def test_an_error_names_the_path_not_the_temporary(tmp_path):
    path = tmp_path / "missing" / "m.skd"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write(str(path), MEMBERS)
    assert info.value.filename == str(path)
    assert ".tmp" not in str(info.value)


# -- permissions -----------------------------------------------------------------
@settings(max_examples=30)
@given(mode=st.integers(0o400, 0o777).filter(lambda mode: mode & 0o600 == 0o600))
def test_the_temporary_is_private_and_the_file_keeps_its_permissions(
    tmp_path_factory, mode
):
    """Others cannot open the content while it is written; a replaced file
    keeps its permissions (any the owner can read and write)."""
    folder = tmp_path_factory.mktemp("modes")
    path = folder / "m.skd"
    path.write_bytes(b"earlier")
    path.chmod(mode)
    seen = []

    def write(file):
        seen.append(stat.S_IMODE(os.fstat(file.fileno()).st_mode))
        file.write(b"later")

    write_atomically(path, write)
    assert seen == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_bytes() == b"later" and os.listdir(folder) == ["m.skd"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o000])
def test_a_new_file_gets_the_umasks_permissions(tmp_path, umask):
    earlier = os.umask(umask)
    try:
        assert atomic._umask() == umask
        write_atomically(tmp_path / "new", lambda file: file.write(b"x"))
        (tmp_path / "by-open").write_bytes(b"x")
    finally:
        os.umask(earlier)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o666 & ~umask
    assert (tmp_path / "new").stat().st_mode == (tmp_path / "by-open").stat().st_mode


# -- a killed writer -------------------------------------------------------------
KILLED_WRITER = """
    import sys, time
    from sk_keras_digits._atomic_file import write_atomically

    def write(file):
        file.write(b"partial")
        file.flush()
        print("WRITING", flush=True)
        time.sleep(600)

    write_atomically(sys.argv[1], write)
"""


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "report.html"
    path.write_bytes(b"earlier")
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), path],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "WRITING"
    finally:
        process.kill()
        process.wait(60)
        process.stdout.close()
    (temporary,) = set(os.listdir(tmp_path)) - {"report.html"}
    assert temporary.startswith(".report.html.") and path.read_bytes() == b"earlier"
    write_atomically(path, lambda file: file.write(b"later"))
    assert os.listdir(tmp_path) == ["report.html"]
    assert path.read_bytes() == b"later"


def test_a_named_pipe_or_a_device_is_never_replaced(tmp_path):
    """Writing there would delete them (as root, ``/dev/null`` itself)."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    targets = {pipe: "a named pipe"}
    if os.geteuid() == 0:  # only root makes device nodes
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        targets[device] = "a character device"
    for path, kind in targets.items():
        before = os.lstat(path)
        with pytest.raises(OSError, match=f"the path is {kind}") as info:
            write_atomically(path, lambda file: file.write(b"x"))
        assert info.value.filename == str(path)
        after = os.lstat(path)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in targets)

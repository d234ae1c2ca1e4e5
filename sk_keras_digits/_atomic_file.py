"""Atomic file writes: a file is replaced only once its new content is complete.

:func:`write_atomically` is how every file of the package is written: model
files (:func:`sk_keras_digits.save`) and the command line's outputs. It writes a
temporary file next to the target (hidden, named for the target, the writing
host and the writing process, readable by its owner only), flushes it to disk,
gives it the target's permissions and renames it over the target, so the path
never holds a partial file. A write killed mid-way (``kill -9``, a power cut)
leaves its temporary file; the next write to the same target from the same
host removes it once no process with that id runs there (a folder shared
between hosts holds other hosts' writes in progress, whose process ids mean
nothing here).

An exception or an interrupt (``KeyboardInterrupt``) at any point leaves
neither the temporary file nor an open file descriptor: the temporary file is
opened by :func:`open`, whose file object owns the descriptor from the start
(an interrupt before it is named closes it with the object), its path is
known before it exists, and the folder is synced in a thread of its own,
where no interrupt is raised. Standard library only.
"""

import _thread
import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import socket
import stat

from ._fsync import fsync_folder

#: A file name's bytes at most where the file system does not say.
_NAME_MAX = 255
#: The bytes a temporary file's name adds to the target's: the dots, the host
#: tag, a process id of up to 10 digits, the random part and ``.tmp``.
_TEMPORARY_OVERHEAD = len(".." + "h" * 12 + "." + "9" * 10 + "." + "f" * 12 + ".tmp")
#: The bytes of the hash that ends a shortened target's name in a temporary
#: file's name (with the ``~`` before it).
_NAME_HASH = 8
#: Opens a temporary file readable and writable by its owner only. A C
#: function (no Python frame, so no interrupt between the descriptor's
#: creation and the file object that owns it).
_PRIVATE_OPENER = functools.partial(os.open, mode=0o600)


def write_atomically(path, write):
    """Write ``path`` whole or not at all.

    Parameters
    ----------
    path : str or path-like
        The target, replaced only once the new file is complete on disk. A
        symbolic link there is replaced, not followed.
    write : callable
        ``write(file)`` writes the content into ``file``, a binary file object
        it must leave open.

    Raises
    ------
    OSError
        If the file cannot be written (a full disk, a missing folder, a name too
        long, a folder, a device, a named pipe or a socket at ``path``: only a
        regular file or a symbolic link is replaced), naming ``path`` (never
        the temporary file);
        ``path`` is then as it was and no temporary file is left. Any other
        exception of ``write``, KeyboardInterrupt included, passes through,
        with the same guarantees.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if not name or os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR, "the path is a folder; a file path is expected", path
        )
    special = _special_kind(path)
    if special is not None:
        raise OSError(
            errno.EEXIST,
            f"the path is {special}, which writing a file there would delete; "
            "a regular file's path is expected",
            path,
        )
    name_max = _name_max(folder)
    if os.name == "posix" and len(os.fsencode(name)) > name_max:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), path)
    part = _name_part(name, name_max)
    _remove_stale_temporaries(folder, part)
    file = temporary = None
    try:
        while file is None:
            # The path is set before the file exists, so the handler below
            # knows what to remove whenever an exception comes; open() (not
            # os.open) hands the descriptor to a file object at once, which
            # closes it if an interrupt loses the object before it is named.
            temporary = os.path.join(folder, _temporary_name(part))
            try:
                file = open(temporary, "xb", opener=_PRIVATE_OPENER)
            except FileExistsError:
                temporary = None  # not ours to remove: draw another name
        write(file)
        file.flush()
        _give_mode(file, _mode_for(path))
        os.fsync(file.fileno())
        file.close()
        os.replace(temporary, path)
    except BaseException as exc:
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(exc, OSError) and temporary and exc.filename == temporary:
            # Name the user's path, not the hidden temporary file.
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    _fsync_folder(folder)


#: What :func:`_special_kind` calls each kind of file that is not replaced.
_SPECIAL_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _special_kind(path):
    """What ``path`` names if it is neither absent, a regular file nor a
    symbolic link (which is replaced, not followed), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None


def _mode_for(path):
    """The permissions ``path`` gets: those of the regular file it names, else
    a new file's (``0o666`` less the umask)."""
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    return 0o666 & ~_umask()


def _umask():
    """The process's umask, read where the system shows it (Linux), else set
    and set back (:func:`os.umask` only returns it by replacing it)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _give_mode(file, mode):
    """Set the open ``file``'s permissions (by name where the system has no
    ``fchmod``: Windows before Python 3.13); best effort."""
    with contextlib.suppress(OSError):
        if hasattr(os, "fchmod"):
            os.fchmod(file.fileno(), mode)
        else:
            os.chmod(file.name, mode)


def _name_max(folder):
    """The most bytes of a file name in ``folder`` (255 where it cannot say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError, TypeError):
        return _NAME_MAX


def _name_part(name, name_max):
    """The target's name as it appears in its temporary files' names.

    The name itself when the temporary name fits in ``name_max`` bytes (with
    a process id of any length), else its longest prefix that leaves room,
    then ``~`` and a hash of the whole name: every process names the
    temporary files of one target alike, so the stale ones are found.
    """
    budget = max(name_max - _TEMPORARY_OVERHEAD, 2 * _NAME_HASH)
    if len(os.fsencode(name)) <= budget:
        return name
    room = budget - 1 - _NAME_HASH
    prefix, used = [], 0
    for character in name:
        size = len(os.fsencode(character))
        if used + size > room:
            break
        prefix.append(character)
        used += size
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:_NAME_HASH]
    return "".join(prefix) + "~" + digest


def _host_tag():
    """This host, in a temporary file's name: a hash of its name (any text)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def _temporary_name(part):
    """A new temporary file's name, for this host and process."""
    return f".{part}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def _temporary_pattern(part):
    """The temporary files of writes to the target named ``part``
    (:func:`_name_part`) from this host; group 1 is the process id."""
    host = _host_tag()
    return re.compile(rf"\.{re.escape(part)}\.{host}\.(\d+)\.[0-9a-f]+\.tmp")


def _remove_stale_temporaries(folder, part):
    """Remove the temporary files of writes to ``part`` whose process died.

    A write killed mid-way cannot remove its temporary file; the next write
    to the same target from the same host does, once no process with that id
    runs (POSIX; a process of another user is assumed alive, and another
    host's files are left alone).
    """
    if os.name != "posix":
        return
    pattern = _temporary_pattern(part)
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            match = pattern.fullmatch(entry)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            if not _process_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, entry))


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def _fsync_folder(folder):
    """Make the rename durable (POSIX); best effort elsewhere.

    The folder is opened, synced and closed in a thread of its own: an
    interrupt is raised in the main thread only, so none comes between
    opening the folder and closing it (an interrupted wait leaves the thread
    to finish). A bare thread (``_thread``): ``threading``'s bookkeeping,
    interrupted half-way, could leave a lock held and the thread waiting on
    it forever.
    """
    if os.name != "posix":
        return
    done = _thread.allocate_lock()
    done.acquire()
    try:
        _thread.start_new_thread(_fsync_folder_now, (folder, done))
    except RuntimeError:  # no new thread (the interpreter is exiting)
        _fsync_folder_now(folder, done)
    done.acquire()


def _fsync_folder_now(folder, done):
    try:
        fsync_folder(folder)
    finally:
        done.release()

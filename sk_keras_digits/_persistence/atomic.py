"""Atomic writes: a model file replaces its target only once complete.

:func:`atomic_write` writes a temporary file next to the target (hidden, named
for the target, the writing host and the writing process), flushes it to
disk, then renames it over the target, so the path never holds a partial
file. A save killed mid-write leaves its temporary file; the next save to the
same target from the same host removes it once no process with that id runs
there (a folder shared between hosts holds other hosts' saves in progress,
whose process ids mean nothing here).

An exception or an interrupt (``KeyboardInterrupt``) at any point leaves
neither the temporary file nor an open file descriptor: the temporary file is
opened by :func:`open`, whose file object owns the descriptor from the start
(an interrupt before it is named closes it with the object), its path is
known before it exists, and the folder is synced in a thread of its own,
where no interrupt is raised.
"""

import _thread
import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat

from .._fsync import fsync_folder
from .archive import write_zip

#: A file name's bytes at most where the file system does not say.
_NAME_MAX = 255
#: The bytes a temporary file's name adds to the target's: the dots, the host
#: tag, a process id of up to 10 digits, the random part and ``.tmp``.
_TEMPORARY_OVERHEAD = len(".." + "h" * 12 + "." + "9" * 10 + "." + "f" * 12 + ".tmp")
#: The bytes of the hash that ends a shortened target's name in a temporary
#: file's name (with the ``~`` before it).
_NAME_HASH = 8


def atomic_write(path, members):
    """Write the archive next to ``path``, fsync it, then rename it over ``path``.

    Parameters
    ----------
    path : str
        The target, replaced only once the new file is complete on disk.
    members : list of (str, bytes)
        The members of the archive, in order.
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if not name or os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR, "save's path is a folder; a file path is expected", path
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
                file = open(temporary, "xb")
            except FileExistsError:
                temporary = None  # not ours to remove: draw another name
        with contextlib.suppress(OSError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        write_zip(file, members)
        file.flush()
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
    """The temporary files of saves to the target named ``part``
    (:func:`_name_part`) from this host; group 1 is the process id."""
    host = _host_tag()
    return re.compile(rf"\.{re.escape(part)}\.{host}\.(\d+)\.[0-9a-f]+\.tmp")


def _remove_stale_temporaries(folder, part):
    """Remove the temporary files of saves to ``part`` whose process died.

    A save killed mid-write cannot remove its temporary file; the next save
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

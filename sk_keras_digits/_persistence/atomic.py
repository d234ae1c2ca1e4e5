"""Atomic writes: a model file replaces its target only once complete.

:func:`atomic_write` writes a temporary file next to the target (hidden, named
for the target, the writing host and the writing process), flushes it to
disk, then renames it over the target, so the path never holds a partial
file. A save killed mid-write leaves its temporary file; the next save to the
same target from the same host removes it once no process with that id runs
there (a folder shared between hosts holds other hosts' saves in progress,
whose process ids mean nothing here).
"""

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat

from .archive import write_zip


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
    _remove_stale_temporaries(folder, name)
    fd, temporary = _create_temporary(folder, name)
    try:
        with contextlib.suppress(OSError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "wb") as file:
            write_zip(file, members)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _host_tag():
    """This host, in a temporary file's name: a hash of its name (any text)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def _temporary_pattern(name):
    """The temporary files of saves to ``name`` from this host; group 1 is the
    process id."""
    host = _host_tag()
    return re.compile(rf"\.{re.escape(name)}\.{host}\.(\d+)\.[0-9a-f]+\.tmp")


def _create_temporary(folder, name):
    """Create a new hidden file in ``folder``, named for the target and this process.

    The umask sets its permissions.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(
            folder,
            f".{name}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(6)}.tmp",
        )
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _remove_stale_temporaries(folder, name):
    """Remove the temporary files of saves to ``name`` whose process died.

    A save killed mid-write cannot remove its temporary file; the next save
    to the same target from the same host does, once no process with that id
    runs (POSIX; a process of another user is assumed alive, and another
    host's files are left alone).
    """
    if os.name != "posix":
        return
    pattern = _temporary_pattern(name)
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
    """Make the rename durable (POSIX); best effort elsewhere."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

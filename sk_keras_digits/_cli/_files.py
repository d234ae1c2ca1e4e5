"""The command line's output files, each written whole or not at all.

:func:`replacing` opens a temporary file next to the output file and renames
it onto the output's name only once it is complete (:func:`os.replace`), so a
full disk, an error or an interrupt midway leaves the earlier file of that name
as it was and no temporary behind. Every file the job writes goes through it:
the figures (:mod:`._figures`) and ``report.html`` (:mod:`._report`, by
:func:`write_text`). An OSError while writing is raised again as
:class:`OutputError`, whose message names the output file (not the temporary).
"""

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class OutputError(OSError):
    """An output file could not be written; the message names it.

    Parameters
    ----------
    path : str or Path
        The output file.
    cause : OSError
        What failed.
    """

    def __init__(self, path, cause):
        super().__init__(cause.errno, cause.strerror, str(path))
        self.path = Path(path)
        self.reason = (
            f"[Errno {cause.errno}] {cause.strerror}"
            if cause.errno is not None and cause.strerror
            else str(cause) or type(cause).__name__
        )

    def __str__(self):
        return f"could not write {self.path}: {self.reason}"


def _mode_for(path):
    """The permissions ``path`` gets: its current ones, else a new file's."""
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    umask = os.umask(0o022)  # read it: os.umask sets and returns it
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def replacing(path):
    """Write ``path`` through a temporary file renamed onto it when complete.

    The temporary is created in ``path``'s folder by :func:`tempfile.mkstemp`
    (named ``.<name>.XXXXXXXX.tmp``, unpredictable, created exclusively: an
    existing file or symbolic link of that name is never opened), flushed to
    disk, given the permissions the output had (a new file's, from the umask,
    if it had none) and renamed onto ``path``. The rename replaces whatever
    ``path`` names, a symbolic link included, without following it. If the
    block raises, or writing fails (a full disk), the temporary is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The output file.

    Yields
    ------
    file : file object
        Open for writing bytes.

    Raises
    ------
    OutputError
        If an OSError is raised while the file is written (in the block
        too), naming ``path``; other exceptions, KeyboardInterrupt included,
        pass through unchanged.
    """
    path = Path(path)
    try:
        fd, temp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise OutputError(path, exc) from exc
    try:
        with open(fd, "wb") as file:
            yield file
            file.flush()
            if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
                os.fchmod(file.fileno(), _mode_for(path))
            else:
                os.chmod(temp, _mode_for(path))
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(path, exc) from exc
        raise


def write_text(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` whole or not at all (see :func:`replacing`).

    Parameters
    ----------
    path : str or Path
        The output file.
    text : str
        Its content.
    encoding : str, default="utf-8"

    Returns
    -------
    path : Path
    """
    path = Path(path)
    with replacing(path) as file:
        file.write(text.encode(encoding))
    return path

"""The command line's output files, each written whole or not at all.

Every file the job writes, the figures (:mod:`._figures`) and ``report.html``
(:mod:`._report`), goes through :func:`write_output`, that is through the
package's one atomic writer (:func:`~sk_keras_digits._atomic_file.write_atomically`,
which model files use too): a full disk, an error, an interrupt or a kill midway
leaves the earlier file of that name as it was, and no temporary file behind
(a killed job's is removed by the next job writing that output). An OSError
is raised again as :class:`OutputError`, whose message names the output file.
"""

from pathlib import Path

from .._atomic_file import write_atomically


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


def write_output(path, write):
    """Write ``path`` whole or not at all.

    Parameters
    ----------
    path : str or Path
        The output file. Its permissions are kept if it exists (a new file
        gets a new file's, from the umask); a symbolic link of that name is
        replaced, not followed.
    write : callable
        ``write(file)`` writes the content into ``file``, a binary file
        object (the output's hidden temporary, readable by its owner only).

    Returns
    -------
    path : Path

    Raises
    ------
    OutputError
        If an OSError is raised while the file is written (in ``write``
        too), naming ``path``; other exceptions, KeyboardInterrupt included,
        pass through unchanged.
    """
    path = Path(path)
    try:
        write_atomically(path, write)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(path, exc) from exc
    return path


def write_text(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` whole or not at all (see :func:`write_output`).

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
    data = text.encode(encoding)
    return write_output(path, lambda file: file.write(data))

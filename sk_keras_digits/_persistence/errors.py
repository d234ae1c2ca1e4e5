"""The errors of the model file: :class:`Refused` inside, :class:`ModelFileError` out.

Every check of the subpackage raises :class:`Refused`, whose message is the
problem alone; :func:`~sk_keras_digits.load` turns it into a
:class:`ModelFileError` that names the file.
"""


class Refused(ValueError):
    """Content of a file that is refused; the message says what is wrong."""


class ModelFileError(ValueError):
    """A model file that :func:`load` cannot or will not read.

    Raised for a file that is empty, truncated, corrupted, not a model file,
    written by a newer format version, larger than the limit it was loaded
    with, holding a fitted state that no fit could have produced, or holding a
    network that cannot be opened safely. The message names the file and the
    problem.

    Parameters
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it.

    See Also
    --------
    sk_keras_digits.load : Reads a model file, raising this for a bad one.
    sk_keras_digits.save : Writes a model file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sk_keras_digits import ModelFileError, load
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "model.skd"
    ...     _ = path.write_bytes(b"not a model file")
    ...     try:
    ...         load(path)
    ...     except ModelFileError as error:
    ...         print(error.problem)
    not a model file: it is not a zip archive.
    """

    def __init__(self, path, problem):
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self):
        return f"Cannot load model file '{self.path}': {self.problem}"

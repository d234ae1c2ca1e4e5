"""Safe persistence: :func:`save` and :func:`load`, on top of the subpackage.

:func:`save` writes an estimator's file (:mod:`.estimator_file`) or a
pipeline's (:mod:`.pipeline_file`) atomically
(:mod:`sk_keras_digits._atomic_file`). :func:`load` opens a file within its
``max_bytes`` budget (:mod:`.archive`), reads its manifest (:mod:`.manifest`)
and hands it to the estimator's or the pipeline's reader; a
:class:`~.errors.Refused` becomes a :class:`~.errors.ModelFileError` naming the
file. It runs no code from the file and accepts only what a fit could have
produced (:mod:`.invariants`).
"""

import errno
import functools
import os
import stat
from collections.abc import Mapping

import numpy as np

from .._atomic_file import write_atomically
from .archive import Budget, write_zip
from .errors import ModelFileError, Refused
from .estimator_file import (
    LoadOptions,
    estimator_members,
    estimator_name,
    load_estimator,
)
from .manifest import PIPELINE, open_model_file
from .pipeline_file import load_pipeline, pipeline_members

#: Default of ``load``'s ``max_bytes``: the most bytes a file may decompress to.
DEFAULT_MAX_BYTES = 256 * 2**20


def save(estimator, path):
    """Save a fitted estimator to a model file, safely and atomically.

    The file holds the estimator's parameters and fitted state as plain data
    (JSON and NumPy arrays, no pickle) and the network's architecture in
    Keras' format. It is written to a temporary file in the same folder,
    flushed to disk, then renamed over ``path``, so ``path`` holds either its
    previous content or the complete new file, never a partial one.

    Parameters
    ----------
    estimator : KerasDigitClassifier, KerasDigitRegressor or Pipeline
        A fitted estimator, or a fitted :class:`~sklearn.pipeline.Pipeline`
        whose final step is a KerasDigitClassifier or a KerasDigitRegressor
        and whose other steps are scikit-learn transformers of the types
        :func:`load` trusts (stored with ``skops``; see the user guide's page
        on saving and loading).
    path : str or os.PathLike
        The file to write (replaced if it exists). Any name works; the
        documentation uses the ``.skd`` extension.

    See Also
    --------
    load : Read the estimator back.

    Notes
    -----
    The ``network`` parameter (a function) and ``callbacks`` (objects) are
    code, which the file does not hold: it records their names, and
    :func:`load` takes them as arguments. The fitted state is checked as
    :func:`load` checks it, so a file that ``save`` writes loads.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sk_keras_digits import KerasDigitClassifier, load, save
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KerasDigitClassifier(
    ...     hidden_layer_sizes=(15,), activation="logistic", solver="sgd",
    ...     learning_rate_init=0.1, batch_size=100, max_iter=50, random_state=0,
    ... ).fit(X[:1000], y[:1000])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "digits.skd")
    ...     save(clf, path)
    ...     loaded = load(path)
    >>> np.array_equal(loaded.predict(X[1000:]), clf.predict(X[1000:]))
    True
    """
    from sklearn.pipeline import Pipeline

    path = os.fspath(path)
    if not os.path.basename(path) or os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR, "save's path is a folder; a file path is expected", path
        )
    if isinstance(estimator, Pipeline):
        members = pipeline_members(estimator)
    elif estimator_name(estimator) is not None:
        members = estimator_members(estimator)
    else:
        raise TypeError(
            "save expects a KerasDigitClassifier, a KerasDigitRegressor or a "
            f"Pipeline, got {type(estimator).__name__}. Use joblib.dump for other "
            "objects."
        )
    write_atomically(path, functools.partial(write_zip, members=members))


def load(
    path,
    *,
    network=None,
    callbacks=None,
    custom_objects=None,
    allow_unsafe=False,
    max_bytes=DEFAULT_MAX_BYTES,
):
    """Load an estimator saved by :func:`save`, without running code from the file.

    The file is read as JSON, NumPy ``.npy`` arrays (no pickle) and a Keras
    architecture deserialized in Keras' safe mode: nothing is unpickled, and
    a network that needs code from the file is refused unless allowed. Only
    a fitted state that a fit could have produced is accepted, and the bytes
    decompressed are bounded by what the file declares and by ``max_bytes``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    network : callable, default=None
        For an estimator saved with a custom ``network``: the function that
        builds it (a file holds no code). The saved weights are set into the
        network it builds (their shapes must match), and the loaded estimator
        gets this ``network`` parameter, as if freshly fitted with it. When
        None, the architecture is rebuilt from the file's Keras configuration
        as a :class:`SavedNetwork`. Must be None for the default network.
    callbacks : list of keras.callbacks.Callback, default=None
        The loaded estimator's ``callbacks`` parameter (a file holds no
        callbacks; a warning names those the saved estimator had).
    custom_objects : dict, default=None
        Custom Keras layers, models or functions the saved network uses, by
        name, as in :func:`keras.saving.load_model`. A class registered with
        :func:`keras.saving.register_keras_serializable` is found without it.
        Anything else the network names is refused.
    allow_unsafe : bool, default=False
        Rebuild the network with Keras' safe mode off, which lets a ``Lambda``
        layer's Python code stored in the file run. Only for files from a
        source you trust.
    max_bytes : int, default=268435456 (256 MiB)
        The most bytes the file's content may decompress to, all members
        together. The arrays the manifest declares must fit in it, and no
        member may inflate past what the manifest declares for it. Raise it
        for a model whose weights and solver state exceed 256 MiB.

    Returns
    -------
    estimator : KerasDigitClassifier, KerasDigitRegressor or Pipeline
        The fitted estimator (or pipeline), of the class saved, predicting
        exactly as the saved one.

    Raises
    ------
    ModelFileError
        If the path is not a regular file (a folder, a named pipe), or the
        file is empty, truncated, corrupted, not a model file, written by a
        newer format version, larger than ``max_bytes``, holding a state that
        no fit could have produced, or a network that cannot be opened safely
        (a ``Lambda`` layer, an unknown custom object).
    TypeError
        If an argument is of the wrong type: ``allow_unsafe`` must be a
        boolean (a string such as ``"no"`` is refused, not taken as true).

    See Also
    --------
    save : Write a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sk_keras_digits import ModelFileError, load
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "empty.skd")
    ...     open(path, "wb").close()
    ...     try:
    ...         load(path)
    ...     except ModelFileError as exc:
    ...         print(exc.problem)
    the file is empty (0 bytes).
    """
    path = os.fspath(path)
    if (
        isinstance(max_bytes, bool)
        or not isinstance(max_bytes, (int, np.integer))
        or max_bytes < 1
    ):
        raise ValueError(f"max_bytes should be a positive integer, got {max_bytes!r}.")
    options = LoadOptions(network, callbacks, custom_objects, allow_unsafe)
    _check_options(options)
    with _open_regular_file(path) as file:
        try:
            return _load_file(file, path, options, Budget(int(max_bytes)))
        except Refused as exc:
            raise ModelFileError(path, str(exc)) from exc


def _check_options(options):
    """Refuse ``load``'s arguments of the wrong type before reading anything.

    ``allow_unsafe`` must be a boolean: a truthy string such as ``"no"``
    would otherwise turn Keras' safe mode off.
    """
    expected = {
        "network": ("a callable or None", callable(options.network)),
        "callbacks": ("a list or None", isinstance(options.callbacks, list)),
        "custom_objects": (
            "a dict or None",
            isinstance(options.custom_objects, Mapping),
        ),
    }
    for name, (what, ok) in expected.items():
        value = getattr(options, name)
        if value is not None and not ok:
            raise TypeError(f"load's {name} should be {what}, got {value!r}.")
    if not isinstance(options.allow_unsafe, (bool, np.bool_)):
        raise TypeError(
            f"load's allow_unsafe should be True or False, got "
            f"{options.allow_unsafe!r}."
        )


def _open_regular_file(path):
    """Open ``path`` for reading if it is a regular file (after links).

    Opened without blocking, so a named pipe with no writer is refused
    instead of waiting for one; a folder, a device or a socket is refused too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a folder"
                if stat.S_ISDIR(mode)
                else "a named pipe"
                if stat.S_ISFIFO(mode)
                else "a device or socket"
            )
            raise ModelFileError(path, f"it is {kind}, not a regular file.")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _load_file(file, path, options, budget):
    """The estimator or pipeline in the model file ``file``."""
    archive, manifest = open_model_file(file, budget)
    with archive:
        if manifest.get("estimator") == PIPELINE:
            return load_pipeline(archive, budget, manifest, path, options)
        return load_estimator(archive, budget, manifest, path, options)

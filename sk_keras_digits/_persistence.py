"""Safe persistence: :func:`save` and :func:`load`.

A model file is a zip archive with three members:

- ``manifest.json``: the format name and version, the versions of the
  libraries that wrote it, the estimator's parameters, ``n_features_in_`` and
  ``feature_names_in_``, and its fitted state (the
  :class:`~sk_keras_digits._state.FittedState` record) as JSON, its arrays
  declared (dtype and shape) and referring to ``state.npz``. The schema is in
  :mod:`sk_keras_digits._model_file`. Callables and callbacks, which are
  code, are only *described* (by name), never stored.
- ``state.npz``: every array of the fitted state (weights, solver state,
  labels), once, written and read by NumPy's ``.npy`` format without pickle.
- ``model.keras``: the network's architecture in Keras' format
  (``config.json`` and ``metadata.json``; the weights are in ``state.npz``).

:func:`load` runs no code from the file and accepts only what a fit could
have produced; the bytes it decompresses are counted and bounded by what the
manifest declares, itself bounded by ``max_bytes`` (see
:mod:`sk_keras_digits._archive`). :func:`save` writes a temporary file next to
the target and renames it over the target only once it is complete, so the
path never holds a partial file.
"""

import contextlib
import copy
import io
import json
import os
import re
import secrets
import stat
import sys
import warnings
import zipfile

import numpy as np

from . import _archive, _format_1, _model_file, _network_config, _pipeline_file
from ._activations import KERAS_ACTIVATIONS
from ._archive import Refused
from ._model_file import ESTIMATOR, FORMAT_NAME, FORMAT_VERSION

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "SavedNetwork"]

_MANIFEST = "manifest.json"
_STATE = "state.npz"
_NETWORK = "model.keras"
_MEMBERS = (_MANIFEST, _STATE, _NETWORK)
_CONFIG = "config.json"
_METADATA = "metadata.json"

#: Default of ``load``'s ``max_bytes``: the most bytes a file may decompress to.
DEFAULT_MAX_BYTES = 256 * 2**20
# Most bytes of manifest.json, of a custom network's config.json and of
# metadata.json (a default network's config.json is allowed a few KiB a layer).
_MANIFEST_LIMIT = 16 * 2**20
_CONFIG_LIMIT = 4 * 2**20
_METADATA_LIMIT = 2**16
_PICKLE_PROTOCOL_PREFIX = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"


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
    """

    def __init__(self, path, problem):
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self):
        return f"Cannot load model file '{self.path}': {self.problem}"


class SavedNetwork:
    """A custom architecture read from a model file, usable as ``network``.

    :func:`load` sets a loaded estimator's ``network`` parameter to a
    ``SavedNetwork`` when the saved estimator had a custom ``network`` (a
    function, which a file does not hold) and the caller passes no
    ``network=``. It rebuilds the saved Keras architecture from its
    configuration, so the loaded estimator predicts and can be refitted.

    Parameters
    ----------
    config : dict
        The network's Keras serialization
        (:func:`keras.saving.serialize_keras_object`).
    custom_objects : dict, default=None
        Classes and functions the configuration may name, as in
        :func:`keras.saving.load_model`.
    safe_mode : bool, default=True
        Keras' safe mode for rebuilding; False only where the caller allowed
        unsafe content (``load(..., allow_unsafe=True)``).
    """

    def __init__(self, config, custom_objects=None, safe_mode=True):
        self.config = config
        self.custom_objects = custom_objects
        self.safe_mode = safe_mode

    def __call__(self, n_features_in, n_outputs, output_activation):
        """Build the saved architecture (the arguments are checked by the caller).

        Parameters
        ----------
        n_features_in, n_outputs : int
            Input and output widths the estimator expects.
        output_activation : str
            Keras' name of the output activation.

        Returns
        -------
        model : keras.Model
            The architecture, freshly initialised.
        """
        import keras

        return keras.saving.deserialize_keras_object(
            copy.deepcopy(self.config),
            custom_objects=self.custom_objects,
            safe_mode=self.safe_mode,
        )

    def __eq__(self, other):
        if not isinstance(other, SavedNetwork):
            return NotImplemented
        return (self.config, self.custom_objects, self.safe_mode) == (
            other.config,
            other.custom_objects,
            other.safe_mode,
        )

    def __hash__(self):
        return hash(json.dumps(self.config, sort_keys=True, default=repr))

    def __repr__(self):
        name = self.config.get("config", {}).get("name", "?")
        return f"SavedNetwork({self.config.get('class_name')} {name!r})"


# ---------------------------------------------------------------------- save
def save(estimator, path):
    """Save a fitted estimator to a model file, safely and atomically.

    The file holds the estimator's parameters and fitted state as plain data
    (JSON and NumPy arrays, no pickle) and the network's architecture in
    Keras' format. It is written to a temporary file in the same folder,
    flushed to disk, then renamed over ``path``, so ``path`` holds either its
    previous content or the complete new file, never a partial one.

    Parameters
    ----------
    estimator : KerasDigitClassifier or Pipeline
        A fitted estimator, or a fitted :class:`~sklearn.pipeline.Pipeline`
        whose steps are KerasDigitClassifiers and scikit-learn transformers
        of the types :func:`load` trusts (stored with ``skops``; see the
        user guide's page on saving and loading).
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

    from ._classifier import KerasDigitClassifier

    path = os.fspath(path)
    if isinstance(estimator, Pipeline):
        members = _pipeline_file.pipeline_members(estimator, _estimator_members)
    elif isinstance(estimator, KerasDigitClassifier):
        members = _estimator_members(estimator)
    else:
        raise TypeError(
            "save expects a KerasDigitClassifier or a Pipeline, got "
            f"{type(estimator).__name__}. Use joblib.dump for other objects."
        )
    _atomic_write(path, members)


def _estimator_members(estimator):
    """The members of the model file of a fitted KerasDigitClassifier."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    network = params.pop("network")
    callbacks = params.pop("callbacks")
    state = estimator._state
    feature_names = getattr(estimator, "feature_names_in_", None)
    try:
        _model_file.check_fitted(
            _with_hidden_sizes(estimator, params),
            estimator.n_features_in_,
            feature_names,
            state,
            custom=network is not None,
        )
    except Refused as exc:
        raise ValueError(
            f"Cannot save this {type(estimator).__name__}: its fitted state is not "
            f"one a fit produces ({exc}). Refit it."
        ) from exc
    tree, arrays = _model_file.state_to_json(state)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": ESTIMATOR,
        "versions": library_versions(),
        "params": _model_file.params_to_json(params),
        "network": None if network is None else _describe_callable(network),
        "callbacks": (
            None if callbacks is None else [_qualified_name(c) for c in callbacks]
        ),
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if feature_names is None else feature_names.tolist(),
        "state": tree,
        "arrays": _model_file.arrays_to_json(arrays),
    }
    state_buffer = io.BytesIO()
    np.savez(state_buffer, **arrays)
    return [
        (_MANIFEST, json.dumps(manifest, indent=1, allow_nan=False).encode()),
        (_STATE, state_buffer.getvalue()),
        (_NETWORK, _architecture_bytes(estimator)),
    ]


def _with_hidden_sizes(estimator, params):
    """``params`` with ``hidden_layer_sizes`` as the list of widths fit uses."""
    return {**params, "hidden_layer_sizes": estimator._hidden_layer_sizes()}


def library_versions():
    import sklearn

    from ._version import __version__

    versions = {
        "sk_keras_digits": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    keras = sys.modules.get("keras")
    if keras is not None:
        versions["keras"] = keras.__version__
    return versions


def _qualified_name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe_callable(function):
    """A description of a ``network`` callable: its name, for information only."""
    target = getattr(function, "func", function)  # functools.partial
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if module is None or name is None:
        return {"name": _qualified_name(function)}
    kind = "partial" if target is not function else "callable"
    return {"name": f"{module}.{name}", "kind": kind}


def _architecture_bytes(estimator):
    """The network's architecture as a ``.keras`` archive without weights."""
    import keras

    try:
        config = keras.saving.serialize_keras_object(estimator.model_)
        config_bytes = json.dumps(config).encode()
    except Exception as exc:
        raise ValueError(
            f"Cannot save the network of this {type(estimator).__name__} in "
            f"Keras' format: {exc}. Make its custom layers serializable "
            "(keras.saving.register_keras_serializable and get_config), or "
            "use joblib.dump."
        ) from exc
    metadata = {"keras_version": keras.__version__, "weights": "state.npz"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_CONFIG, config_bytes)
        archive.writestr(_METADATA, json.dumps(metadata).encode())
    return buffer.getvalue()


def _atomic_write(path, members):
    """Write the archive next to ``path``, fsync it, then rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    _remove_stale_temporaries(folder, name)
    fd, temporary = _create_temporary(folder, name)
    try:
        with contextlib.suppress(OSError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "wb") as file:
            _write_archive(file, members)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _temporary_pattern(name):
    return re.compile(rf"\.{re.escape(name)}\.(\d+)\.[0-9a-f]+\.tmp")


def _create_temporary(folder, name):
    """Create a new hidden file in ``folder``, named for the target and this process.

    The umask sets its permissions.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(
            folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        )
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _remove_stale_temporaries(folder, name):
    """Remove the temporary files of saves to ``name`` whose process died.

    A save killed mid-write cannot remove its temporary file; the next save
    to the same target does, once no process with that id runs (POSIX; a
    process of another user or host is assumed alive).
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


def _write_archive(file, members):
    with zipfile.ZipFile(file, "w") as archive:
        for name, data in members:
            _write_member(archive, name, data)


def _write_member(archive, name, data):
    archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


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


# ---------------------------------------------------------------------- load
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
    estimator : KerasDigitClassifier or Pipeline
        The fitted estimator (or pipeline), predicting exactly as the saved
        one.

    Raises
    ------
    ModelFileError
        If the file is empty, truncated, corrupted, not a model file, written
        by a newer format version, larger than ``max_bytes``, holding a state
        that no fit could have produced, or a network that cannot be opened
        safely (a ``Lambda`` layer, an unknown custom object).

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
    options = dict(
        network=network,
        callbacks=callbacks,
        custom_objects=custom_objects,
        allow_unsafe=allow_unsafe,
    )
    with open(path, "rb") as file:
        try:
            return _load_file(file, path, options, _Budget(int(max_bytes)))
        except Refused as exc:
            raise ModelFileError(path, str(exc)) from exc


class _Budget:
    """Bytes that may still be decompressed from one file, nested files included."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.left = max_bytes


def _load_file(file, path, options, budget, step=None):
    """The estimator or pipeline in the model file ``file``.

    ``step`` names the pipeline step whose member ``file`` is: such a file
    must hold a classifier, which its manifest says before anything else of
    it is read.
    """
    archive, reader, manifest = _open(file, budget)
    with archive:
        if manifest.get("estimator") == _pipeline_file.PIPELINE:
            if step is not None:
                raise Refused("it holds a pipeline: nesting is refused.")
            return _pipeline_file.load_pipeline(
                reader,
                manifest,
                lambda data, name: _load_file(
                    io.BytesIO(data), path, options, budget, step=name
                ),
            )
        return _load_estimator(reader, manifest, path, options)


def _load_estimator(reader, manifest, path, options):
    network, callbacks = options["network"], options["callbacks"]
    _check_members(reader.archive)
    _read_manifest(manifest)
    reader.legacy = manifest["format_version"] == 1
    custom = manifest["network"] is not None
    if network is not None and not custom:
        raise ValueError(
            f"load got network={network!r}, but '{path}' holds an "
            "estimator with the default network (network=None): pass no "
            "network."
        )
    estimator = _restore(manifest, reader, callbacks)
    if not custom:
        reader.check_dense(estimator)
    elif network is None:
        reader.rebuild_network(
            estimator, options["custom_objects"], not options["allow_unsafe"]
        )
    else:
        _use_network(path, estimator, network)
    saved_callbacks = manifest["callbacks"]
    if saved_callbacks and callbacks is None:
        warnings.warn(
            f"The estimator saved in '{path}' had callbacks {saved_callbacks}; "
            "a model file holds no callbacks. Pass callbacks= to load to set "
            "them.",
            UserWarning,
            stacklevel=4,
        )
    return estimator


def _open(file, budget):
    """The zip archive, a reader of its members, and its format-checked manifest."""
    head = file.read(4)
    if not head:
        raise Refused("the file is empty (0 bytes).")
    if head != _ZIP_MAGIC:
        hint = ""
        if head.startswith(_PICKLE_PROTOCOL_PREFIX):
            hint = (
                " It looks like a pickle (joblib.dump or pickle.dump); read it "
                "with joblib.load only if you trust its source."
            )
        raise Refused(f"not a model file: it is not a zip archive.{hint}")
    file.seek(0)
    try:
        archive = _archive.open_zip(file, "the file")
    except Refused as exc:
        raise Refused(f"the zip archive is truncated or damaged: {exc}") from exc
    try:
        names = archive.namelist()
        if _MANIFEST not in names:
            hint = ""
            if _CONFIG in names and "model.weights.h5" in names:
                hint = (
                    " It looks like a Keras .keras file: open it with "
                    "keras.saving.load_model."
                )
            raise Refused(
                f"not a complete model file: member(s) ['{_MANIFEST}'] missing "
                f"(found {names[:10]}).{hint}"
            )
        reader = _Reader(archive, budget)
        manifest = _check_format(reader.read_json(_MANIFEST, _MANIFEST_LIMIT))
    except BaseException:
        archive.close()
        raise
    return archive, reader, manifest


def _check_members(archive):
    names = archive.namelist()
    missing = [name for name in _MEMBERS if name not in names]
    if missing:
        raise Refused(
            f"not a complete model file: member(s) {missing} missing (found "
            f"{names[:10]})."
        )
    _archive.check_names(archive, _MEMBERS, "the file")


def _check_format(manifest):
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise Refused(
            f"not a model file: manifest.json declares format {found!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    version = manifest.get("format_version")
    if type(version) is not int or version < 1:
        raise Refused(f"manifest.json declares an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        from ._version import __version__

        versions = manifest.get("versions")
        writer = versions.get("sk_keras_digits") if type(versions) is dict else None
        raise Refused(
            f"it was written in format version {version} (by sk_keras_digits "
            f"{writer or '?'}), but sk_keras_digits {__version__} reads format "
            f"version {FORMAT_VERSION} at most. Upgrade sk_keras_digits to load it."
        )
    return manifest


def _read_manifest(manifest):
    if manifest.get("estimator") != ESTIMATOR:
        raise Refused(
            f"it holds a {str(manifest.get('estimator'))[:80]!r}; only {ESTIMATOR} "
            "is supported."
        )
    keys = set(manifest)
    expected = set(_model_file.MANIFEST_KEYS)
    if manifest["format_version"] == 1:
        expected = _format_1.MANIFEST_KEYS
    if keys != expected:
        raise Refused(
            f"manifest.json has unexpected or missing keys {sorted(keys ^ expected)}."
        )
    callbacks = manifest["callbacks"]
    if callbacks is not None and (
        type(callbacks) is not list or not all(type(c) is str for c in callbacks)
    ):
        raise Refused("manifest.json: callbacks should be null or a list of names.")
    described = manifest["network"]
    if described is not None and (
        type(described) is not dict
        or "name" not in described
        or not set(described) <= {"name", "kind"}
        or not all(type(v) is str for v in described.values())
    ):
        raise Refused("manifest.json: network should be null or a description.")
    if type(manifest["versions"]) is not dict:
        raise Refused("manifest.json: versions should be an object.")
    return manifest


class _Reader:
    """Reads the members of a model file, counting bytes against ``max_bytes``."""

    def __init__(self, archive, budget):
        self.archive = archive
        self.budget = budget
        self.config = None
        self.legacy = False  # reading a format-1 file

    def _limit(self, limit, what):
        budget = self.budget
        if limit > budget.left:
            raise Refused(
                f"{what} would decompress to up to {limit} bytes, more than the "
                f"{budget.left} left of max_bytes={budget.max_bytes}. If you trust "
                "the file, load it with a larger max_bytes."
            )
        return limit

    def read(self, archive, name, limit, what):
        budget = self.budget
        hint = ""
        if limit > budget.left:
            hint = (
                f"; that is what is left of max_bytes={budget.max_bytes}. If you "
                "trust the file, load it with a larger max_bytes"
            )
        data = _archive.read_member(archive, name, min(limit, budget.left), what, hint)
        budget.left -= len(data)
        return data

    def read_json(self, name, limit, archive=None, what=None):
        what = what or f"member '{name}'"
        data = self.read(archive or self.archive, name, limit, what)
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise Refused(f"{what} is not valid JSON ({str(exc)[:200]}).") from exc

    def read_arrays(self, declared):
        """The arrays of ``state.npz``: exactly the declared ones, checked."""
        specs = _model_file.arrays_from_json(declared)
        sizes = {key: _archive.npy_size(*spec) for key, spec in specs.items()}
        overhead = sum(_archive.MEMBER_OVERHEAD + 2 * len(key) for key in specs) + 64
        limit = self._limit(sum(sizes.values()) + overhead, "state.npz")
        data = self.read(self.archive, _STATE, limit, "member 'state.npz'")
        npz = _archive.open_zip(data, "state.npz")
        with npz:
            _archive.check_names(npz, [f"{key}.npy" for key in specs], "state.npz")
            arrays = {
                key: _archive.read_npy(
                    npz, f"{key}.npy", dtype, shape, f"state.npz: array {key!r}"
                )
                for key, (dtype, shape) in specs.items()
            }
        return arrays

    def read_config(self, limit):
        """The network's ``config.json`` from ``model.keras``, bounded."""
        if self.config is None:
            member_limit = limit + _METADATA_LIMIT + 4 * _archive.MEMBER_OVERHEAD
            if self.legacy:
                member_limit = self.budget.left
            data = self.read(
                self.archive, _NETWORK, member_limit, "member 'model.keras'"
            )
            inner = _archive.open_zip(data, "model.keras")
            with inner:
                # Format 1 stored Keras' whole file; its weights are never read.
                legacy = ["model.weights.h5"] if self.legacy else []
                _archive.check_names(
                    inner, [_CONFIG, _METADATA], "model.keras", optional=legacy
                )
                self.read_json(
                    _METADATA, _METADATA_LIMIT, inner, "model.keras: metadata.json"
                )
                self.config = self.read_json(
                    _CONFIG, limit, inner, "model.keras: config.json"
                )
        return self.config

    def check_dense(self, estimator):
        """Compare the file's architecture with the one the state defines."""
        state = estimator._state
        coefs = state.weights.coefs
        units = [c.shape[1] for c in coefs]
        config = self.read_config(4096 + 2048 * len(units))
        _network_config.check_dense_config(
            config,
            estimator.n_features_in_,
            units,
            estimator.activation,
            state.labels.out_activation,
            coefs[0].dtype.name,
        )

    def rebuild_network(self, estimator, custom_objects, safe_mode):
        """Set ``network`` to the file's architecture, checked before it is built."""
        config = self.read_config(_CONFIG_LIMIT)
        state = estimator._state
        weights = state.weights
        trainable, non_trainable = _network_config.variable_specs(
            copy.deepcopy(config), custom_objects, safe_mode
        )
        saved = [(p.shape, p.dtype.name) for p in weights.params]
        saved_buffers = [(b.shape, b.dtype.name) for b in weights.buffers]
        if trainable != saved or non_trainable != saved_buffers:
            raise Refused(
                "model.keras: the architecture's variables (trainable "
                f"{str(trainable)[:300]}, non-trainable {str(non_trainable)[:200]}) "
                f"differ from the weights in state.npz ({str(saved)[:300]}, "
                f"{str(saved_buffers)[:200]})."
            )
        activation = _network_config.output_activation(config)
        expected = KERAS_ACTIVATIONS[state.labels.out_activation]
        if activation is not None and activation != expected:
            raise Refused(
                f"model.keras: the network's output layer applies {activation!r}, "
                f"but {state.labels.kind} targets need {expected!r}."
            )
        estimator.network = SavedNetwork(
            config, custom_objects=custom_objects, safe_mode=safe_mode
        )
        try:
            estimator._get_network()
        except Exception as exc:
            raise Refused(
                f"model.keras: the network cannot be rebuilt for "
                f"{estimator.n_features_in_} inputs and {state.labels.n_outputs} "
                f"outputs ({type(exc).__name__}: {str(exc)[:300]})."
            ) from exc


def _refuse_constant(name):
    raise ValueError(f"{name} is not strict JSON")


def _restore(manifest, reader, callbacks):
    """The estimator with the manifest's parameters and fitted state, checked."""
    from ._classifier import KerasDigitClassifier

    cls = KerasDigitClassifier
    names = [n for n in cls._get_param_names() if n not in ("network", "callbacks")]
    legacy = manifest["format_version"] == 1
    if legacy:
        # Format 1's parameters may refer to arrays: read (bounded) first.
        stored, n_features_in, feature_names, tree, arrays = _format_1.convert(
            manifest, reader
        )
        tree = json.loads(json.dumps(tree))
    else:
        stored = manifest["params"]
    params = _model_file.params_from_json(stored, names)
    estimator = cls.__new__(cls)
    estimator.__dict__.update({**params, "network": None, "callbacks": None})
    try:
        estimator._validate_params()
        hidden = estimator._hidden_layer_sizes()
    except (TypeError, ValueError) as exc:
        raise Refused(f"invalid parameters: {exc}") from exc
    estimator.callbacks = callbacks
    if not legacy:
        n_features_in = manifest["n_features_in"]
        feature_names = manifest["feature_names_in"]
        arrays = reader.read_arrays(manifest["arrays"])
        tree = manifest["state"]
    state = _model_file.state_from_json(tree, arrays)
    if feature_names is not None:
        if type(feature_names) is not list:
            raise Refused("manifest.json: feature_names_in should be null or a list.")
        names = feature_names
        feature_names = np.empty(len(names), dtype=object)
        feature_names[:] = names
    _model_file.check_fitted(
        {**params, "hidden_layer_sizes": hidden},
        n_features_in,
        feature_names,
        state,
        custom=manifest["network"] is not None,
    )
    estimator.n_features_in_ = n_features_in
    if feature_names is not None:
        estimator.feature_names_in_ = feature_names
    estimator._state = state
    return estimator


def _use_network(path, estimator, network):
    """Give the estimator the caller's ``network``, checked against the file."""
    estimator.network = network
    try:
        built = estimator._get_network()
    except Exception as exc:
        raise ValueError(
            f"network={network!r} could not build the saved network "
            f"({estimator.n_features_in_} inputs, {estimator.n_outputs_} outputs): "
            f"{exc}"
        ) from exc
    weights = estimator._state.weights
    model = built.model
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    saved = [p.shape for p in weights.params]
    buffers = [tuple(v.shape) for v in model.non_trainable_variables]
    saved_buffers = [b.shape for b in weights.buffers]
    if shapes != saved or buffers != saved_buffers:
        raise ValueError(
            f"network={network!r} builds trainable weights of shapes {shapes} "
            f"(non-trainable {buffers}), but '{path}' holds weights of shapes "
            f"{saved} (non-trainable {saved_buffers})."
        )

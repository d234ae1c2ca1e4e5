"""Safe persistence: :func:`save` and :func:`load`.

A model file is a zip archive with three members:

- ``manifest.json``: the format name and version, the versions of the
  libraries that wrote it, the estimator's class and parameters, and its
  fitted state as JSON. Arrays are references into ``state.npz``; a few
  whitelisted objects (scikit-learn's ``LabelBinarizer``, NumPy's
  ``RandomState``) are stored as their plain state. Callables and callbacks,
  which are code, are only *described* (by name), never stored.
- ``state.npz``: every array of the fitted state (weights, solver state,
  labels), written and read by NumPy without pickle.
- ``model.keras``: the trained network in Keras' native format, opened by
  :func:`keras.saving.load_model` in safe mode.

Nothing in a model file is unpickled or executed by :func:`load`: JSON, NumPy's
``allow_pickle=False`` and Keras' safe mode read data only, and a network that
would need code from the file (a ``Lambda`` layer) or a class the caller has
not made known is refused unless the caller explicitly allows it.
:func:`save` writes a temporary file next to the target and renames it over
the target only once it is complete, so the path never holds a partial file.
"""

import contextlib
import copy
import io
import json
import os
import secrets
import stat
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

#: Name of the file format, stored in every manifest.
FORMAT_NAME = "sk_keras_digits.model"

#: Version of the file format written by :func:`save`. It changes whenever the
#: layout of the file or of the estimator's fitted state changes; :func:`load`
#: reads this version and refuses newer ones.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_STATE = "state.npz"
_NETWORK = "model.keras"
_MEMBERS = (_MANIFEST, _STATE, _NETWORK)
_ESTIMATOR = "sk_keras_digits.KerasDigitClassifier"

# A member that declares more than this many bytes and expands more than
# _MAX_EXPANSION times its stored size is refused (a "zip bomb").
_BOMB_FLOOR = 1 << 28
_MAX_EXPANSION = 100
_PICKLE_PROTOCOL_PREFIX = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"

# Keys of the tagged JSON objects that encode non-JSON values.
_ARRAY, _SCALAR, _TUPLE, _DICT, _OBJECT, _RANDOM_STATE, _FLOAT = (
    "array",
    "scalar",
    "tuple",
    "dict",
    "object",
    "random_state",
    "float",
)
# Floats that strict JSON cannot hold.
_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
# JSON types stored as they are.
_PLAIN = (bool, int, float, str, type(None))


class ModelFileError(ValueError):
    """A model file that :func:`load` cannot or will not read.

    Raised for a file that is empty, truncated, corrupted, not a model file,
    written by a newer format version, or holding a network that cannot be
    opened safely. The message names the file and the problem.

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

    The file holds the network in Keras' native format and the estimator's
    parameters and fitted state as plain data (JSON and NumPy arrays): no
    pickle. It is written to a temporary file in the same folder, flushed to
    disk, then renamed over ``path``, so ``path`` holds either its previous
    content or the complete new file, never a partial one.

    Parameters
    ----------
    estimator : KerasDigitClassifier
        A fitted estimator.
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
    :func:`load` takes them as arguments.

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
    from sklearn.utils.validation import check_is_fitted

    from ._classifier import _KERAS_STATE, KerasDigitClassifier

    if not isinstance(estimator, KerasDigitClassifier):
        raise TypeError(
            "save expects a KerasDigitClassifier, got "
            f"{type(estimator).__name__}. Use joblib.dump for other objects."
        )
    check_is_fitted(estimator)
    path = os.fspath(path)
    names = estimator.get_params(deep=False)
    state = {k: v for k, v in vars(estimator).items() if k not in _KERAS_STATE}
    params = {name: state.pop(name) for name in names}
    network = params.pop("network")
    callbacks = params.pop("callbacks")
    encoder = _Encoder()
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": _ESTIMATOR,
        "versions": _library_versions(),
        "params": encoder.encode(params, "params"),
        "network": None if network is None else _describe_callable(network),
        "callbacks": (
            None if callbacks is None else [_qualified_name(c) for c in callbacks]
        ),
        "state": encoder.encode(state, "state"),
        "object_arrays": encoder.object_arrays,
    }
    network_bytes = _network_to_bytes(estimator)
    state_buffer = io.BytesIO()
    np.savez(state_buffer, **encoder.arrays)
    members = [
        (_MANIFEST, json.dumps(manifest, indent=1, allow_nan=False).encode()),
        (_STATE, state_buffer.getvalue()),
        (_NETWORK, network_bytes),
    ]
    _atomic_write(path, members)


def _library_versions():
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


def _network_to_bytes(estimator):
    """The fitted network as the bytes of a Keras ``.keras`` file."""
    model = estimator.model_
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, _NETWORK)
        try:
            model.save(file)
        except Exception as exc:
            raise ValueError(
                f"Cannot save the network of this {type(estimator).__name__} in "
                f"Keras' format: {exc}. Make its custom layers serializable "
                "(keras.saving.register_keras_serializable and get_config), or "
                "use joblib.dump."
            ) from exc
        return Path(file).read_bytes()


def _atomic_write(path, members):
    """Write the archive next to ``path``, fsync it, then rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = _create_temporary(folder, os.path.basename(path))
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


def _create_temporary(folder, name):
    """Create a new hidden file in ``folder``; the umask sets its permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


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


class _Encoder:
    """Encode plain data as JSON, arrays as references into ``state.npz``.

    An array referenced several times (``coefs_`` and ``_params`` share their
    arrays) is stored once, and decoded as one array again.
    """

    def __init__(self):
        self.arrays = {}
        self.object_arrays = {}
        self._memo = {}
        self._alive = []

    def encode(self, value, where):
        if type(value) is float and not np.isfinite(value):
            return {_FLOAT: "nan" if np.isnan(value) else f"{value:.0f}"}
        if type(value) in _PLAIN:
            return value
        if isinstance(value, np.ndarray):
            return {_ARRAY: self._array(value, where)}
        if isinstance(value, np.generic):
            return {_SCALAR: self._array(np.asarray(value), where)}
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {
                _TUPLE: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            }
        if type(value) is dict:
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"Cannot save {where}: a dict with non-string keys.")
            return {
                _DICT: {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}
            }
        if isinstance(value, np.random.RandomState):
            return {_RANDOM_STATE: self.encode(value.get_state(), where)}
        name = _qualified_name(value)
        if name in _allowed_classes():
            return {_OBJECT: name, "state": self.encode(value.__getstate__(), where)}
        raise TypeError(
            f"Cannot save {where}: {type(value).__name__} objects are not plain "
            "data. Use joblib.dump to save this estimator."
        )

    def _array(self, array, where):
        key = self._memo.get(id(array))
        if key is not None:
            return key
        key = f"a{len(self._memo)}"
        self._memo[id(array)] = key
        self._alive.append(array)  # so that its id is not reused
        if array.dtype.hasobject:
            items = array.ravel().tolist()
            if not all(type(v) in _PLAIN for v in items):
                raise TypeError(
                    f"Cannot save {where}: an object array holding values other "
                    "than str, int, float, bool or None."
                )
            self.object_arrays[key] = {"shape": list(array.shape), "items": items}
        else:
            self.arrays[key] = array
        return key


def _allowed_classes():
    """Classes whose plain state a model file may hold, by qualified name."""
    from sklearn.preprocessing import LabelBinarizer

    return {_qualified_name(LabelBinarizer): LabelBinarizer}


# ---------------------------------------------------------------------- load
def load(
    path, *, network=None, callbacks=None, custom_objects=None, allow_unsafe=False
):
    """Load an estimator saved by :func:`save`, without running code from the file.

    The file is read as JSON, NumPy arrays (``allow_pickle=False``) and a
    Keras network opened in Keras' safe mode: nothing is unpickled, and a
    network that needs code from the file is refused unless allowed.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    network : callable, default=None
        For an estimator saved with a custom ``network``: the function that
        builds it (a file holds no code). The saved weights are read into the
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
        Open the network with Keras' safe mode off, which lets a ``Lambda``
        layer's Python code stored in the file run. Only for files from a
        source you trust.

    Returns
    -------
    estimator : KerasDigitClassifier
        The fitted estimator, predicting exactly as the saved one.

    Raises
    ------
    ModelFileError
        If the file is empty, truncated, corrupted, not a model file, written
        by a newer format version, or holds a network that cannot be opened
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
    data = Path(path).read_bytes()
    members = _read_members(path, data)
    manifest = _read_manifest(path, members[_MANIFEST])
    arrays = _read_arrays(path, members[_STATE])
    custom = manifest.get("network") is not None
    if network is not None and not custom:
        raise ValueError(
            f"load got network={network!r}, but '{path}' holds an estimator "
            "with the default network (network=None): pass no network."
        )
    saved_callbacks = manifest.get("callbacks")
    if saved_callbacks and callbacks is None:
        warnings.warn(
            f"The estimator saved in '{path}' had callbacks {saved_callbacks}; "
            "a model file holds no callbacks. Pass callbacks= to load to set "
            "them.",
            UserWarning,
            stacklevel=2,
        )

    try:
        estimator = _restore(path, manifest, arrays, custom, callbacks)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(
            path, f"its content is malformed ({type(exc).__name__}: {exc})."
        ) from exc
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, _NETWORK)
        Path(file).write_bytes(members[_NETWORK])
        if network is not None:
            estimator.network = network
            _read_weights_into(path, estimator, file)
            return estimator
        model = _open_network(path, file, custom_objects, allow_unsafe)
    if custom:
        import keras

        estimator.network = SavedNetwork(
            keras.saving.serialize_keras_object(model),
            custom_objects=custom_objects,
            safe_mode=not allow_unsafe,
        )
    _check_weights(path, estimator, model)
    estimator._model = model
    return estimator


def _restore(path, manifest, arrays, custom, callbacks):
    """The estimator with the manifest's parameters and fitted state, checked."""
    from ._classifier import KerasDigitClassifier

    decoder = _Decoder(path, arrays, manifest.get("object_arrays"))
    params = decoder.decode(manifest.get("params"), "params")
    state = decoder.decode(manifest.get("state"), "state")
    if type(params) is not dict or type(state) is not dict:
        raise ModelFileError(path, "the manifest's params or state is not a dict.")
    cls = KerasDigitClassifier
    expected = set(cls._get_param_names()) - {"network", "callbacks"}
    if set(params) != expected:
        raise ModelFileError(
            path,
            f"the parameters {sorted(set(params) ^ expected)} are unexpected or "
            f"missing for {cls.__name__}.",
        )
    invalid = [k for k in state if not k.isidentifier() or hasattr(cls, k)]
    invalid += sorted(expected & set(state))
    if invalid:
        raise ModelFileError(path, f"invalid fitted attribute names {invalid}.")
    estimator = cls.__new__(cls)
    estimator.__setstate__({**params, "network": None, "callbacks": callbacks})
    try:
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"invalid parameters: {exc}") from exc
    estimator.__dict__.update(state)
    _check_state(path, estimator, custom)
    return estimator


def _read_members(path, data):
    """The archive's members as bytes, every checksum verified."""
    if not data:
        raise ModelFileError(path, "the file is empty (0 bytes).")
    if not data.startswith(_ZIP_MAGIC):
        hint = ""
        if data.startswith(_PICKLE_PROTOCOL_PREFIX):
            hint = (
                " It looks like a pickle (joblib.dump or pickle.dump); read it "
                "with joblib.load only if you trust its source."
            )
        raise ModelFileError(path, f"not a model file: it is not a zip archive.{hint}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:
        raise ModelFileError(
            path,
            f"the zip archive is truncated or damaged ({exc}); "
            f"{len(data)} bytes could not be read as a complete archive.",
        ) from exc
    with archive:
        names = archive.namelist()
        missing = [name for name in _MEMBERS if name not in names]
        if missing:
            hint = ""
            if "config.json" in names and "model.weights.h5" in names:
                hint = (
                    " It looks like a Keras .keras file: open it with "
                    "keras.saving.load_model."
                )
            raise ModelFileError(
                path,
                f"not a complete model file: member(s) {missing} missing "
                f"(found {names}).{hint}",
            )
        members = {}
        for name in _MEMBERS:
            try:
                info = archive.getinfo(name)
                if (
                    info.file_size > _BOMB_FLOOR
                    and info.file_size > _MAX_EXPANSION * info.compress_size
                ):
                    raise ValueError(
                        f"it declares {info.file_size} bytes stored in "
                        f"{info.compress_size} (a decompression bomb)"
                    )
                members[name] = archive.read(name)
            except Exception as exc:
                raise ModelFileError(
                    path, f"member '{name}' is corrupted ({exc})."
                ) from exc
    return members


def _read_manifest(path, data):
    try:
        manifest = json.loads(data.decode("utf-8"))
    except Exception as exc:
        raise ModelFileError(path, f"manifest.json is not valid JSON ({exc}).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelFileError(
            path,
            f"not a model file: manifest.json declares format {found!r}, "
            f"expected {FORMAT_NAME!r}.",
        )
    version = manifest.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFileError(
            path, f"manifest.json declares an invalid format_version {version!r}."
        )
    if version > FORMAT_VERSION:
        from ._version import __version__

        writer = manifest.get("versions", {}).get("sk_keras_digits", "?")
        raise ModelFileError(
            path,
            f"it was written in format version {version} (by sk_keras_digits "
            f"{writer}), but sk_keras_digits {__version__} reads format version "
            f"{FORMAT_VERSION} at most. Upgrade sk_keras_digits to load it.",
        )
    if manifest.get("estimator") != _ESTIMATOR:
        raise ModelFileError(
            path,
            f"it holds a {manifest.get('estimator')!r}; only {_ESTIMATOR} is "
            "supported.",
        )
    return manifest


def _read_arrays(path, data):
    """Every array of ``state.npz``, read without pickle."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelFileError(
                path,
                "state.npz holds an object array, which only pickle could read: "
                "refused (a model file holds no pickled data).",
            ) from exc
        raise ModelFileError(path, f"state.npz cannot be read ({exc}).") from exc
    except Exception as exc:
        raise ModelFileError(path, f"state.npz cannot be read ({exc}).") from exc


class _Decoder:
    """Decode what :class:`_Encoder` wrote, refusing anything else."""

    def __init__(self, path, arrays, object_arrays):
        self.path = path
        self.arrays = arrays
        self.object_arrays = object_arrays if isinstance(object_arrays, dict) else {}
        self._memo = {}

    def fail(self, where, problem):
        raise ModelFileError(self.path, f"manifest.json: {where} {problem}.")

    def decode(self, node, where):
        if type(node) in _PLAIN:
            return node
        if type(node) is list:
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if type(node) is not dict or len(node) not in (1, 2):
            self.fail(where, f"holds an unknown value {str(node)[:80]!r}")
        if _ARRAY in node and len(node) == 1:
            return self._array(node[_ARRAY], where)
        if _FLOAT in node and len(node) == 1 and node[_FLOAT] in _NON_FINITE:
            return _NON_FINITE[node[_FLOAT]]
        if _SCALAR in node and len(node) == 1:
            array = self._array(node[_SCALAR], where)
            if array.ndim != 0:
                self.fail(where, "is a scalar stored as a non-scalar array")
            return array[()]
        if _TUPLE in node and len(node) == 1 and type(node[_TUPLE]) is list:
            return tuple(self.decode(node[_TUPLE], where))
        if _DICT in node and len(node) == 1 and type(node[_DICT]) is dict:
            return {
                k: self.decode(v, f"{where}[{k!r}]") for k, v in node[_DICT].items()
            }
        if _RANDOM_STATE in node and len(node) == 1:
            random_state = np.random.RandomState()
            try:
                random_state.set_state(self.decode(node[_RANDOM_STATE], where))
            except (TypeError, ValueError) as exc:
                self.fail(where, f"holds an invalid RandomState state ({exc})")
            return random_state
        if _OBJECT in node and "state" in node:
            cls = _allowed_classes().get(node[_OBJECT])
            if cls is None:
                self.fail(where, f"names a class {node[_OBJECT]!r} that is not allowed")
            state = self.decode(node["state"], where)
            if type(state) is not dict:
                self.fail(where, "holds an object whose state is not a dict")
            obj = cls.__new__(cls)
            obj.__setstate__(state)
            return obj
        self.fail(where, f"holds an unknown value {str(node)[:80]!r}")

    def _array(self, key, where):
        if type(key) is not str:
            self.fail(where, f"refers to an array by an invalid key {key!r}")
        if key in self._memo:
            return self._memo[key]
        if key in self.arrays:
            array = self.arrays[key]
        elif key in self.object_arrays:
            spec = self.object_arrays[key]
            try:
                items = spec["items"]
                if type(items) is not list or not all(type(v) in _PLAIN for v in items):
                    raise ValueError("items must be a list of plain values")
                array = np.empty(len(items), dtype=object)
                array[:] = items
                array = array.reshape(spec["shape"])
            except (KeyError, TypeError, ValueError) as exc:
                self.fail(where, f"holds an invalid object array ({exc})")
        else:
            raise ModelFileError(
                self.path, f"{where} refers to array {key!r}, missing from state.npz."
            )
        self._memo[key] = array
        return array


def _check_state(path, estimator, custom):
    """Refuse fitted state that is incomplete or inconsistent."""
    required = (
        "classes_",
        "n_features_in_",
        "n_outputs_",
        "out_activation_",
        "coefs_",
        "intercepts_",
        "_params",
        "_buffers",
        "_label_binarizer",
    )
    missing = [name for name in required if name not in vars(estimator)]
    if missing:
        raise ModelFileError(path, f"the fitted state lacks {missing}.")
    params = estimator._params
    arrays = [*params, *estimator._buffers, *estimator.coefs_, *estimator.intercepts_]
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise ModelFileError(path, "the fitted weights are not all arrays.")
    if not params or params[0].dtype.name not in ("float32", "float64"):
        raise ModelFileError(path, "the fitted weights are not float32 or float64.")
    if not all(np.isfinite(p).all() for p in params):
        raise ModelFileError(path, "the fitted weights are not all finite.")
    if estimator.out_activation_ not in ("softmax", "logistic"):
        raise ModelFileError(
            path, f"invalid out_activation_ {estimator.out_activation_!r}."
        )
    if not custom:
        shapes = [c.shape for c in estimator.coefs_]
        chain = all(a[1] == b[0] for a, b in zip(shapes, shapes[1:], strict=False))
        consistent = (
            shapes
            and all(len(s) == 2 for s in shapes)
            and chain
            and shapes[0][0] == estimator.n_features_in_
            and shapes[-1][1] == estimator.n_outputs_
            and [i.shape for i in estimator.intercepts_] == [(s[1],) for s in shapes]
        )
        if not consistent:
            raise ModelFileError(
                path,
                f"the network's weight shapes {shapes} do not match "
                f"n_features_in_={estimator.n_features_in_} and "
                f"n_outputs_={estimator.n_outputs_}.",
            )


def _open_network(path, file, custom_objects, allow_unsafe):
    """Open ``model.keras`` with Keras, in safe mode unless allowed otherwise."""
    import re

    import keras

    try:
        return keras.saving.load_model(
            file,
            custom_objects=custom_objects,
            compile=False,
            safe_mode=not allow_unsafe,
        )
    except Exception as exc:
        message = str(exc)
        unknown = re.search(r"Could not locate (\w+) '([^']+)'", message)
        if "lambda" in message.lower() and "safe_mode" in message:
            problem = (
                "its network holds Python code (a Lambda layer or a lambda), "
                "which Keras' safe mode refuses to load. Pass allow_unsafe=True "
                "only if you trust the file's source, or rebuild the network "
                "with your own code: load(path, network=your_builder)."
            )
        elif unknown:
            kind, name = unknown.groups()
            problem = (
                f"its network uses the custom {kind} {name!r}, which is not "
                "known here. Register it with "
                "keras.saving.register_keras_serializable, or pass "
                f"custom_objects={{{name!r}: ...}}, only if you trust the "
                "file's source; or rebuild the network with your own code: "
                "load(path, network=your_builder)."
            )
        else:
            problem = f"Keras cannot open its network: {message[:500]}"
        raise ModelFileError(path, problem) from exc


def _check_weights(path, estimator, model):
    """Check the network in ``model.keras`` against the state in ``state.npz``.

    The trainable weights must be equal. The non-trainable ones must have the
    same shapes and take the values of ``state.npz``, which is complete where
    a ``.keras`` file is not (it holds no random-generator states).
    """
    trainable = [v.numpy() for v in model.trainable_variables]
    buffers = model.non_trainable_variables
    if (
        len(trainable) != len(estimator._params)
        or not all(
            np.array_equal(a, b)
            for a, b in zip(trainable, estimator._params, strict=False)
        )
        or [tuple(v.shape) for v in buffers] != [b.shape for b in estimator._buffers]
    ):
        raise ModelFileError(
            path,
            "the network's weights in model.keras differ from the estimator's "
            "weights in state.npz: the file was altered or damaged.",
        )
    for variable, value in zip(buffers, estimator._buffers, strict=True):
        variable.assign(value)


def _read_weights_into(path, estimator, file):
    """Check ``network=`` against the file: same weight shapes, same values."""
    try:
        network = estimator._get_network()
    except Exception as exc:
        raise ValueError(
            f"network={estimator.network!r} could not build the saved network "
            f"({estimator.n_features_in_} inputs, {estimator.n_outputs_} outputs): "
            f"{exc}"
        ) from exc
    model = network.model
    built = [tuple(v.shape) for v in model.trainable_variables]
    saved = [p.shape for p in estimator._params]
    if built != saved:
        raise ValueError(
            f"network={estimator.network!r} builds trainable weights of shapes "
            f"{built}, but '{path}' holds weights of shapes {saved}."
        )
    try:
        model.load_weights(file)
    except Exception as exc:
        raise ValueError(
            f"The saved weights in '{path}' do not fit the network built by "
            f"network={estimator.network!r}: {exc}"
        ) from exc
    _check_weights(path, estimator, model)

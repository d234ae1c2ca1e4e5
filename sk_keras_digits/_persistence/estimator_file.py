"""The estimator file: a fitted KerasDigitClassifier or KerasDigitRegressor.

The file is a zip archive with three members:

- ``manifest.json``: the format name and version, the versions of the
  libraries that wrote it, the estimator's class (``"estimator"``:
  :data:`CLASSIFIER` or :data:`REGRESSOR`), its parameters (:mod:`.params_codec`),
  ``n_features_in_`` and ``feature_names_in_``, and its fitted state (the
  :class:`~sk_keras_digits._state.FittedState` record) as JSON
  (:mod:`.state_codec`), its arrays declared (dtype and shape) and referring
  to ``state.npz``. Callables and callbacks, which are code, are only
  *described* (by name), never stored.
- ``state.npz``: every array of the fitted state (weights, solver state,
  a classifier's labels), once, written and read by NumPy's ``.npy`` format
  without pickle.
- ``model.keras``: the network's architecture in Keras' format
  (:mod:`.network_file`; the weights are in ``state.npz``).

The estimator is read through its record alone
(:meth:`~sk_keras_digits._base.BaseKerasMLP._fitted_record`) and restored
through :meth:`~sk_keras_digits._base.BaseKerasMLP._from_fitted_record`; what
is restored must pass :func:`~.invariants.check_fitted`. The two estimators
share the layout: the manifest's ``"estimator"`` says which class the
parameters and the fitted state are of (a regressor's ``state.labels`` is a
:class:`~sk_keras_digits._targets.RegressionTargets` record), and a file
whose parameters or state are the other class's is refused. Format 1 held
classifiers only.
"""

import io
import json
import warnings
from typing import NamedTuple

import numpy as np

from .._names import qualified_name
from .._state import FittedEstimator
from .archive import MEMBER_OVERHEAD, check_names, npy_size, open_zip, read_npy
from .errors import Refused
from .invariants import check_fitted, check_inputs
from .manifest import HEADER_KEYS, MANIFEST, PIPELINE, header, open_model_file
from .network_file import (
    NETWORK,
    build_checked,
    check_builder,
    check_dense,
    network_bytes,
    saved_network,
)
from .old import format_1
from .params_codec import params_from_json, params_to_json
from .state_codec import (
    arrays_from_json,
    arrays_to_json,
    state_from_json,
    state_to_json,
)

#: The ``estimator`` of a classifier's manifest.
CLASSIFIER = "sk_keras_digits.KerasDigitClassifier"
#: The ``estimator`` of a regressor's manifest.
REGRESSOR = "sk_keras_digits.KerasDigitRegressor"
#: The estimators a model file may hold, by their manifest's ``estimator``.
ESTIMATORS = (CLASSIFIER, REGRESSOR)

#: Keys of a format-2 manifest.
MANIFEST_KEYS = (
    *HEADER_KEYS,
    "params",
    "network",
    "callbacks",
    "n_features_in",
    "feature_names_in",
    "state",
    "arrays",
)

_STATE = "state.npz"
_MEMBERS = (MANIFEST, _STATE, NETWORK)
# Parameters that are code: described in the manifest, never stored.
_CODE = ("network", "callbacks")


class LoadOptions(NamedTuple):
    """``load``'s arguments about what a file does not hold (code)."""

    network: object = None
    callbacks: object = None
    custom_objects: object = None
    allow_unsafe: bool = False


def estimator_classes():
    """The estimator classes a model file may hold, by manifest name.

    Returns
    -------
    classes : dict of str to type
    """
    from .._classifier import KerasDigitClassifier
    from .._regressor import KerasDigitRegressor

    return {CLASSIFIER: KerasDigitClassifier, REGRESSOR: KerasDigitRegressor}


def estimator_name(estimator):
    """The manifest name of ``estimator``'s class, or None if no file holds it.

    An instance of a subclass is saved, and loaded, as its base class.
    """
    for name, cls in estimator_classes().items():
        if isinstance(estimator, cls):
            return name
    return None


# ---------------------------------------------------------------------- save
def estimator_members(estimator):
    """The members of the model file of a fitted estimator.

    Parameters
    ----------
    estimator : KerasDigitClassifier or KerasDigitRegressor

    Returns
    -------
    members : list of (str, bytes)
    """
    name = estimator_name(estimator)
    record = estimator._fitted_record()
    params = {k: v for k, v in record.params.items() if k not in _CODE}
    network, callbacks = record.params["network"], record.params["callbacks"]
    try:
        check_fitted(record, custom=network is not None, regressor=name == REGRESSOR)
    except Refused as exc:
        raise ValueError(
            f"Cannot save this {type(estimator).__name__}: its fitted state is not "
            f"one a fit produces ({exc}). Refit it."
        ) from exc
    tree, arrays = state_to_json(record.state)
    feature_names = record.feature_names_in
    manifest = {
        **header(name),
        "params": params_to_json(params),
        "network": None if network is None else _describe_callable(network),
        "callbacks": (
            None if callbacks is None else [qualified_name(c) for c in callbacks]
        ),
        "n_features_in": record.n_features_in,
        "feature_names_in": None if feature_names is None else feature_names.tolist(),
        "state": tree,
        "arrays": arrays_to_json(arrays),
    }
    state_buffer = io.BytesIO()
    np.savez(state_buffer, **arrays)
    return [
        (MANIFEST, json.dumps(manifest, indent=1, allow_nan=False).encode()),
        (_STATE, state_buffer.getvalue()),
        (NETWORK, network_bytes(estimator)),
    ]


def _describe_callable(function):
    """A description of a ``network`` callable: its name, for information only."""
    target = getattr(function, "func", function)  # functools.partial
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None)
    if module is None or name is None:
        return {"name": qualified_name(function)}
    kind = "partial" if target is not function else "callable"
    return {"name": f"{module}.{name}", "kind": kind}


# ---------------------------------------------------------------------- load
def load_step(data, path, options, budget):
    """The estimator in a pipeline step's model file (``data``, its bytes).

    Its manifest must say it holds a classifier or a regressor before
    anything else of it is read: a pipeline there is refused.
    """
    archive, manifest = open_model_file(io.BytesIO(data), budget)
    with archive:
        if manifest.get("estimator") == PIPELINE:
            raise Refused("it holds a pipeline: nesting is refused.")
        return load_estimator(archive, budget, manifest, path, options)


def load_estimator(archive, budget, manifest, path, options):
    """The estimator the open model file ``archive`` holds, checked.

    Parameters
    ----------
    archive : zipfile.ZipFile
    budget : Budget
    manifest : dict
        Its manifest, its format already checked.
    path : str
        The file, for messages.
    options : LoadOptions

    Returns
    -------
    estimator : KerasDigitClassifier or KerasDigitRegressor
        Of the class the manifest names.
    """
    network = options.network
    _check_members(archive)
    _check_manifest(manifest)
    legacy = manifest["format_version"] == 1
    custom = manifest["network"] is not None
    if network is not None and not custom:
        raise ValueError(
            f"load got network={network!r}, but '{path}' holds an "
            "estimator with the default network (network=None): pass no "
            "network."
        )
    estimator, record = _restore(manifest, archive, budget)
    if not custom:
        check_dense(archive, budget, record, legacy)
    elif network is None:
        saved = saved_network(
            archive,
            budget,
            record,
            options.custom_objects,
            not options.allow_unsafe,
            legacy,
        )
        estimator.set_params(network=saved)
        build_checked(estimator)
    else:
        check_builder(path, record, network)
        estimator.set_params(network=network)
    estimator.set_params(callbacks=options.callbacks)
    saved_callbacks = manifest["callbacks"]
    if saved_callbacks and options.callbacks is None:
        warnings.warn(
            f"The estimator saved in '{path}' had callbacks {saved_callbacks}; "
            "a model file holds no callbacks. Pass callbacks= to load to set "
            "them.",
            UserWarning,
            stacklevel=4,
        )
    return estimator


def _check_members(archive):
    names = archive.namelist()
    missing = [name for name in _MEMBERS if name not in names]
    if missing:
        raise Refused(
            f"not a complete model file: member(s) {missing} missing (found "
            f"{names[:10]})."
        )
    check_names(archive, _MEMBERS, "the file")


def _check_manifest(manifest):
    estimator = manifest.get("estimator")
    if not any(estimator == name for name in ESTIMATORS):
        raise Refused(
            f"it holds a {str(estimator)[:80]!r}; only {' and '.join(ESTIMATORS)} "
            "are supported."
        )
    keys = set(manifest)
    expected = set(MANIFEST_KEYS)
    if manifest["format_version"] == 1:
        if estimator != CLASSIFIER:
            raise Refused(
                f"it declares format version 1 and holds a {estimator}, but "
                f"format 1 held {CLASSIFIER} only."
            )
        expected = format_1.MANIFEST_KEYS
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


def read_arrays(archive, budget, declared):
    """The arrays of ``state.npz``: exactly the declared ones, checked.

    Parameters
    ----------
    archive : zipfile.ZipFile
    budget : Budget
    declared : object
        The manifest's ``"arrays"``.

    Returns
    -------
    arrays : dict of str to ndarray
    """
    specs = arrays_from_json(declared)
    sizes = {key: npy_size(*spec) for key, spec in specs.items()}
    overhead = sum(MEMBER_OVERHEAD + 2 * len(key) for key in specs) + 64
    limit = sum(sizes.values()) + overhead
    budget.reserve(limit, f"{_STATE} would decompress to up to {limit} bytes")
    data = budget.read(archive, _STATE, limit, f"member '{_STATE}'")
    with open_zip(data, _STATE) as npz:
        check_names(npz, [f"{key}.npy" for key in specs], _STATE)
        return {
            key: read_npy(npz, f"{key}.npy", dtype, shape, f"{_STATE}: array {key!r}")
            for key, (dtype, shape) in specs.items()
        }


def _restore(manifest, archive, budget):
    """The estimator with the manifest's parameters and fitted state, checked.

    Returns
    -------
    estimator : KerasDigitClassifier or KerasDigitRegressor
        Of the class the manifest names, without ``network`` and
        ``callbacks`` (set by the caller).
    record : FittedEstimator
        Its record.
    """
    name = manifest["estimator"]
    cls = estimator_classes()[name]
    names = _param_names(cls)
    legacy = manifest["format_version"] == 1
    if legacy:
        # Format 1's parameters may refer to arrays: read (bounded) first.
        stored, n_features_in, feature_names, tree, arrays = format_1.convert(
            manifest, archive, budget
        )
        tree = json.loads(json.dumps(tree))
    else:
        stored = manifest["params"]
    _check_param_names(stored, name)
    params = params_from_json(stored, names)
    if not legacy:
        n_features_in = manifest["n_features_in"]
        feature_names = manifest["feature_names_in"]
        arrays = read_arrays(archive, budget, manifest["arrays"])
        tree = manifest["state"]
    state = state_from_json(tree, arrays)
    if feature_names is not None:
        if type(feature_names) is not list:
            raise Refused("manifest.json: feature_names_in should be null or a list.")
        names = feature_names
        feature_names = np.empty(len(names), dtype=object)
        feature_names[:] = names
    check_inputs(n_features_in, feature_names)
    stored = FittedEstimator(
        params={**params, **dict.fromkeys(_CODE)},
        hidden_layer_sizes=None,  # what the parameter gives
        n_features_in=n_features_in,
        feature_names_in=feature_names,
        state=state,
    )
    try:
        estimator = cls._from_fitted_record(stored)
    except (TypeError, ValueError) as exc:
        raise Refused(f"invalid parameters: {exc}") from exc
    record = estimator._fitted_record()
    custom = manifest["network"] is not None
    check_fitted(record, custom=custom, regressor=name == REGRESSOR)
    return estimator, record


def _param_names(cls):
    """The parameters of ``cls`` a file stores (not the code)."""
    return [n for n in cls().get_params(deep=False) if n not in _CODE]


def _check_param_names(stored, name):
    """Refuse the parameters of another estimator class than the manifest names.

    (Other unexpected or missing names are refused by the parameter codec.)
    """
    if type(stored) is not dict:
        return
    classes = estimator_classes()
    expected = set(_param_names(classes[name]))
    for other, cls in classes.items():
        if other != name and set(stored) == set(_param_names(cls)):
            raise Refused(
                f"manifest.json: estimator is {name!r}, but params are a {other}'s "
                f"(the parameters {sorted(set(stored) ^ expected)} are unexpected "
                "or missing): the file mixes two estimators."
            )

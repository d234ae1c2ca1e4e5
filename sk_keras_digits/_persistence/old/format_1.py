"""Reading format-1 model files: their attributes converted to the fitted state.

Format 1 stored the estimator's attributes (``vars()``: ``_params``,
``_buffers``, ``_solver_state``, ``_loop``, ``_label_binarizer``,
``loss_curve_``, ...) as tagged JSON with arrays in ``state.npz`` under
opaque keys. :func:`convert` maps what a fit produces among them to the
format-2 manifest's values: the parameters as format-2 JSON, and the
:class:`~sk_keras_digits._state.FittedState` as its JSON tree and arrays, so
that they go through exactly the checks of a format-2 file. Everything else
in a format-1 state (the derived attributes) is ignored.
"""

import numpy as np

from ..._labels import LabelEncoding
from ..._state import (
    AdamState,
    FittedState,
    History,
    Progress,
    SGDState,
    TrainingState,
    Weights,
)
from ..archive import npy_size, open_zip, read_npy, read_npy_header
from ..errors import Refused
from ..json_values import NON_FINITE, float_to_json
from ..manifest import HEADER_KEYS
from ..state_codec import state_to_json

MANIFEST_KEYS = {
    *HEADER_KEYS,
    "params",
    "network",
    "callbacks",
    "state",
    "object_arrays",
}
_PLAIN = (str, int, float, bool, type(None))


def read_arrays(archive, budget, name):
    """Every array of a format-1 ``state.npz``, each checked before it is read."""
    data = budget.read(archive, name, budget.left, f"member '{name}'")
    arrays = {}
    with open_zip(data, "state.npz") as npz:
        for member in npz.namelist():
            if not member.endswith(".npy"):
                raise Refused(
                    f"state.npz holds a member {member[:80]!r}, not an array."
                )
            dtype, shape = read_npy_header(npz, member, f"state.npz: {member}")
            if dtype.kind not in "biufU" or not dtype.isnative:
                raise Refused(
                    f"state.npz: {member} holds an array of dtype {dtype}: only "
                    "booleans, integers, floats and unicode strings are allowed."
                )
            size = npy_size(dtype, shape)
            budget.reserve(size, f"state.npz: {member} holds {size} bytes")
            budget.left -= size
            arrays[member[:-4]] = read_npy(
                npz, member, dtype, shape, f"state.npz: {member}"
            )
    return arrays


class _Decoder:
    """Decode format 1's tagged JSON into Python values (no objects built)."""

    def __init__(self, arrays, object_arrays):
        self.arrays = arrays
        self.object_arrays = object_arrays if type(object_arrays) is dict else {}

    def __call__(self, node, where):
        if type(node) in _PLAIN:
            return node
        if type(node) is list:
            return [self(v, where) for v in node]
        if type(node) is not dict or not node:
            raise Refused(f"manifest.json: {where} holds {str(node)[:80]!r}.")
        tag = next(iter(node))
        value = node[tag]
        if len(node) == 1 and tag == "float" and _key(value) in NON_FINITE:
            return float(NON_FINITE[value])
        if len(node) == 1 and tag in ("array", "scalar"):
            array = self._array(value, where)
            return array[()] if tag == "scalar" and array.ndim == 0 else array
        if len(node) == 1 and tag == "tuple" and type(value) is list:
            return tuple(self(v, where) for v in value)
        if len(node) == 1 and tag == "dict" and type(value) is dict:
            return {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}
        if len(node) == 1 and tag == "random_state":
            return {"random_state": self(value, where)}
        if set(node) == {"object", "state"}:
            return {"object": value, "state": self(node["state"], where)}
        raise Refused(f"manifest.json: {where} holds {str(node)[:80]!r}.")

    def _array(self, key, where):
        if type(key) is str and key in self.arrays:
            return self.arrays[key]
        spec = self.object_arrays.get(key) if type(key) is str else None
        if (
            type(spec) is dict
            and type(spec.get("items")) is list
            and all(type(v) in _PLAIN for v in spec["items"])
            and spec.get("shape") == [len(spec["items"])]
        ):
            array = np.empty(len(spec["items"]), dtype=object)
            array[:] = spec["items"]
            return array
        raise Refused(f"manifest.json: {where} refers to a missing array {key!r}.")


def _key(value):
    return value if type(value) is str else None


def _params_json(value, where):
    """A format-1 parameter value as format-2 parameter JSON."""
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return float_to_json(value)
    if type(value) is list:
        return [_params_json(v, where) for v in value]
    if type(value) is tuple:
        return {"tuple": [_params_json(v, where) for v in value]}
    if isinstance(value, np.generic):
        return {"numpy": value.dtype.name, "value": _params_json(value.item(), where)}
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return {"ndarray": value.dtype.name, "value": value.tolist()}
    if type(value) is dict and set(value) == {"random_state"}:
        state = value["random_state"]
        if type(state) is not tuple or len(state) != 5 or state[0] != "MT19937":
            raise Refused(f"manifest.json: {where} is not a RandomState's state.")
        _, key, pos, has_gauss, cached = state
        return {
            "random_state": {
                "key": key.tolist() if isinstance(key, np.ndarray) else key,
                "pos": _params_json(pos, where),
                "has_gauss": _params_json(has_gauss, where),
                "cached_gaussian": _params_json(cached, where),
            }
        }
    raise Refused(f"manifest.json: {where} holds {str(value)[:80]!r}.")


def _plain(value):
    """NumPy scalars as Python numbers (format 1 stored some as scalars)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _flat(parts, where):
    if type(parts) is not list or not all(isinstance(p, np.ndarray) for p in parts):
        raise Refused(f"manifest.json: {where} should be a list of arrays.")
    if not parts:
        return np.zeros(0)
    return np.concatenate([p.ravel() for p in parts])


#: Parameters added after format 1, with the value that means what format-1
#: estimators did.
ADDED_PARAMETERS = {"class_weight": None}


def _convert_params(manifest, decode):
    """The parameters of a format-1 manifest, as format-2 JSON."""
    params = decode(manifest["params"], "params")
    if type(params) is not dict:
        raise Refused("manifest.json: params should be an object.")
    converted = {k: _params_json(v, f"params[{k!r}]") for k, v in params.items()}
    for name, value in ADDED_PARAMETERS.items():
        if name in converted:
            raise Refused(
                f"manifest.json (format 1): params[{name!r}] did not exist in format 1."
            )
        converted[name] = value
    return converted


def convert(manifest, archive, budget):
    """The format-2 values of a format-1 manifest.

    Parameters
    ----------
    manifest : dict
    archive : zipfile.ZipFile
        The model file, whose ``state.npz`` is read (bounded).
    budget : Budget

    Returns
    -------
    params : dict
        The parameters, as format-2 JSON.
    n_features_in : object
    feature_names_in : list or None
    state_tree : dict
        The fitted state as a format-2 JSON tree.
    arrays : dict of str to ndarray
        The arrays the tree refers to.
    """
    if set(manifest) != MANIFEST_KEYS:
        raise Refused(
            "manifest.json (format 1) has unexpected or missing keys "
            f"{sorted(set(manifest) ^ MANIFEST_KEYS)}."
        )
    arrays = read_arrays(archive, budget, "state.npz")
    decode = _Decoder(arrays, manifest["object_arrays"])
    params = _convert_params(manifest, decode)
    state = decode(manifest["state"], "state")
    if type(state) is not dict:
        raise Refused("manifest.json: state should be an object.")
    try:
        binarizer = state["_label_binarizer"]["state"]
        labels = LabelEncoding(binarizer["classes_"], binarizer["y_type_"])
        weights = Weights(tuple(state["_params"]), tuple(state["_buffers"]))
        solver = state["_solver_state"]
        if solver is not None and set(solver) == {"velocities"}:
            solver = SGDState(_flat(solver["velocities"], "velocities"))
        elif solver is not None and set(solver) == {"t", "m", "v"}:
            solver = AdamState(
                _plain(solver["t"]), _flat(solver["m"], "m"), _flat(solver["v"], "v")
            )
        elif solver is not None:
            raise Refused(f"manifest.json: an unknown solver state {sorted(solver)}.")
        loop = state["_loop"]
        stochastic = params.get("solver") != "lbfgs"
        losses = tuple(_plain(v) for v in state["loss_curve_"])
        best_loss = _plain(loop["best_loss"])
        if not stochastic:  # as FittedState.after_lbfgs derives it
            best_loss = min(losses, default=_plain(state["loss_"]))
        progress = Progress(
            learning_rate=_plain(loop["learning_rate"]),
            best_loss=best_loss,
            best_score=_plain(loop["best_score"]),
            no_improvement=_plain(loop["no_improvement"]),
            samples_seen=_plain(loop["t"]),
        )
        rates = state["history_"].get("learning_rate") if stochastic else None
        scores = state["validation_scores_"]
        history = History(
            losses=losses,
            scores=None if scores is None else tuple(_plain(v) for v in scores),
            learning_rates=None if rates is None else tuple(map(_plain, rates)),
            n_iter=_plain(state["n_iter_"]),
            loss=_plain(state["loss_"]),
        )
        fitted = FittedState(labels, TrainingState(weights, solver, progress), history)
        tree, state_arrays = state_to_json(fitted)
        names = state.get("feature_names_in_")
        if names is not None:
            names = names.tolist() if isinstance(names, np.ndarray) else names
        n_features_in = _plain(state["n_features_in_"])
    except Refused:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Refused(
            f"manifest.json (format 1): the fitted state is incomplete or "
            f"malformed ({type(exc).__name__}: {str(exc)[:200]})."
        ) from exc
    return params, n_features_in, names, tree, state_arrays

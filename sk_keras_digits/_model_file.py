"""The model-file format: the manifest's schema, and what a fitted state may hold.

A model file stores exactly what a fit produces (see :mod:`sk_keras_digits._state`):
the parameters, ``n_features_in_`` and ``feature_names_in_``, and the
:class:`~sk_keras_digits._state.FittedState` record. The records are mapped to
JSON generically, field by field through their ``_fields`` and type
annotations, so the schema is written once, here, and follows the records:

- a record is a JSON object ``{"record": <its class name>, <field>: ...}``;
- an ``ndarray`` is ``{"array": <key>}``, its key being the dotted path of the
  field (``"training.weights.params.0"``), and its data the ``<key>.npy``
  member of ``state.npz``, declared with its dtype and shape in the manifest's
  ``"arrays"``; an array of Python objects (string labels, feature names) is
  ``{"objects": [...]}``, a JSON list;
- a float that JSON cannot hold is ``{"float": "nan"}`` (or ``"inf"``,
  ``"-inf"``); a tuple is a JSON list.

:func:`check_fitted` then accepts only what fit could have produced: the
public attributes are all derived from the record, so a file that passes
cannot describe a self-contradicting estimator.

Everything wrong raises :class:`~sk_keras_digits._archive.Refused` naming the
offending value; :func:`sk_keras_digits.load` adds the file's name.
"""

import json
import math
import types
import typing
from numbers import Integral

import numpy as np

from ._archive import Refused
from ._labels import KINDS
from ._state import (
    AdamState,
    FittedState,
    OptimizerState,
    SGDState,
)

#: Name of the file format, stored in every manifest.
FORMAT_NAME = "sk_keras_digits.model"

#: Version of the file format written by :func:`~sk_keras_digits.save`. It
#: changes whenever the layout of the file or of the fitted state changes.
FORMAT_VERSION = 2

ESTIMATOR = "sk_keras_digits.KerasDigitClassifier"

#: Keys of a format-2 manifest.
MANIFEST_KEYS = (
    "format",
    "format_version",
    "estimator",
    "versions",
    "params",
    "network",
    "callbacks",
    "n_features_in",
    "feature_names_in",
    "state",
    "arrays",
)

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
# Plain values an object array (labels, feature names) may hold.
_PLAIN = (str, int, float, bool)
# Dtype kinds an array of state.npz may have: bool, integers, floats, unicode.
_ARRAY_KINDS = "biufU"
_MT_KEY_SIZE = 624


def _is_record(cls):
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def float_to_json(value):
    value = float(value)
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


# -- the fitted state, generically ------------------------------------------------
def state_to_json(state):
    """The JSON tree of a record, and the arrays it refers to by key.

    Parameters
    ----------
    state : NamedTuple
        A :class:`~sk_keras_digits._state.FittedState` (or any record of it).

    Returns
    -------
    tree : dict
    arrays : dict of str to ndarray
    """
    arrays = {}
    return _to_json(state, type(state), "", arrays), arrays


def _to_json(value, hint, key, arrays):
    if value is None:
        return None
    if _is_record(type(value)):
        hints = typing.get_type_hints(type(value))
        node = {"record": type(value).__name__}
        for field in value._fields:
            child = f"{key}.{field}" if key else field
            node[field] = _to_json(getattr(value, field), hints[field], child, arrays)
        return node
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            items = value.tolist()
            if value.ndim != 1 or not all(type(v) in _PLAIN for v in items):
                raise TypeError(
                    f"Cannot save {key}: an object array holding values other "
                    "than str, int, float or bool."
                )
            return {
                "objects": [float_to_json(v) if type(v) is float else v for v in items]
            }
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        return [_to_json(v, None, f"{key}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (Integral, float, np.floating)):
        return int(value) if hint is int else float_to_json(value)
    raise TypeError(f"Cannot save {key}: {type(value).__name__} is not plain data.")


def _member(value, names):
    """Whether ``value`` is one of the strings ``names`` (any JSON value)."""
    return type(value) is str and value in names


def _describe(node):
    text = repr(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _float_from_json(node, key):
    if type(node) in (int, float):
        return float(node)
    if (
        type(node) is dict
        and len(node) == 1
        and _member(node.get("float"), _NON_FINITE)
    ):
        return _NON_FINITE[node["float"]]
    raise Refused(f"manifest.json: {key} should be a number, got {_describe(node)}.")


def state_from_json(tree, arrays):
    """The :class:`~sk_keras_digits._state.FittedState` a JSON tree describes.

    Parameters
    ----------
    tree : object
        The manifest's ``"state"``.
    arrays : dict of str to ndarray
        The arrays of ``state.npz``, by key; each must be referred to once, at
        the field whose path is its key.

    Returns
    -------
    state : FittedState
        Its structure and types checked; its values are checked by
        :func:`check_fitted`.
    """
    used = set()
    state = _from_json(tree, FittedState, "state", "", arrays, used)
    unused = sorted(set(arrays) - used)
    if unused:
        raise Refused(f"state.npz holds arrays {unused} that the state never uses.")
    return state


def _from_json(node, hint, where, key, arrays, used):
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if node is None:
        if type(None) in options:
            return None
        raise Refused(f"manifest.json: {where} should not be null.")
    records = {cls.__name__: cls for cls in options if _is_record(cls)}
    if records:
        record = node.get("record") if type(node) is dict else None
        if type(record) is not str or record not in records:
            raise Refused(
                f"manifest.json: {where} should be a record of type "
                f"{' or '.join(records)}, got {_describe(node)}."
            )
        cls = records[record]
        fields = set(cls._fields)
        if set(node) != fields | {"record"}:
            raise Refused(
                f"manifest.json: {where} ({cls.__name__}) should have the fields "
                f"{sorted(fields)}, got {sorted(set(node) - {'record'})}."
            )
        hints = typing.get_type_hints(cls)
        values = {}
        for field in cls._fields:
            child = f"{key}.{field}" if key else field
            values[field] = _from_json(
                node[field], hints[field], f"{where}.{field}", child, arrays, used
            )
        return cls(**values)
    (hint,) = [cls for cls in options if cls is not type(None)]
    if hint is float:
        return _float_from_json(node, where)
    if hint is int:
        if type(node) is not int:
            raise Refused(
                f"manifest.json: {where} should be an integer, got {_describe(node)}."
            )
        return node
    if hint is str:
        if type(node) is not str:
            raise Refused(
                f"manifest.json: {where} should be a string, got {_describe(node)}."
            )
        return node
    if hint is np.ndarray:
        return _array_from_json(node, where, key, arrays, used)
    if hint is tuple:
        if type(node) is not list:
            raise Refused(
                f"manifest.json: {where} should be a list, got {_describe(node)}."
            )
        items = []
        for i, item in enumerate(node):
            if type(item) is dict and "float" not in item:
                items.append(
                    _array_from_json(item, f"{where}[{i}]", f"{key}.{i}", arrays, used)
                )
            else:
                items.append(_float_from_json(item, f"{where}[{i}]"))
        return tuple(items)
    raise AssertionError(f"no JSON mapping for {hint!r}")  # pragma: no cover


def _array_from_json(node, where, key, arrays, used):
    if (
        type(node) is dict
        and set(node) == {"objects"}
        and type(node["objects"]) is list
    ):
        items = [
            _float_from_json(v, where) if type(v) is dict else v
            for v in node["objects"]
        ]
        if not all(type(v) in _PLAIN for v in items):
            raise Refused(
                f"manifest.json: {where} should hold plain values, got "
                f"{_describe(node['objects'])}."
            )
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    if type(node) is not dict or node != {"array": key}:
        raise Refused(
            f"manifest.json: {where} should be {{'array': {key!r}}}, got "
            f"{_describe(node)}."
        )
    if key not in arrays:
        raise Refused(f"manifest.json: {where} refers to array {key!r}, not declared.")
    used.add(key)
    return arrays[key]


# -- the arrays of state.npz ------------------------------------------------------
def arrays_to_json(arrays):
    """The manifest's declaration of the arrays: dtype and shape by key."""
    return {
        key: {"dtype": array.dtype.str, "shape": list(array.shape)}
        for key, array in arrays.items()
    }


def arrays_from_json(node):
    """Check the manifest's declaration of the arrays of ``state.npz``.

    Returns
    -------
    specs : dict of str to (numpy.dtype, tuple of int)
    """
    if type(node) is not dict:
        raise Refused(
            f"manifest.json: arrays should be an object, got {_describe(node)}."
        )
    specs = {}
    for key, spec in node.items():
        where = f"manifest.json: arrays[{key!r}]"
        if (
            type(spec) is not dict
            or set(spec) != {"dtype", "shape"}
            or type(spec["dtype"]) is not str
            or type(spec["shape"]) is not list
            or not all(type(n) is int and 0 <= n < 2**62 for n in spec["shape"])
            or len(spec["shape"]) > 32
        ):
            raise Refused(
                f"{where} should be {{'dtype': str, 'shape': [int >= 0, ...]}}, got "
                f"{_describe(spec)}."
            )
        try:
            dtype = np.dtype(spec["dtype"])
        except Exception:
            dtype = None
        if (
            dtype is None
            or dtype.kind not in _ARRAY_KINDS
            or not dtype.isnative
            or dtype.str != spec["dtype"]
        ):
            raise Refused(
                f"{where} declares dtype {spec['dtype']!r}: only booleans, integers, "
                "floats and unicode strings in native byte order are allowed."
            )
        specs[key] = (dtype, tuple(spec["shape"]))
    return specs


# -- parameters -------------------------------------------------------------------
def params_to_json(params):
    """The parameters (but ``network`` and ``callbacks``) as JSON.

    ``random_state`` may be None, an int or a :class:`numpy.random.RandomState`,
    stored as its Mersenne-Twister state.
    """
    return {name: _param_to_json(value, name) for name, value in params.items()}


def _param_to_json(value, name):
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return float_to_json(value)
    if type(value) is list:
        return [_param_to_json(v, name) for v in value]
    if type(value) is tuple:
        return {"tuple": [_param_to_json(v, name) for v in value]}
    if isinstance(value, np.random.RandomState):
        kind, key, pos, has_gauss, cached = value.get_state()
        return {
            "random_state": {
                "key": [int(k) for k in key],
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float_to_json(cached),
            }
        }
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"numpy": value.dtype.name, "value": _param_to_json(value.item(), name)}
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        return {"ndarray": value.dtype.name, "value": value.tolist()}
    if type(value) is dict:  # class_weight: labels may be any plain value
        return {
            "mapping": [
                [_param_to_json(k, name), _param_to_json(v, name)]
                for k, v in value.items()
            ]
        }
    if name == "solver" and hasattr(value, "get_config"):
        return {"keras_optimizer": _optimizer_to_json(value)}
    raise TypeError(
        f"Cannot save the parameter {name}={value!r}: {type(value).__name__} is not "
        "plain data. Use joblib.dump to save this estimator."
    )


def params_from_json(node, names):
    """The parameters ``names`` stored by :func:`params_to_json`, decoded.

    Their values are checked by the estimator's ``_validate_params`` and
    :func:`check_random_state_json`, by the caller.
    """
    if type(node) is not dict:
        raise Refused(
            f"manifest.json: params should be an object, got {_describe(node)}."
        )
    if set(node) != set(names):
        raise Refused(
            f"manifest.json: the parameters {sorted(set(node) ^ set(names))} are "
            "unexpected or missing."
        )
    return {name: _param_from_json(node[name], f"params[{name!r}]") for name in names}


def _param_from_json(node, where):
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        return [_param_from_json(v, where) for v in node]
    if type(node) is dict and len(node) == 1:
        tag, value = next(iter(node.items()))
        if tag == "float":
            return _float_from_json(node, where)
        if tag == "tuple" and type(value) is list:
            return tuple(_param_from_json(v, where) for v in value)
        if tag == "random_state":
            return _random_state_from_json(value, where)
        if tag == "mapping" and type(value) is list and len(value) <= _MAX_MAPPING:
            pairs = [
                (_param_from_json(k, where), _param_from_json(v, where))
                for k, v in (
                    pair if type(pair) is list and len(pair) == 2 else (None, None)
                    for pair in value
                )
            ]
            try:
                mapping = dict(pairs)
            except TypeError as exc:  # an unhashable key
                raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc
            if len(mapping) != len(pairs):
                raise Refused(f"manifest.json: {where} repeats a key.")
            return mapping
        if tag == "keras_optimizer":
            return _optimizer_from_json(value, where)
    if type(node) is dict and set(node) == {"numpy", "value"}:
        if _member(node["numpy"], _NUMPY_SCALARS) and type(node["value"]) in (
            bool,
            int,
            float,
        ):
            try:
                return np.dtype(node["numpy"]).type(node["value"])
            except (OverflowError, ValueError) as exc:
                raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc
    if type(node) is dict and set(node) == {"ndarray", "value"}:
        value = node["value"]
        if (
            _member(node["ndarray"], _NUMPY_SCALARS)
            and type(value) is list
            and len(value) <= 1000
            and all(type(v) is int for v in value)
        ):
            try:
                return np.array(value, dtype=node["ndarray"])
            except (OverflowError, ValueError) as exc:
                raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc
    raise Refused(f"manifest.json: {where} holds an unknown value {_describe(node)}.")


#: Most entries of a stored dict parameter (``class_weight``).
_MAX_MAPPING = 100_000


def _optimizer_to_json(optimizer):
    """A Keras optimizer object as its class name and plain config."""
    config = dict(optimizer.get_config())
    rate = config.get("learning_rate")
    if type(rate) is dict:  # a LearningRateSchedule, serialized by Keras
        config["learning_rate"] = {
            "class_name": rate.get("class_name"),
            "config": rate.get("config"),
        }
    node = {"class_name": type(optimizer).__name__, "config": config}
    try:
        json.dumps(node, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"Cannot save the parameter solver={optimizer!r}: its configuration "
            f"is not plain data ({exc}). Use joblib.dump to save this estimator."
        ) from exc
    if not _builtin_keras_class("optimizers", node["class_name"]) or (
        type(config["learning_rate"]) is dict
        and not _builtin_keras_class(
            "optimizers.schedules", config["learning_rate"]["class_name"]
        )
    ):
        raise TypeError(
            f"Cannot save the parameter solver={optimizer!r}: a model file holds "
            "Keras' built-in optimizers and learning-rate schedules only (load "
            "imports no code). Use joblib.dump to save this estimator."
        )
    return node


def _builtin_keras_class(namespace, name):
    """Keras' public class ``keras.<namespace>.<name>``, or None."""
    import keras

    module = keras
    for part in namespace.split("."):
        module = getattr(module, part)
    cls = getattr(module, name, None) if type(name) is str else None
    base = keras.optimizers.Optimizer
    if namespace.endswith("schedules"):
        base = keras.optimizers.schedules.LearningRateSchedule
    if (
        isinstance(cls, type)
        and issubclass(cls, base)
        and cls.__module__.startswith("keras.")
    ):
        return cls
    return None


def _optimizer_from_json(node, where):
    """The optimizer object :func:`_optimizer_to_json` described.

    Only Keras' built-in optimizer and schedule classes, by their public name,
    are rebuilt: nothing is imported by a name the file gives.
    """
    if type(node) is not dict or set(node) != {"class_name", "config"}:
        raise Refused(f"manifest.json: {where} holds an invalid optimizer.")
    cls = _builtin_keras_class("optimizers", node["class_name"])
    config = node["config"]
    if cls is None or type(config) is not dict:
        raise Refused(
            f"manifest.json: {where} names {_describe(node['class_name'])}, which "
            "is not one of Keras' built-in optimizers."
        )
    config = dict(config)
    _check_optimizer_config(cls, config, where)
    rate = config.get("learning_rate")
    try:
        if type(rate) is dict:
            schedule = _builtin_keras_class(
                "optimizers.schedules", rate.get("class_name")
            )
            if schedule is None or type(rate.get("config")) is not dict:
                raise ValueError(
                    f"the learning-rate schedule {_describe(rate)} is not one of "
                    "Keras' built-in schedules"
                )
            config["learning_rate"] = schedule.from_config(rate["config"])
        optimizer = cls.from_config(config)
        # The checks fit makes of an optimizer object (use_ema, ...).
        from ._solvers import KerasOptimizer

        KerasOptimizer(optimizer)
        return optimizer
    except Exception as exc:
        raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc


def _check_optimizer_config(cls, config, where):
    """Refuse settings a fit could not have trained with.

    Unknown names; anything but a finite number where Keras' default is a
    number, and anything but a boolean where it is a boolean.
    """
    try:
        defaults = cls().get_config()
    except Exception as exc:  # e.g. a wrapper that needs an inner optimizer
        raise Refused(
            f"manifest.json: {where} names {cls.__name__}, which a model file "
            f"cannot rebuild ({exc})."
        ) from exc
    for name, value in config.items():
        if name not in defaults:
            raise Refused(
                f"manifest.json: {where} sets {_describe(name)}, which "
                f"{cls.__name__} does not take."
            )
        default = defaults[name]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if name == "learning_rate" and type(value) is dict:
            continue  # a schedule, checked when it is rebuilt
        if numeric and (type(value) not in (int, float) or not math.isfinite(value)):
            raise Refused(
                f"manifest.json: {where}.{name} should be a finite number, got "
                f"{_describe(value)}."
            )
        if isinstance(default, bool) and type(value) is not bool:
            raise Refused(
                f"manifest.json: {where}.{name} should be true or false, got "
                f"{_describe(value)}."
            )


_NUMPY_SCALARS = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
}


def _random_state_from_json(node, where):
    """A RandomState from its stored state, every field bounds-checked.

    NumPy's ``set_state`` does not check the position in the key, and a
    position past its end makes the next draw read out of bounds.
    """
    fields = {"key", "pos", "has_gauss", "cached_gaussian"}
    if type(node) is not dict or set(node) != fields:
        raise Refused(
            f"manifest.json: {where} should be a RandomState's state with the "
            f"fields {sorted(fields)}, got {_describe(node)}."
        )
    key, pos, has_gauss = node["key"], node["pos"], node["has_gauss"]
    cached = _float_from_json(node["cached_gaussian"], f"{where}.cached_gaussian")
    problems = []
    if (
        type(key) is not list
        or len(key) != _MT_KEY_SIZE
        or not all(type(k) is int and 0 <= k < 2**32 for k in key)
    ):
        problems.append(f"key should be {_MT_KEY_SIZE} integers in [0, 2**32)")
    if type(pos) is not int or not 0 <= pos <= _MT_KEY_SIZE:
        problems.append(f"pos should be an integer in [0, {_MT_KEY_SIZE}], got {pos!r}")
    if type(has_gauss) is not int or has_gauss not in (0, 1):
        problems.append(f"has_gauss should be 0 or 1, got {has_gauss!r}")
    if not math.isfinite(cached):
        problems.append(f"cached_gaussian should be finite, got {cached!r}")
    if problems:
        raise Refused(
            f"manifest.json: {where} is not a valid RandomState state: "
            f"{'; '.join(problems)}."
        )
    random_state = np.random.RandomState()
    random_state.set_state(
        ("MT19937", np.array(key, dtype=np.uint32), pos, has_gauss, cached)
    )
    return random_state


# -- what fit could have produced -------------------------------------------------
def check_fitted(params, n_features_in, feature_names_in, state, custom):
    """Refuse a fitted state that no fit with ``params`` could have produced.

    Parameters
    ----------
    params : dict
        The estimator's parameters, already validated.
    n_features_in : int
    feature_names_in : ndarray or None
    state : FittedState
    custom : bool
        Whether the network is a custom one (its weights are checked against
        the architecture by the caller).
    """
    if type(n_features_in) is not int or n_features_in < 1:
        raise Refused(
            f"n_features_in should be a positive integer, got "
            f"{_describe(n_features_in)}."
        )
    if feature_names_in is not None:
        if len(feature_names_in) != n_features_in or not all(
            type(v) is str for v in feature_names_in
        ):
            raise Refused(
                f"feature_names_in should be {n_features_in} strings, "
                f"got {_describe(feature_names_in.tolist())}."
            )
    _check_labels(state.labels)
    try:  # the check fit makes
        state.labels.check_class_weight(params.get("class_weight"))
    except ValueError as exc:
        raise Refused(
            f"params['class_weight'] does not fit the classes: {exc}"
        ) from exc
    _check_weights(params, n_features_in, state, custom)
    _check_solver(params, state)
    _check_progress(state.training.progress)
    _check_history(params, state.history)


def _check_labels(labels):
    kind, classes = labels.kind, labels.classes
    if kind not in KINDS:
        raise Refused(f"state.labels.kind should be one of {KINDS}, got {kind!r}.")
    where = "state.labels.classes"
    if classes.ndim != 1:
        raise Refused(f"{where} should be 1-D, got shape {classes.shape}.")
    if classes.dtype.hasobject:
        types_ = {type(v) for v in classes}
        if len(types_) > 1 or types_ - {str, int, float}:
            raise Refused(
                f"{where} should hold labels of one type (str, int or float), got "
                f"{sorted(t.__name__ for t in types_)}."
            )
    if classes.dtype.kind == "f" or (
        classes.dtype.hasobject and len(classes) and type(classes[0]) is float
    ):
        if not np.isfinite(classes.astype(float)).all():
            raise Refused(
                f"{where} should be finite, got {_describe(classes.tolist())}."
            )
    if not np.array_equal(np.unique(classes), classes):
        raise Refused(
            f"{where} should be sorted and unique, got {_describe(classes.tolist())}."
        )
    n = len(classes)
    if kind == "binary" and n not in (1, 2):
        raise Refused(
            f"{where} should hold 1 or 2 classes for binary targets, got {n}."
        )
    if kind == "multiclass" and n < 3:
        raise Refused(
            f"{where} should hold 3 classes or more for multiclass targets, got {n}."
        )
    if kind == "multilabel-indicator" and (
        n < 2
        or classes.dtype.kind not in "iu"
        or not np.array_equal(classes, np.arange(n))
    ):
        raise Refused(
            f"{where} should be the label indices 0 .. n_labels - 1 (n_labels >= 2) "
            f"for multilabel targets, got {_describe(classes.tolist())}."
        )


def _check_weights(params, n_features_in, state, custom):
    weights = state.weights
    where = "state.training.weights"
    arrays = [*weights.params, *weights.buffers]
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise Refused(f"{where} should hold arrays only.")
    if not weights.params:
        raise Refused(f"{where}.params should not be empty.")
    dtypes = {p.dtype.name for p in weights.params}
    if len(dtypes) != 1 or not dtypes <= {"float32", "float64"}:
        raise Refused(
            f"{where}.params should all be float32 or all float64, got "
            f"{sorted(dtypes)}."
        )
    for i, p in enumerate(weights.params):
        if not np.isfinite(p).all():
            raise Refused(f"{where}.params[{i}] holds non-finite values.")
    for i, b in enumerate(weights.buffers):
        if b.dtype.kind not in "biuf" or (
            b.dtype.kind == "f" and not np.isfinite(b).all()
        ):
            raise Refused(
                f"{where}.buffers[{i}] should hold finite numbers, got dtype {b.dtype}."
            )
    if custom:
        return
    n_outputs = state.labels.n_outputs
    shapes = [p.shape for p in weights.params]
    hidden = list(params["hidden_layer_sizes"])
    expected = []
    units = [n_features_in, *hidden, n_outputs]
    for fan_in, fan_out in zip(units[:-1], units[1:], strict=True):
        expected += [(fan_in, fan_out), (fan_out,)]
    if shapes != expected or weights.buffers:
        raise Refused(
            f"{where} should hold kernels and biases of shapes {expected} (for "
            f"n_features_in={n_features_in}, hidden_layer_sizes={hidden} and "
            f"{n_outputs} output(s)) and no buffers, got {shapes} and "
            f"{len(weights.buffers)} buffer(s)."
        )


def _check_solver(params, state):
    solver = state.training.solver
    if solver is None:
        return
    if isinstance(solver, OptimizerState):
        _check_optimizer_state(params, state)
        return
    params = state.weights.params
    size, dtype = sum(p.size for p in params), params[0].dtype
    vectors = (
        {"velocity": solver.velocity}
        if isinstance(solver, SGDState)
        else {
            "m": solver.m,
            "v": solver.v,
        }
    )
    for name, vector in vectors.items():
        where = f"state.training.solver.{name}"
        if (
            not isinstance(vector, np.ndarray)
            or vector.shape != (size,)
            or vector.dtype != dtype
        ):
            raise Refused(
                f"{where} should be an array of shape ({size},) and dtype {dtype}, "
                f"got {_describe(vector)}."
            )
        if not np.isfinite(vector).all():
            raise Refused(f"{where} holds non-finite values.")
    if isinstance(solver, AdamState):
        if not (math.isfinite(solver.step) and solver.step >= 0):
            raise Refused(
                f"state.training.solver.step should be a finite number >= 0, got "
                f"{solver.step!r}."
            )
        if (solver.v < 0).any():
            raise Refused("state.training.solver.v holds negative second moments.")


def _check_optimizer_state(params, state):
    """A Keras optimizer's variables: finite numbers, laid out as its own."""
    where = "state.training.solver.variables"
    variables = state.training.solver.variables
    for i, v in enumerate(variables):
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "iuf":
            raise Refused(
                f"{where}[{i}] should be a numeric array, got {_describe(v)}."
            )
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise Refused(f"{where}[{i}] holds non-finite values.")
        if v.dtype.kind in "iu" and (v < 0).any():
            raise Refused(f"{where}[{i}] holds a negative count.")
    optimizer = params["solver"]
    if isinstance(optimizer, str):
        # A solver changed by set_params after the fit: partial_fit refuses
        # this state, fit starts afresh; nothing reads its layout.
        return
    from ._solvers import KerasOptimizer

    expected = KerasOptimizer(optimizer).initial_state(state.weights).variables
    layout = [(v.shape, v.dtype.str) for v in variables]
    wanted = [(v.shape, v.dtype.str) for v in expected]
    if layout != wanted:
        raise Refused(
            f"{where} should be laid out as {type(optimizer).__name__}'s variables "
            f"{wanted} for these weights, got {layout}."
        )


def _check_progress(progress):
    where = "state.training.progress"
    checks = [
        (
            "learning_rate",
            math.isfinite(progress.learning_rate) and progress.learning_rate > 0,
            "a finite number > 0",
        ),
        ("best_loss", progress.best_loss >= 0, "a number >= 0 or inf"),
        (
            "best_score",
            progress.best_score == -math.inf or 0 <= progress.best_score <= 1,
            "-inf or a number in [0, 1]",
        ),
        ("no_improvement", progress.no_improvement >= 0, "an integer >= 0"),
        (
            "samples_seen",
            math.isfinite(progress.samples_seen) and progress.samples_seen >= 0,
            "a finite number >= 0",
        ),
        (
            "best_weights",
            progress.best_weights is None,
            "null (it is set only during a fit)",
        ),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise Refused(
                f"{where}.{name} should be {expected}, got {getattr(progress, name)!r}."
            )


def _check_history(params, history):
    where = "state.history"
    losses = history.losses
    if not all(type(v) is float and math.isfinite(v) and v >= 0 for v in losses):
        raise Refused(
            f"{where}.losses should be finite numbers >= 0, got {_describe(losses)}."
        )
    stochastic = params["solver"] != "lbfgs"
    if (history.scores is not None) != (params["early_stopping"] and stochastic):
        raise Refused(
            f"{where}.scores should be a list with early stopping (a stochastic "
            f"solver and early_stopping=True) and null otherwise, got "
            f"{_describe(history.scores)} with solver={params['solver']!r} and "
            f"early_stopping={params['early_stopping']!r}."
        )
    if history.scores is not None and (
        len(history.scores) != len(losses)
        or not all(type(v) is float and 0 <= v <= 1 for v in history.scores)
    ):
        raise Refused(
            f"{where}.scores should be {len(losses)} numbers in [0, 1] (one per "
            f"epoch), got {_describe(history.scores)}."
        )
    rates = history.learning_rates
    if (rates is None) == stochastic:
        raise Refused(
            f"{where}.learning_rates should be a list with a stochastic solver and "
            f"null with lbfgs, got {_describe(rates)} with solver={params['solver']!r}."
        )
    if rates is not None and (
        len(rates) > len(losses)
        or not all(type(v) is float and math.isfinite(v) and v > 0 for v in rates)
    ):
        raise Refused(
            f"{where}.learning_rates should be at most {len(losses)} finite numbers "
            f"> 0, got {_describe(rates)}."
        )
    if not 0 <= history.n_iter <= len(losses):
        raise Refused(
            f"{where}.n_iter should be in [0, {len(losses)}] (the number of "
            f"losses), got {history.n_iter}."
        )
    if not (history.loss >= 0 and math.isfinite(history.loss)):
        raise Refused(
            f"{where}.loss should be a finite number >= 0, got {history.loss!r}."
        )

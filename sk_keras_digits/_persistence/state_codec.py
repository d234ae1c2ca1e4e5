"""The fitted-state codec: the :class:`~sk_keras_digits._state.FittedState` as JSON.

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

Decoding checks the structure and types; the values are checked by
:mod:`.invariants`. Everything wrong raises :class:`~.errors.Refused` naming
the offending value; :func:`sk_keras_digits.load` adds the file's name.
"""

import math
import types
import typing
from numbers import Integral

import numpy as np

from .._messages import short_repr
from .._state import FittedState
from .errors import Refused
from .json_values import float_from_json, float_to_json

# Plain values an object array (labels, feature names) may hold.
_PLAIN = (str, int, float, bool)
# Dtype kinds an array of state.npz may have: bool, integers, floats, unicode.
_ARRAY_KINDS = "biufU"


def _is_record(cls):
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


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
        :func:`~.invariants.check_fitted`.
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
                f"{' or '.join(records)}, got {short_repr(node)}."
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
        return float_from_json(node, where)
    if hint is int:
        if type(node) is not int:
            raise Refused(
                f"manifest.json: {where} should be an integer, got {short_repr(node)}."
            )
        return node
    if hint is str:
        if type(node) is not str:
            raise Refused(
                f"manifest.json: {where} should be a string, got {short_repr(node)}."
            )
        return node
    if hint is np.ndarray:
        return _array_from_json(node, where, key, arrays, used)
    if hint is tuple:
        if type(node) is not list:
            raise Refused(
                f"manifest.json: {where} should be a list, got {short_repr(node)}."
            )
        items = []
        for i, item in enumerate(node):
            if type(item) is dict and "float" not in item:
                items.append(
                    _array_from_json(item, f"{where}[{i}]", f"{key}.{i}", arrays, used)
                )
            else:
                items.append(float_from_json(item, f"{where}[{i}]"))
        return tuple(items)
    raise AssertionError(f"no JSON mapping for {hint!r}")  # pragma: no cover


def _array_from_json(node, where, key, arrays, used):
    if (
        type(node) is dict
        and set(node) == {"objects"}
        and type(node["objects"]) is list
    ):
        items = [
            float_from_json(v, where) if type(v) is dict else v for v in node["objects"]
        ]
        if not all(type(v) in _PLAIN for v in items):
            raise Refused(
                f"manifest.json: {where} should hold plain values, got "
                f"{short_repr(node['objects'])}."
            )
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    if type(node) is not dict or node != {"array": key}:
        raise Refused(
            f"manifest.json: {where} should be {{'array': {key!r}}}, got "
            f"{short_repr(node)}."
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
            f"manifest.json: arrays should be an object, got {short_repr(node)}."
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
                f"{short_repr(spec)}."
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
        if dtype.itemsize == 0:
            raise Refused(
                f"{where} declares dtype {spec['dtype']!r}, of 0 bytes per item; "
                "a string dtype of at least one character is expected."
            )
        # NumPy refuses an array whose nonzero dimensions overflow its index
        # type, even when another dimension is 0.
        if math.prod(max(n, 1) for n in spec["shape"]) * dtype.itemsize >= 2**62:
            raise Refused(
                f"{where} declares shape {short_repr(spec['shape'])}, larger than any "
                "array can be."
            )
        specs[key] = (dtype, tuple(spec["shape"]))
    return specs

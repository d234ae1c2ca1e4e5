"""Checking a ``skops`` step's ``schema.json`` before ``skops`` reads it.

``skops`` stores an object as a tree of node states in ``schema.json`` (each
with ``__class__``, ``__module__``, ``__loader__`` and ``__id__``) and its
arrays as ``.npy`` members. :func:`check_schema` walks that tree once, without
recursion, and accepts only what a pipeline step may hold:

- at the root, one of the step types of
  :func:`~.pipeline_file.trusted_steps`;
- below it, dicts with string keys, lists, tuples, JSON primitives, NumPy
  arrays (``.npy`` members or object arrays of primitives), NumPy scalars,
  dtypes and ``RandomState`` objects, and the types of :data:`NESTED_STEPS`
  exactly where scikit-learn puts them; nothing else, at any depth (no
  function, no ufunc, no other estimator);
- every node carries a positive integer ``__id__``; an ``__id__`` seen twice
  comes with the same state (``skops`` builds the first and reuses it), so no
  object can be aliased into another place, and each ``.npy`` member is
  referenced under one ``__id__`` only, so it is read once.

Every problem raises :class:`~.errors.Refused`.
"""

import functools
import importlib
import re

import numpy as np

from .._messages import short_repr
from .errors import Refused
from .skops_internals import current_protocol, node_class

#: The objects a trusted step holds inside itself, by (step type, attribute):
#: array-only transformers that scikit-learn fits as part of the step.
NESTED_STEPS = {
    ("sklearn.impute._base.SimpleImputer", "indicator_"): (
        "sklearn.impute._base.MissingIndicator"
    ),
    ("sklearn.preprocessing._data.PowerTransformer", "_scaler"): (
        "sklearn.preprocessing._data.StandardScaler"
    ),
}

#: Most nodes from the root to a leaf (a fitted step needs fewer than 10).
MAX_DEPTH = 24

_SCALARS = (
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
)
_ARRAYS = {"numpy.ndarray"} | {f"numpy.{t.__name__}" for t in _SCALARS}
_PRIMITIVES = {f"builtins.{name}" for name in ("str", "int", "float", "bool")}
_MEMBER_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}\.npy")

_COMMON = {"__class__", "__module__", "__loader__", "__id__"}
# Node kind -> (skops loader, allowed types, keys besides _COMMON).
_KINDS = {
    "dict": ("DictNode", {"builtins.dict"}, {"content", "key_types"}),
    "list": ("ListNode", {"builtins.list"}, {"content"}),
    "tuple": ("TupleNode", {"builtins.tuple"}, {"content"}),
    "json": ("JsonNode", _PRIMITIVES | {"builtins.NoneType"}, {"content", "is_json"}),
    "key_types": ("ListNode", {"builtins.list"}, {"content"}),
    "type": ("TypeNode", {"builtins.str"}, set()),
    "dtype": ("DTypeNode", {"numpy.dtype"}, {"content"}),
    "array": ("NdArrayNode", _ARRAYS, {"type", "file"}),
    "object_array": ("NdArrayNode", {"numpy.ndarray"}, {"type", "content", "shape"}),
    "random_state": (
        "RandomStateNode",
        {"numpy.random.mtrand.RandomState"},
        {"content"},
    ),
    "step": ("ObjectNode", set(), {"content"}),
}
_LOADERS = {loader for loader, _, _ in _KINDS.values()}


def node_classes(protocol):
    """The ``skops`` node class of each loader the walk accepts, for ``protocol``.

    A file of an older protocol is accepted only where ``skops`` reads each of
    these loaders as in its current protocol.

    Returns
    -------
    classes : dict of str to type
    """
    current_version = current_protocol()
    classes = {}
    for loader in _LOADERS:
        current = node_class(loader, current_version)
        if node_class(loader, protocol) not in (None, current):
            raise Refused(
                f"schema.json is in skops protocol {protocol}, which stores "
                f"{loader} differently; protocol {current_version} is expected."
            )
        classes[loader] = current
    return classes


def _where(path):
    return "/".join(map(str, path))[-120:] or "the root"


def _refuse(path, problem):
    raise Refused(f"schema.json at {_where(path)}: {problem}")


def check_schema(schema, steps, members):
    """Check a step's parsed ``schema.json`` against what a step may hold.

    Parameters
    ----------
    schema : object
        The parsed ``schema.json``.
    steps : dict of str to type
        The trusted step types, by qualified name.
    members : list of str
        The ``.npy`` members of the step's archive; each must be referenced.

    Returns
    -------
    declared : str
        The step's qualified type name.
    types : set of str
        The qualified type names the schema holds (for ``skops``' audit).
    """
    if type(schema) is not dict:
        _refuse([], f"a node state (an object) is expected, got {short_repr(schema)}.")
    protocol = schema.get("protocol")
    if type(protocol) is not int:
        _refuse([], f"protocol should be an integer, got {short_repr(protocol)}.")
    node_classes(protocol)
    declared = f"{schema.get('__module__')}.{schema.get('__class__')}"[:200]
    if declared not in steps:
        _refuse(
            [],
            f"the step is a {declared[:100]}, not one of the trusted step types "
            "(sk_keras_digits._persistence.pipeline_file.trusted_steps()).",
        )
    seen, files, types = {}, {}, set()
    # (state, path, kind, allowed types, owning step); walked without recursion.
    stack = [(schema, [], "step", {declared}, None)]
    while stack:
        state, path, kind, allowed, owner = stack.pop()
        if len(path) > MAX_DEPTH:
            _refuse(path, f"nested deeper than {MAX_DEPTH} levels.")
        if type(state) is not dict:
            _refuse(path, f"a node state is expected, got {short_repr(state)}.")
        node_id = state.get("__id__")
        if type(node_id) is not int or node_id < 1:
            _refuse(
                path, f"__id__ should be a positive integer, got {short_repr(node_id)}."
            )
        if kind == "value":
            kind = _value_kind(state, path)
        name = f"{state.get('__module__')}.{state.get('__class__')}"[:200]
        loader = state.get("__loader__")
        expected_loader, allowed_types, keys = _KINDS[kind]
        allowed = allowed or allowed_types
        keys = keys | _COMMON | ({"protocol", "_skops_version"} if not path else set())
        if name not in allowed or loader != expected_loader:
            _refuse(
                path,
                f"{name} ({short_repr(loader)}) is not allowed here; expected "
                f"{sorted(allowed)[:6]} ({expected_loader}).",
            )
        if set(state) != keys:
            _refuse(path, f"{name} has keys {sorted(state)[:8]}, not {sorted(keys)}.")
        types.add(name)
        if node_id in seen:
            first, first_kind = seen[node_id]
            if state != first and not (kind == first_kind == "dtype"):
                _refuse(path, f"__id__ {node_id} names two different objects.")
        else:
            seen[node_id] = state, kind
        stack.extend(_children(state, path, kind, owner, files, members))
    unused = sorted(set(members) - set(files))
    if unused:
        raise Refused(f"the members {unused[:5]} are referenced by no array.")
    return declared, types


def _value_kind(state, path):
    """The kind of a node found where any value may be."""
    loader = state.get("__loader__")
    if loader == "NdArrayNode":
        return "object_array" if state.get("type") == "json" else "array"
    kind = {
        "DictNode": "dict",
        "ListNode": "list",
        "TupleNode": "tuple",
        "JsonNode": "json",
        "DTypeNode": "dtype",
        "RandomStateNode": "random_state",
    }.get(loader if type(loader) is str else None)
    if kind is None:
        module, cls = state.get("__module__"), state.get("__class__")
        _refuse(
            path,
            f"{str(module)[:60]}.{str(cls)[:60]} ({short_repr(loader)}) is not allowed "
            "inside a step (arrays, numbers, strings and containers only).",
        )
    return kind


def _children(state, path, kind, owner, files, members):
    """The child states of a checked node: (state, path, kind, allowed, owner)."""
    content = state.get("content")
    if kind == "step":
        name = f"{state['__module__']}.{state['__class__']}"
        return [(content, [*path, "content"], "dict", None, name)]
    if kind == "dict":
        if type(content) is not dict:
            _refuse(path, f"content should be an object, got {short_repr(content)}.")
        key_types = state["key_types"]
        if type(key_types) is not dict or type(key_types.get("content")) is not list:
            _refuse(path, "key_types should be a list of types.")
        if len(key_types["content"]) != len(content):
            _refuse(path, "key_types should have one type per key.")
        children = [(key_types, [*path, "key_types"], "key_types", None, None)]
        shadowed = owner is not None and _class_attributes(owner)
        for key, value in content.items():
            if shadowed and key in shadowed:
                _refuse(
                    [*path, key],
                    f"the step's state sets {key[:60]!r}, which would hide its "
                    f"class's attribute of that name.",
                )
            nested = NESTED_STEPS.get((owner, key))
            is_json = type(value) is dict and value.get("__loader__") == "JsonNode"
            if nested and not is_json:  # (None when the step has none)
                children.append((value, [*path, key], "step", {nested}, None))
            else:
                children.append((value, [*path, key], "value", None, None))
        return children
    if kind in ("list", "tuple", "key_types"):
        if type(content) is not list:
            _refuse(path, f"content should be a list, got {short_repr(content)}.")
        child = "type" if kind == "key_types" else "value"
        return [(v, [*path, i], child, None, None) for i, v in enumerate(content)]
    if kind == "json":
        if type(content) is not str or state["is_json"] is not True:
            _refuse(path, "content should be a JSON string, with is_json true.")
        return []
    if kind == "random_state":
        return [(content, [*path, "content"], "dict", None, None)]
    if kind == "dtype":
        return [(content, [*path, "content"], "array", {"numpy.ndarray"}, None)]
    if kind == "array":
        file = state["file"]
        if state["type"] != "numpy" or type(file) is not str or file not in members:
            _refuse(path, f"file {short_repr(file)} is not an .npy member of the step.")
        if files.setdefault(file, state["__id__"]) != state["__id__"]:
            _refuse(path, f"the member {file!r} is referenced by several arrays.")
        return []
    if kind == "object_array":
        if type(content) is not list:
            _refuse(path, f"content should be a list, got {short_repr(content)}.")
        shape = (state["shape"], [*path, "shape"], "tuple", None, None)
        return [shape] + [
            (v, [*path, i], "value", None, None) for i, v in enumerate(content)
        ]
    return []  # a type


@functools.cache
def _class_attributes(qualified):
    """The attribute names of the step type ``qualified`` (its methods,
    properties and class variables), which no instance state may hide.

    Only the names of trusted step types and :data:`NESTED_STEPS` reach here
    (checked before the walk goes into a step's state).
    """
    module, _, name = qualified.rpartition(".")
    return frozenset(dir(getattr(importlib.import_module(module), name)))


def is_member_name(name):
    """Whether ``name`` may be an ``.npy`` member of a ``skops`` step."""
    return bool(_MEMBER_NAME.fullmatch(name))

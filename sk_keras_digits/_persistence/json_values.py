"""Plain JSON values of a manifest: strict parsing, non-finite floats.

A manifest is strict JSON (no ``NaN`` or ``Infinity`` literals, no repeated
key in an object, at most :data:`MAX_DEPTH` levels of nesting); a float that
JSON cannot hold is written ``{"float": "nan"}`` (or ``"inf"``, ``"-inf"``).
"""

import json
import math

from .._messages import short_repr
from .errors import Refused

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def is_one_of(value, names):
    """Whether ``value`` is one of the strings ``names`` (any JSON value)."""
    return type(value) is str and value in names


def float_to_json(value):
    """A float as JSON: itself when finite, else ``{"float": "nan"}`` and so on."""
    value = float(value)
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def float_from_json(node, key):
    """The float :func:`float_to_json` wrote, ``key`` naming it in messages."""
    if type(node) in (int, float):
        return float(node)
    if (
        type(node) is dict
        and len(node) == 1
        and is_one_of(node.get("float"), NON_FINITE)
    ):
        return NON_FINITE[node["float"]]
    raise Refused(f"manifest.json: {key} should be a number, got {short_repr(node)}.")


#: Most levels of arrays and objects a value nests (a model file's deepest,
#: a custom network's Keras configuration, needs a few tens).
MAX_DEPTH = 100


def _refuse_constant(name):
    raise ValueError(f"{name} is not strict JSON")


def _unique_keys(pairs):
    """An object's dict, refusing a repeated key (readers differ on which wins)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"the key {repeated[:80]!r} appears more than once")
    return value


def _check_depth(value):
    """Refuse a value nested deeper than :data:`MAX_DEPTH` (walked without
    recursion, so that no reader of it recurses past Python's limit)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(data, what, limit=200, utf8=True):
    """Parse strict JSON ``data`` (bytes), refusing ``NaN`` and ``Infinity``.

    An object that repeats a key, and a value nested deeper than
    :data:`MAX_DEPTH`, are refused too.

    Parameters
    ----------
    data : bytes
    what : str
        How to call the data in messages.
    limit : int, default=200
        Most characters of the parser's message quoted.
    utf8 : bool, default=True
        Decode as UTF-8; when False, as :func:`json.loads` detects (UTF-8,
        -16 or -32), as ``skops`` reads its own ``schema.json``.

    Returns
    -------
    value : object
    """
    try:
        text = data.decode("utf-8") if utf8 else data
        value = json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
        _check_depth(value)
        return value
    except (ValueError, RecursionError) as exc:
        problem = str(exc)[:limit] or type(exc).__name__
        raise Refused(f"{what} is not valid JSON ({problem}).") from exc

"""Plain JSON values of a manifest: strict parsing, non-finite floats, messages.

A manifest is strict JSON (no ``NaN`` or ``Infinity`` literals); a float that
JSON cannot hold is written ``{"float": "nan"}`` (or ``"inf"``, ``"-inf"``).
"""

import json
import math

from .errors import Refused

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def describe(node):
    """A value for a message: its ``repr``, at most 80 characters."""
    text = repr(node)
    return text if len(text) <= 80 else text[:77] + "..."


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
    raise Refused(f"manifest.json: {key} should be a number, got {describe(node)}.")


def _refuse_constant(name):
    raise ValueError(f"{name} is not strict JSON")


def loads(data, what, limit=200, utf8=True):
    """Parse strict JSON ``data`` (bytes), refusing ``NaN`` and ``Infinity``.

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
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        problem = str(exc)[:limit] or type(exc).__name__
        raise Refused(f"{what} is not valid JSON ({problem}).") from exc

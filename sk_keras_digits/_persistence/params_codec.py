"""The parameter codec: an estimator's parameters as JSON, and back.

Parameters are plain values (None, booleans, numbers, strings, lists), tuples
(``{"tuple": [...]}``), NumPy scalars and integer arrays, ``class_weight``
mappings, a :class:`numpy.random.RandomState` (its Mersenne-Twister state,
every field bounds-checked) and Keras' built-in optimizers (their class name
and plain config; nothing is imported by a name the file gives). ``network``
and ``callbacks`` are code, which a file does not hold.
"""

import json
import math

import numpy as np

from .._backends import import_keras
from .._messages import short_repr
from .errors import Refused
from .json_values import float_from_json, float_to_json, is_one_of

_MT_KEY_SIZE = 624


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

    A RandomState's stored state is bounds-checked here; the values are
    validated by the estimator as fit validates them, when the caller
    restores it (``_from_fitted_record``).
    """
    if type(node) is not dict:
        raise Refused(
            f"manifest.json: params should be an object, got {short_repr(node)}."
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
            return float_from_json(node, where)
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
        if is_one_of(node["numpy"], NUMPY_SCALARS) and type(node["value"]) in (
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
            is_one_of(node["ndarray"], NUMPY_SCALARS)
            and type(value) is list
            and len(value) <= 1000
            and all(type(v) is int for v in value)
        ):
            try:
                return np.array(value, dtype=node["ndarray"])
            except (OverflowError, ValueError) as exc:
                raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc
    raise Refused(f"manifest.json: {where} holds an unknown value {short_repr(node)}.")


#: Most entries of a stored dict parameter (``class_weight``).
_MAX_MAPPING = 100_000


def _optimizer_to_json(optimizer):
    """A Keras optimizer object as its class name and plain config."""
    from .._fixes import serialization_without_tensorflow

    with serialization_without_tensorflow():
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
    keras = import_keras()

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
            f"manifest.json: {where} names {short_repr(node['class_name'])}, which "
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
                    f"the learning-rate schedule {short_repr(rate)} is not one of "
                    "Keras' built-in schedules"
                )
            config["learning_rate"] = schedule.from_config(rate["config"])
        optimizer = cls.from_config(config)
        # The checks fit makes of an optimizer object (use_ema, ...).
        from .._keras_optimizer import KerasOptimizer

        KerasOptimizer(optimizer)
        return optimizer
    except Exception as exc:
        raise Refused(f"manifest.json: {where} is invalid ({exc}).") from exc


def _check_optimizer_config(cls, config, where):
    """Refuse settings a fit could not have trained with.

    Unknown names, and the settings that a ``solver`` given to ``fit`` is
    refused for (:func:`~sk_keras_digits._optimizer_checks.check_settings`):
    anything but a finite number where Keras' default is a number, but a
    boolean where it is a boolean, and numbers out of their range.
    """
    from .._keras_optimizer import default_config
    from .._optimizer_checks import check_settings

    defaults = default_config(cls)
    if not defaults:
        raise Refused(
            f"manifest.json: {where} names {cls.__name__}, which a model file "
            "cannot rebuild (it takes required arguments)."
        )
    for name in config:
        if name not in defaults:
            raise Refused(
                f"manifest.json: {where} sets {short_repr(name)}, which "
                f"{cls.__name__} does not take."
            )
    # A schedule is checked once rebuilt (only Keras' own are).
    settings = {
        k: v
        for k, v in config.items()
        if not (k == "learning_rate" and type(v) is dict)
    }
    try:
        check_settings(settings, defaults)
    except ValueError as exc:
        raise Refused(f"manifest.json: {where} has {exc}.") from None


#: The NumPy scalar types a parameter may hold, by name.
NUMPY_SCALARS = {
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


def random_state_problems(pos, has_gauss, cached_gaussian):
    """What is wrong with a RandomState's position, Gaussian flag and cached
    Gaussian (an empty list where nothing is). NumPy's ``set_state`` checks
    none of them, and a position past the key's end makes the next draw read
    out of bounds (the process crashes)."""
    problems = []
    if type(pos) is not int or not 0 <= pos <= _MT_KEY_SIZE:
        problems.append(f"pos should be an integer in [0, {_MT_KEY_SIZE}], got {pos!r}")
    if type(has_gauss) is not int or has_gauss not in (0, 1):
        problems.append(f"has_gauss should be 0 or 1, got {has_gauss!r}")
    if not math.isfinite(cached_gaussian):
        problems.append(f"cached_gaussian should be finite, got {cached_gaussian!r}")
    return problems


def _random_state_from_json(node, where):
    """A RandomState from its stored state, every field bounds-checked.

    NumPy's ``set_state`` does not check the position in the key, and a
    position past its end makes the next draw read out of bounds.
    """
    fields = {"key", "pos", "has_gauss", "cached_gaussian"}
    if type(node) is not dict or set(node) != fields:
        raise Refused(
            f"manifest.json: {where} should be a RandomState's state with the "
            f"fields {sorted(fields)}, got {short_repr(node)}."
        )
    key, pos, has_gauss = node["key"], node["pos"], node["has_gauss"]
    cached = float_from_json(node["cached_gaussian"], f"{where}.cached_gaussian")
    problems = []
    if (
        type(key) is not list
        or len(key) != _MT_KEY_SIZE
        or not all(type(k) is int and 0 <= k < 2**32 for k in key)
    ):
        problems.append(f"key should be {_MT_KEY_SIZE} integers in [0, 2**32)")
    problems += random_state_problems(pos, has_gauss, cached)
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

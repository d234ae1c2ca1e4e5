"""The settings of a Keras optimizer that a fit can train with.

Keras checks few of an optimizer's settings when it is built: ``SGD`` takes
``clipvalue=[1]`` or ``weight_decay="x"`` and fails only inside training,
with a message about tensors. :func:`check_settings` refuses them first, for
a ``solver`` given to ``fit`` and for one read from a model file alike (a
file holds only what a fit could have trained with), naming the setting, the
value and what is expected.
"""

import math
from numbers import Integral, Real

from ._messages import short_repr

#: Settings of every Keras optimizer that are None unless set: the least
#: value each takes, and whether that value itself is excluded.
OPTIONAL_NUMBERS = {
    "weight_decay": (0.0, False),
    "clipnorm": (0.0, True),
    "clipvalue": (0.0, True),
    "global_clipnorm": (0.0, True),
    "loss_scale_factor": (0.0, True),
}
#: Integer settings that are None unless set, and their least value.
OPTIONAL_INTEGERS = {"gradient_accumulation_steps": 2, "ema_overwrite_frequency": 1}


def is_number(value):
    """Whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_settings(config, defaults):
    """Refuse a setting of ``config`` that no fit can train with.

    Parameters
    ----------
    config : dict
        An optimizer's ``get_config()`` (a learning-rate schedule in it
        serialized, as Keras gives it).
    defaults : dict
        The ``get_config()`` of the same class with its defaults (empty when
        the class has no defaults): where a default is a number, the setting
        must be a finite number; where it is a boolean, a boolean.

    Raises
    ------
    ValueError
        Naming the first setting refused, its value and what is expected.
    """
    for name, value in config.items():
        expected = _expected(name, value, defaults.get(name))
        if expected is not None:
            raise ValueError(f"{name}={short_repr(value)}; expected {expected}")


def _expected(name, value, default):
    """What ``value`` of setting ``name`` should be, or None if it is fine."""
    if name == "learning_rate":
        return _learning_rate_expected(value)
    if name in OPTIONAL_NUMBERS:
        low, strict = OPTIONAL_NUMBERS[name]
        bound = f"{'>' if strict else '>='} {low:g}"
        if value is None or (
            is_number(value)
            and math.isfinite(value)
            and (value > low if strict else value >= low)
        ):
            return None
        return f"None or a finite number {bound}"
    if name in OPTIONAL_INTEGERS:
        low = OPTIONAL_INTEGERS[name]
        if value is None or (
            isinstance(value, Integral) and not isinstance(value, bool) and value >= low
        ):
            return None
        return f"None or an integer >= {low}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "True or False"
    if is_number(default) and not (is_number(value) and math.isfinite(value)):
        return "a finite number"
    return None


def _learning_rate_expected(value):
    """A learning rate is a finite number > 0, or a serialized schedule whose
    numbers are finite and whose initial rate is > 0."""
    if is_number(value):
        return None if math.isfinite(value) and value > 0 else "a finite number > 0"
    config = value.get("config") if isinstance(value, dict) else None
    if not isinstance(config, dict):
        return "a finite number > 0 or a learning-rate schedule"
    for key, setting in config.items():
        numbers = setting if isinstance(setting, list) else [setting]
        if any(is_number(v) and not math.isfinite(v) for v in numbers):
            return f"a schedule whose {key} is finite"
    initial = config.get("initial_learning_rate")
    if initial is not None and not (is_number(initial) and initial > 0):
        return "a schedule whose initial_learning_rate is a finite number > 0"
    return None

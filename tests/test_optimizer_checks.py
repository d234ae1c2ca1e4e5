"""Tests for sk_keras_digits._optimizer_checks: what a Keras solver may set."""

import math
import warnings

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from sk_keras_digits import KerasDigitClassifier
from sk_keras_digits._keras_optimizer import default_config
from sk_keras_digits._optimizer_checks import (
    OPTIONAL_INTEGERS,
    OPTIONAL_NUMBERS,
    check_settings,
)

SGD_DEFAULTS = default_config(keras.optimizers.SGD)


def _in_range(name, value):
    low, strict = OPTIONAL_NUMBERS[name]
    return value > low if strict else value >= low


def _assert_checked(name, value, accepted, match, defaults=SGD_DEFAULTS):
    """``check_settings`` accepts ``{name: value}``, or refuses it with ``match``."""
    if accepted:
        check_settings({name: value}, defaults)
    else:
        with pytest.raises(ValueError, match=match):
            check_settings({name: value}, defaults)


not_numbers = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.floats(0.1, 2.0), min_size=1, max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)


@settings(max_examples=60)
@given(
    name=st.sampled_from(sorted(OPTIONAL_NUMBERS)),
    value=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-5, 5)),
)
def test_optional_numbers_are_none_or_finite_in_their_range(name, value):
    valid = value is None or (math.isfinite(value) and _in_range(name, value))
    _assert_checked(name, value, valid, f"{name}=.*expected None or a finite")


@settings(max_examples=40)
@given(name=st.sampled_from(sorted(OPTIONAL_NUMBERS)), value=not_numbers)
def test_optional_numbers_refuse_anything_else(name, value):
    with pytest.raises(ValueError, match=f"^{name}="):
        check_settings({name: value}, SGD_DEFAULTS)


@settings(max_examples=40)
@given(
    name=st.sampled_from(sorted(OPTIONAL_INTEGERS)),
    value=st.one_of(st.integers(-3, 6), st.floats(0, 6), st.booleans(), st.text()),
)
def test_optional_integers(name, value):
    valid = type(value) is int and value >= OPTIONAL_INTEGERS[name]
    _assert_checked(name, value, valid, f"{name}=.*an integer >= ")


@settings(max_examples=40)
@given(value=st.one_of(st.floats(allow_nan=True), not_numbers))
def test_numbers_and_booleans_keep_the_type_of_their_default(value):
    defaults = default_config(keras.optimizers.Adam)
    number_ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    for name, ok in (("beta_1", number_ok), ("amsgrad", isinstance(value, bool))):
        _assert_checked(name, value, ok, f"^{name}=", defaults)


@settings(max_examples=40)
@given(rate=st.one_of(st.floats(allow_nan=True), st.integers(-2, 2), not_numbers))
def test_a_learning_rate_is_a_finite_positive_number(rate):
    if isinstance(rate, dict):
        return  # a schedule's form: test_a_schedules_numbers_are_checked
    is_number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
    valid = is_number and math.isfinite(rate) and rate > 0
    _assert_checked("learning_rate", rate, valid, "^learning_rate=")


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"initial_learning_rate": -1.0}, "initial_learning_rate is a finite number"),
        ({"initial_learning_rate": math.nan}, "initial_learning_rate is finite"),
        ({"decay_rate": math.inf}, "decay_rate is finite"),
        ({"boundaries": [1, 2], "values": [0.1, math.nan, 0.2]}, "values is finite"),
    ],
)
def test_a_schedules_numbers_are_checked(config, expected):
    schedule = {"class_name": "ExponentialDecay", "config": config}
    with pytest.raises(ValueError, match=expected):
        check_settings({"learning_rate": schedule}, SGD_DEFAULTS)


def test_keras_own_schedules_pass():
    for schedule in (
        keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True),
        keras.optimizers.schedules.PiecewiseConstantDecay([5, 10], [0.1, 0.05, 0.01]),
        keras.optimizers.schedules.CosineDecay(0.1, 100, warmup_target=None),
        keras.optimizers.schedules.PolynomialDecay(0.1, 100, cycle=True),
    ):
        optimizer = keras.optimizers.SGD(learning_rate=schedule)
        check_settings(optimizer.get_config(), SGD_DEFAULTS)


@pytest.mark.parametrize(
    "solver, message",
    [
        (lambda: keras.optimizers.SGD(clipvalue=[1]), r"clipvalue=.*\[1\]"),
        (lambda: keras.optimizers.SGD(weight_decay="x"), "weight_decay='x'"),
        (lambda: keras.optimizers.Adam(loss_scale_factor=-2.0), "loss_scale_factor"),
        (lambda: keras.optimizers.Adam(beta_1=math.nan), "beta_1=nan"),
        (lambda: keras.optimizers.SGD(learning_rate=-0.1), "learning_rate=-0.1"),
    ],
)
def test_fit_refuses_them_naming_the_solver_and_keeps_its_fit(
    solver, message, small_digits
):
    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    before = est.predict_proba(X)
    est.set_params(solver=solver())
    with pytest.raises(ValueError, match=rf"solver=<\w+> has {message}"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), before)

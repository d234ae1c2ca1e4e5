"""Property-based tests: whole parameter combinations, judged by MLPClassifier.

Hypothesis draws every parameter the two estimators share at once, from the
constraints MLPClassifier declares (``_parameter_constraints``, which ours
repeats), in every spelling scikit-learn takes: Python ints, floats and bools,
NumPy integers and floats of every width, ``np.inf``, tuples, lists and arrays
(empty ones included), RandomState instances. For each combination:

* an invalid one (one to three parameters out of their constraints, or
  hidden layer sizes that are not positive integers) is refused by both
  estimators, with the same kind of error, naming the same parameter;
* a valid one trains (or is refused by both with a ValueError, e.g. an early
  stopping split too small), and predicts the labels of ``y`` with their dtype
  and probabilities that are finite rows summing to one;
* a valid one without shuffling and with an int seed trains to
  MLPClassifier's weights, to 1e-6.

The number of examples of each property is sized to the suite's time budget
(the ``ci`` profile of ``conftest.py``); ``HYPOTHESIS_PROFILE=thorough``
explores further.
"""

import contextlib
import copy
import io
import re
import warnings
from numbers import Integral

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    make_constraint,
)

from sk_keras_digits import KerasDigitClassifier

MLP_CONSTRAINTS = MLPClassifier._parameter_constraints
SHARED = sorted(MLP_CONSTRAINTS)

INT_TYPES = (
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
)
FLOAT_TYPES = (np.float16, np.float32, np.float64)

#: Largest valid values drawn: wide enough to reach every code path, small
#: enough for fits of a fraction of a second that do not diverge.
VALID_CAP = {
    "alpha": 1.0,
    "learning_rate_init": 0.3,
    "power_t": 2.0,
    "tol": 1.0,
    "epsilon": 10.0,
    "max_iter": 5,
    "batch_size": 150,
    "n_iter_no_change": 5,
    "max_fun": 50,
}

#: Largest |weight| of MLPClassifier's at which the twin is compared.
STABLE_WEIGHTS = 50.0

#: Rows of the training data (the batch size may exceed them) and the kinds of y.
N_ROWS = (60, 90, 120)
TARGETS = ("multiclass", "binary", "strings")

#: Hidden layer sizes that pass the "array-like" constraint but are no layer
#: widths: refused at fit (MLPClassifier fails on them, one way or another).
BAD_HIDDEN_LAYER_SIZES = [
    (5, 0),
    (-1,),
    (np.int8(-3), 2),
    (5.0,),
    np.array([2.5]),
    [np.nan],
    (True,),
    (np.True_,),
    ("3",),
    (None,),
]

#: Values of the wrong type or range for many parameters; each parameter's
#: invalid draws are those of these (and of its intervals' edges) that fail
#: all of its constraints.
WRONG_VALUES = [
    None,
    "1",
    "auto",
    "sgd",
    "relu",
    "constant",
    "True",
    [1],
    {},
    0,
    1,
    -1,
    1.5,
    2.0,
    np.nan,
    np.float32(np.nan),
    np.inf,
    -np.inf,
    True,
    np.True_,
    np.int64(-1),
    2**32,
    np.uint64(2**32),
    np.float16(1e-8),  # rounds to 0
    np.float16(0.9999),  # rounds to 1
]


# -- spellings ----------------------------------------------------------------
def integer_spellings(value, bools=True):
    """``value`` as a Python int, each NumPy integer holding it, and a bool."""
    spellings = [int(value)]
    spellings += [
        kind(value)
        for kind in INT_TYPES
        if np.iinfo(kind).min <= value <= np.iinfo(kind).max
    ]
    if bools and value in (0, 1):
        spellings.append(bool(value))
    return spellings


def real_spellings(value):
    """``value`` as a Python float, each NumPy float, and ints if it is whole.

    A NumPy float may round it (``np.float16(1e-8) == 0``): what is drawn is
    checked against the constraints afterwards.
    """
    spellings = [float(value), *(kind(value) for kind in FLOAT_TYPES)]
    if np.isfinite(value) and float(value).is_integer():
        spellings += integer_spellings(int(value))
    return spellings


def spelled(values, spell, **kwargs):
    return values.flatmap(lambda value: st.sampled_from(spell(value, **kwargs)))


def satisfies(name, value):
    """Whether ``value`` meets one of MLPClassifier's constraints on ``name``."""
    return any(
        make_constraint(constraint).is_satisfied_by(value)
        for constraint in MLP_CONSTRAINTS[name]
    )


# -- valid values -------------------------------------------------------------
BOOLEANS = st.sampled_from([False, True, np.False_, np.True_])
#: Hypothesis favours the first options: the stochastic solvers come first.
SOLVERS = st.sampled_from(["sgd", "adam", "lbfgs"])
LAYER_WIDTHS = st.integers(1, 6)
SPELLED_WIDTHS = spelled(LAYER_WIDTHS, integer_spellings, bools=False)
HIDDEN_LAYER_SIZES = st.one_of(
    SPELLED_WIDTHS,
    st.lists(SPELLED_WIDTHS, max_size=2).flatmap(
        lambda sizes: st.sampled_from([tuple(sizes), list(sizes)])
    ),
    st.lists(LAYER_WIDTHS, max_size=2).flatmap(
        lambda sizes: st.sampled_from(
            [np.array(sizes, dtype=kind) for kind in (np.int8, np.uint16, np.int64)]
            + ([np.array([])] if not sizes else [])  # float64, empty
        )
    ),
)
RANDOM_STATES = st.one_of(
    st.none(),
    spelled(st.sampled_from([0, 1, 2**32 - 1]), integer_spellings),
    spelled(st.integers(0, 2**32 - 1), integer_spellings),
    st.integers(0, 2**32 - 1).map(np.random.RandomState),
)
VERBOSE = BOOLEANS | spelled(st.integers(0, 2), integer_spellings)


def valid_numbers(name, interval):
    """Numbers in ``interval`` (below the parameter's cap), in every spelling."""
    low, high = interval.left, interval.right
    cap = VALID_CAP.get(name)
    if cap is not None:
        high = cap if high is None else min(high, cap)
    if interval.type is Integral:
        return spelled(st.integers(low, high), integer_spellings)
    edges = [
        edge
        for edge in (interval.left, interval.right)
        if edge is not None and edge in interval
    ]
    inside = st.floats(
        low,
        high,
        exclude_min=interval.closed in ("right", "neither"),
        exclude_max=high == interval.right and interval.closed in ("left", "neither"),
    )
    numbers = st.sampled_from(edges) | inside if edges else inside
    return spelled(numbers, real_spellings).filter(lambda value: value in interval)


def valid_values(name):
    """Every valid value of the parameter ``name``, as a strategy."""
    if name == "hidden_layer_sizes":
        return HIDDEN_LAYER_SIZES
    options = []
    for constraint in MLP_CONSTRAINTS[name]:
        if constraint == "boolean":
            options.append(BOOLEANS)
        elif constraint == "verbose":
            options.append(VERBOSE)
        elif constraint == "random_state":
            options.append(RANDOM_STATES)
        elif isinstance(constraint, Interval):
            options.append(valid_numbers(name, constraint))
        elif isinstance(constraint, StrOptions):
            options.append(st.sampled_from(sorted(constraint.options)))
        elif isinstance(constraint, Options):  # n_iter_no_change's inf
            spellings = [real_spellings(v) for v in sorted(constraint.options)]
            options.append(st.sampled_from(sum(spellings, [])))
        else:
            raise AssertionError(f"no strategy for {name}'s {constraint!r}")
    return st.one_of(options)


# -- invalid values -----------------------------------------------------------
def interval_edges(interval):
    """Numbers just outside ``interval``, on its edges, or of the wrong type."""
    numbers = []
    if interval.left is not None:
        numbers += [interval.left - 1, interval.left - 0.5, interval.left - 1e-3]
        if interval.left not in interval:
            numbers.append(interval.left)
    if interval.right is not None:
        numbers += [interval.right + 0.5, interval.right + 1]
        if interval.right not in interval:
            numbers.append(interval.right)
    if interval.type is Integral:
        numbers += [interval.left + 0.5, interval.left + 1.0]
    return [spelling for number in numbers for spelling in real_spellings(number)]


def invalid_values(name):
    """Values of ``name`` refused by its constraints (or, for hidden layer
    sizes, at fit), as a strategy."""
    candidates = list(WRONG_VALUES)
    for constraint in MLP_CONSTRAINTS[name]:
        if isinstance(constraint, Interval):
            candidates += interval_edges(constraint)
    refused = [value for value in candidates if not satisfies(name, value)]
    if name == "hidden_layer_sizes":
        refused += BAD_HIDDEN_LAYER_SIZES
    return st.sampled_from(refused)


# -- combinations -------------------------------------------------------------
@st.composite
def combinations(draw, n_invalid=0, **fixed):
    """A whole parameter combination: (params, names of the invalid ones)."""
    params = {name: draw(valid_values(name)) for name in SHARED}
    params.update({name: draw(values) for name, values in fixed.items()})
    invalid = draw(
        st.lists(st.sampled_from(SHARED), min_size=n_invalid, max_size=n_invalid + 2)
        .map(sorted)
        .filter(lambda names: len(set(names)) == len(names))
        if n_invalid
        else st.just([])
    )
    params.update({name: draw(invalid_values(name)) for name in invalid})
    return params, invalid


class Targets(dict):
    """The data sets by kind of target, shown briefly in falsifying examples."""

    def __repr__(self):
        return f"<{', '.join(self)}: {len(self['multiclass'][1])} digits>"


@pytest.fixture(scope="module")
def targets(small_digits):
    """(X, y) for each kind of target: scaled digits, y of ints or strings."""
    from sk_keras_digits import _training  # noqa: F401 - TensorFlow loads here,
    # outside the examples (it raises the recursion limit, which Hypothesis minds)

    X, y = small_digits
    return Targets(
        multiclass=(X, y),
        binary=(X, (y > 4).astype(np.int64)),
        strings=(X, np.array(list("abcdefghij"))[y]),
    )


# -- fitting ------------------------------------------------------------------
def as_mlpclassifier_takes_them(params):
    """``params`` for MLPClassifier: hidden layer sizes as Python ints.

    MLPClassifier computes the offsets of its packed 'lbfgs' weights from the
    layer sizes, in their own type: NumPy int8 or uint8 sizes overflow (e.g.
    64 * 2 as int8), and it fails to unpack them. Sizes of the same values
    make it the reference.
    """
    sizes = params["hidden_layer_sizes"]
    if isinstance(sizes, np.integer):
        return {**params, "hidden_layer_sizes": int(sizes)}
    if hasattr(sizes, "__iter__") and all(
        isinstance(s, Integral) and not isinstance(s, bool) for s in sizes
    ):
        return {**params, "hidden_layer_sizes": [int(s) for s in sizes]}
    return params


def as_python_numbers(params):
    """``params`` with NumPy scalars as the Python numbers of the same values.

    MLPClassifier computes in the type of its numbers: a NumPy float16, or a
    narrow integer (whose square root is a float16), makes Adam's step size a
    float16 (``learning_rate_init * np.sqrt(1 - beta_2**t)`` with
    ``beta_2=np.float16(0)``), rounding it by up to 5e-4. Ours computes with
    the values in the training dtype, so the weights it reaches from any
    spelling are MLPClassifier's from the same values as Python numbers.

    ``validation_fraction`` stays as drawn: both estimators hand it to
    ``train_test_split``, whose ``ceil(validation_fraction * n_samples)`` is
    computed in its type (``np.float32(0.1) * 60`` is 6, ``0.1 * 60`` is not).
    """
    return {
        name: (
            value.item()
            if isinstance(value, np.generic) and name != "validation_fraction"
            else value
        )
        for name, value in params.items()
    }


def fit(estimator_class, params, X, y):
    """The fitted estimator and None, or None and the exception fit raised.

    Both estimators get their own deep copy of ``params`` (a RandomState is
    consumed by fit). With ``warm_start`` fit runs twice, the second call
    starting from the first's weights.
    """
    params = copy.deepcopy(params)
    if estimator_class is MLPClassifier:
        params = as_mlpclassifier_takes_them(params)
    try:
        estimator = estimator_class(**params)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),  # verbose
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", "Got `?batch_size", UserWarning)
            # MLPClassifier's float16 or float32 numbers may overflow.
            warnings.simplefilter("ignore", RuntimeWarning)
            estimator.fit(X, y)
            if params["warm_start"]:
                estimator.fit(X, y)
    except Exception as exc:  # noqa: BLE001 - compared with MLPClassifier's
        return None, exc
    return estimator, None


def named_parameters(message):
    """The shared parameters a message names."""
    return {name for name in SHARED if re.search(rf"\b{name}\b", message)}


def check_same_refusal(ours, theirs, invalid):
    """Our exception refuses what MLPClassifier's does, as it does.

    A parameter-constraint error must be an InvalidParameterError (a
    ValueError and a TypeError) naming the same parameter. Where MLPClassifier
    fails later (a ValueError of its own, or a crash on hidden layer sizes
    that are not integers), ours must be a ValueError (or TypeError where
    theirs is) naming the parameter theirs names or, where theirs names
    none, one of the invalid ones.
    """
    assert ours is not None, f"MLPClassifier refused ({theirs!r}); we did not"
    if isinstance(theirs, InvalidParameterError):
        assert isinstance(ours, InvalidParameterError), repr(ours)
        name = re.match(r"The '(\w+)' parameter", str(theirs)).group(1)
        assert re.match(rf"The '{name}' parameter of KerasDigitClassifier", str(ours))
        return
    assert isinstance(ours, (ValueError, TypeError)), repr(ours)
    if isinstance(theirs, ValueError):
        assert isinstance(ours, ValueError), (repr(ours), repr(theirs))
    expected = named_parameters(str(theirs)) or set(invalid)
    if expected:
        assert named_parameters(str(ours)) & expected, (repr(ours), repr(theirs))


def diverged_as_mlpclassifier(mlp, error):
    """Whether MLPClassifier's training diverged (silently: a NaN or infinite
    loss), and ours says so: it refuses a diverged fit with a ValueError."""
    if error is None or np.isfinite(mlp.loss_):
        return False
    assert isinstance(error, ValueError), repr(error)
    assert re.match("Solver produced non-finite parameter weights", str(error)), error
    event("diverged: MLPClassifier silently, ours with a ValueError")
    return True


def check_predictions(estimator, X, y):
    pred = estimator.predict(X)
    assert pred.dtype == y.dtype
    assert set(pred) <= set(y)
    proba = estimator.predict_proba(X)
    assert proba.shape == (len(X), len(np.unique(y)))
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)


# -- the properties -----------------------------------------------------------
def examples(n):
    """Settings for ``n`` examples under the ci profile, scaled under others
    (10 times as many with "thorough")."""
    scale = settings.default.max_examples / settings.get_profile("ci").max_examples
    return settings(max_examples=max(1, round(n * scale)))


def describe(constraint):
    """What a constraint accepts, comparable across estimators."""
    constraint = make_constraint(constraint)
    if isinstance(constraint, Interval):
        return constraint.type, constraint.left, constraint.right, constraint.closed
    if isinstance(constraint, Options):  # StrOptions too
        return type(constraint), constraint.type, frozenset(constraint.options)
    return str(constraint)


def test_constraints_are_mlpclassifiers():
    """The shared parameters take exactly MLPClassifier's values (and ours
    also takes a Keras optimizer as the solver)."""
    ours = KerasDigitClassifier._parameter_constraints
    for name in SHARED:
        theirs = [describe(c) for c in MLP_CONSTRAINTS[name]]
        mine = [describe(c) for c in ours[name]]
        if name == "solver":
            optimizer = "an object implementing 'apply' and 'get_config'"
            assert mine == [*theirs, optimizer]
        else:
            assert mine == theirs, name


def mlp_defaults(**params):
    """MLPClassifier's defaults, for a few epochs of a small network."""
    defaults = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3).get_params()
    return {**defaults, **params}


HIDDEN = ["hidden_layer_sizes"]


@examples(35)
@given(case=combinations(n_invalid=1), n_rows=st.sampled_from(N_ROWS))
# A bool is an Integral but no layer width (MLPClassifier fails on it): we
# trained a layer of one unit.
@example(case=(mlp_defaults(hidden_layer_sizes=True), HIDDEN), n_rows=60)
@example(case=(mlp_defaults(hidden_layer_sizes=(4, True)), HIDDEN), n_rows=60)
def test_invalid_combination_is_refused_as_by_mlpclassifier(case, n_rows, targets):
    params, invalid = case
    X, y = targets["multiclass"]
    _, theirs = fit(MLPClassifier, params, X[:n_rows], y[:n_rows])
    assert theirs is not None, f"MLPClassifier accepted {invalid}"
    _, ours = fit(KerasDigitClassifier, params, X[:n_rows], y[:n_rows])
    event(type(theirs).__name__)
    check_same_refusal(ours, theirs, invalid)


@examples(28)
@given(
    case=combinations(solver=SOLVERS),
    n_rows=st.sampled_from(N_ROWS),
    target=st.sampled_from(TARGETS),
)
@example(  # MLPClassifier's loss becomes NaN (its weights 1e202); ours raises
    case=(
        mlp_defaults(
            hidden_layer_sizes=(),
            solver="adam",
            alpha=0,
            batch_size=1,
            beta_1=0.5,
            beta_2=0,
            epsilon=1.7e-203,
            learning_rate_init=0.25,
            max_iter=1,
            shuffle=False,
        ),
        [],
    ),
    n_rows=60,
    target="multiclass",
)
@example(  # a subnormal epsilon, flushed to zero, divided zero gradients by zero
    case=(
        mlp_defaults(solver="adam", alpha=0, epsilon=5e-324, shuffle=False),
        [],
    ),
    n_rows=60,
    target="multiclass",
)
def test_valid_combination_trains_and_predicts(case, n_rows, target, targets):
    """MLPClassifier accepts the spellings drawn; so do we, and train where it
    trains on the same values.

    MLPClassifier trains on them as Python numbers (:func:`as_python_numbers`):
    it computes in a NumPy scalar's own type, and a narrow integer overflows
    (``power_t=np.int8(0)`` with ``'invscaling'`` raises an OverflowError).
    """
    params, _ = case
    X, y = targets[target]
    X, y = X[:n_rows], y[:n_rows]
    MLPClassifier(**params)._validate_params()  # a valid draw
    mlp, theirs = fit(MLPClassifier, as_python_numbers(params), X, y)
    ours, error = fit(KerasDigitClassifier, params, X, y)
    if theirs is not None:  # refused by both, e.g. a validation set too small
        event(f"refused by both: {str(theirs)[:40]}")
        assert isinstance(theirs, ValueError), repr(theirs)
        check_same_refusal(error, theirs, [])
        return
    if diverged_as_mlpclassifier(mlp, error):
        return
    assert error is None, f"MLPClassifier trains; we raise {error!r}"
    event(f"trained: {params['solver']}, early_stopping={params['early_stopping']}")
    check_predictions(ours, X, y)
    assert ours.n_iter_ <= params["max_iter"]


@examples(22)
@given(
    case=combinations(
        shuffle=st.sampled_from([False, np.False_]),
        random_state=spelled(st.integers(0, 2**32 - 1), integer_spellings),
        solver=SOLVERS,
        early_stopping=st.booleans(),
        validation_fraction=spelled(st.floats(0.1, 0.5), real_spellings),
        # An undamped momentum (1) lets the weights grow without bound, and
        # rounding differences with them: no twin beyond the first digits.
        momentum=spelled(st.floats(0, 0.9), real_spellings),
    ),
    n_rows=st.sampled_from(N_ROWS),
    target=st.sampled_from(TARGETS),
)
def test_trains_to_mlpclassifiers_weights_without_shuffling(
    case, n_rows, target, targets
):
    """Same initialisation, batches, solver and stopping rules: same weights.

    MLPClassifier trains on the values as Python numbers (see
    :func:`as_python_numbers`). One of its early-stopping bugs is left out:
    with ``warm_start`` its best weights are the very arrays the next fit
    updates in place (``coefs_ = _best_coefs``), so a second fit that does not
    improve the validation score ends with its last weights, ours with the
    best ones: early stopping is not warm-started.
    """
    params, _ = case
    if params["early_stopping"] and params["solver"] != "lbfgs":
        params = {**params, "warm_start": False}
    X, y = targets[target]
    X, y = X[:n_rows], y[:n_rows]
    theirs, refused = fit(MLPClassifier, as_python_numbers(params), X, y)
    ours, error = fit(KerasDigitClassifier, params, X, y)
    if refused is not None:  # a validation set too small
        event("refused by both")
        check_same_refusal(error, refused, [])
        return
    if diverged_as_mlpclassifier(theirs, error):
        return
    assert error is None, f"MLPClassifier trains; we raise {error!r}"
    # Weights grown this large (an unstable step: a large learning rate on
    # batches of one sample) amplify rounding differences past any tolerance.
    assume(max(np.abs(w).max() for w in theirs.coefs_) <= STABLE_WEIGHTS)
    event(f"trained: {params['solver']}, early_stopping={params['early_stopping']}")
    assert ours.n_iter_ == theirs.n_iter_
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


#: scikit-learn's gallery example "Compare stochastic learning strategies for
#: MLPClassifier": its learning-rate schedules and momentums, ints included.
GALLERY_PARAMS = [
    dict(solver="sgd", learning_rate="constant", momentum=0, learning_rate_init=0.2),
    dict(
        solver="sgd",
        learning_rate="constant",
        momentum=0.9,
        nesterovs_momentum=False,
        learning_rate_init=0.2,
    ),
    dict(
        solver="sgd",
        learning_rate="constant",
        momentum=0.9,
        nesterovs_momentum=True,
        learning_rate_init=0.2,
    ),
    dict(solver="sgd", learning_rate="invscaling", momentum=0, learning_rate_init=0.2),
    dict(
        solver="sgd",
        learning_rate="invscaling",
        momentum=0.9,
        nesterovs_momentum=True,
        learning_rate_init=0.2,
    ),
    dict(
        solver="sgd",
        learning_rate="invscaling",
        momentum=0.9,
        nesterovs_momentum=False,
        learning_rate_init=0.2,
    ),
    dict(solver="adam", learning_rate_init=0.01),
]


@pytest.mark.parametrize("params", GALLERY_PARAMS)
def test_gallery_learning_strategies_fit_and_predict(params, small_digits):
    """The gallery's digits case: MinMaxScaler, random_state=0, 15 epochs."""
    X, y = small_digits
    X = MinMaxScaler().fit_transform(X)
    est = KerasDigitClassifier(random_state=0, max_iter=15, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_ <= 15
    assert np.isfinite(est.loss_curve_).all()
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    check_predictions(est, X, y)

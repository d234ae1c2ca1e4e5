"""The invariants of a fitted state: only what a fit could have produced.

:func:`check_fitted` accepts a fitted estimator's record
(:class:`~sk_keras_digits._state.FittedEstimator`) only if a fit with its
parameters could have produced it: the public attributes are all derived from
the record, so a file that passes cannot describe a self-contradicting
estimator. ``save`` checks what it writes the same way, so a file that
``save`` writes loads. Each solver checks its own state's layout
(:meth:`~sk_keras_digits._solvers.SGD.check_state`).

The target encoding (``state.labels``) is the estimator's: a classifier's
:class:`~sk_keras_digits._labels.LabelEncoding`, a regressor's
:class:`~sk_keras_digits._targets.RegressionTargets`. So is the range of the
validation score: an accuracy in [0, 1] for a classifier, an R^2 of at most
1 (negative for predictions worse than the mean) for a regressor.
"""

import math

import numpy as np

from .._labels import KINDS, LabelEncoding
from .._losses import REGRESSION_ACTIVATIONS
from .._messages import short_repr
from .._solvers import check_saved_state
from .._targets import RegressionTargets
from .errors import Refused


def check_fitted(record, custom, regressor):
    """Refuse a fitted state that no fit with the record's parameters produces.

    Parameters
    ----------
    record : FittedEstimator
        The estimator's record, its parameters already validated.
    custom : bool
        Whether the network is a custom one (its weights are checked against
        the architecture by the caller).
    regressor : bool
        Whether the record is a KerasDigitRegressor's (else a
        KerasDigitClassifier's).
    """
    params, state = record.params, record.state
    n_features_in = record.n_features_in
    check_inputs(n_features_in, record.feature_names_in)
    _check_kind(state.labels, regressor)
    if regressor:
        _check_targets(state.labels, params)
    else:
        _check_labels(state.labels)
        try:  # the check fit makes
            state.labels.check_class_weight(params.get("class_weight"))
        except ValueError as exc:
            raise Refused(
                f"params['class_weight'] does not fit the classes: {exc}"
            ) from exc
    _check_weights(record.hidden_layer_sizes, n_features_in, state, custom)
    if regressor and custom:
        _check_output_width(state.labels.n_outputs, state.weights, n_features_in)
    _check_solver(params, state)
    score = _R2 if regressor else _ACCURACY
    _check_progress(
        state.training.progress, state.early_stopping, score, _loss_floor(state.labels)
    )
    _check_history(params, state.history, score, _loss_floor(state.labels))


_INT32_MAX = 2**31 - 1


def describe_targets(labels):
    """The targets of an encoding, for messages: ``"multiclass targets"``, ..."""
    if isinstance(labels, RegressionTargets):
        return f"regression targets (loss={labels.loss!r})"
    return f"{labels.kind} targets"


class _Score:
    """The range of a validation score (the estimator's ``score``)."""

    def __init__(self, name, low, expected):
        self.name, self.low, self.expected = name, low, expected

    def accepts(self, value, nan=False):
        """Whether ``value`` is a score a fit reports (NaN: an epoch diverged)."""
        if math.isnan(value):
            return nan
        return self.low <= value <= 1


_ACCURACY = _Score("accuracy", 0.0, "a number in [0, 1]")
_R2 = _Score("R^2", -math.inf, "a number <= 1 (an R^2)")


def _loss_floor(labels):
    """The least loss a fit reports: 0, but for the Poisson deviance.

    Half the Poisson deviance is >= 0 exactly but computed as a difference of
    logarithms, which rounding may leave a little below 0 for a near-perfect
    fit without penalty (alpha=0): only its finiteness is checked.
    """
    if isinstance(labels, RegressionTargets) and labels.loss == "poisson":
        return -math.inf
    return 0.0


def _check_kind(labels, regressor):
    """The target encoding must be the estimator's kind of targets."""
    expected, owner = (
        (RegressionTargets, "KerasDigitRegressor")
        if regressor
        else (LabelEncoding, "KerasDigitClassifier")
    )
    if type(labels) is not expected:
        raise Refused(
            f"state.labels is a {type(labels).__name__} record, but a {owner}'s "
            f"fitted state holds its targets as a {expected.__name__} record: the "
            "state is another estimator's."
        )


def _check_targets(targets, params):
    """A regressor's :class:`RegressionTargets`: its loss is the parameter's."""
    where = "state.labels"
    n_outputs, loss = targets.n_outputs, targets.loss
    if type(n_outputs) is not int or n_outputs < 1:
        raise Refused(
            f"{where}.n_outputs should be a positive integer (the number of target "
            f"columns), got {short_repr(n_outputs)}."
        )
    if loss not in REGRESSION_ACTIVATIONS:
        raise Refused(
            f"{where}.loss should be one of {sorted(REGRESSION_ACTIVATIONS)}, got "
            f"{short_repr(loss)}."
        )
    if params.get("loss") != loss:
        raise Refused(
            f"{where}.loss is {loss!r}, but params['loss'] is "
            f"{short_repr(params.get('loss'))}: a fit trains with the loss parameter."
        )


def _check_output_width(n_outputs, weights, n_features_in):
    """Bound a custom network's number of outputs by its checked weights.

    The network built is checked to output ``n_outputs`` columns (for the
    default network the weights' shapes give it); bounding it first means
    that a caller's builder is never asked for a huge output layer. Each
    output needs an input or a trainable scalar to compute it.
    """
    most = n_features_in + weights.size
    if n_outputs > most:
        raise Refused(
            f"state.labels.n_outputs is {n_outputs}, more than a network of "
            f"{weights.size} trainable scalars on {n_features_in} inputs computes "
            f"(at most {most})."
        )


def check_inputs(n_features_in, feature_names_in):
    """Refuse an input description that ``validate_data`` could not have set.

    Parameters
    ----------
    n_features_in : object
    feature_names_in : ndarray or None
    """
    if type(n_features_in) is not int or n_features_in < 1:
        raise Refused(
            f"n_features_in should be a positive integer, got "
            f"{short_repr(n_features_in)}."
        )
    if feature_names_in is not None:
        if len(feature_names_in) != n_features_in or not all(
            type(v) is str for v in feature_names_in
        ):
            raise Refused(
                f"feature_names_in should be {n_features_in} strings, "
                f"got {short_repr(feature_names_in.tolist())}."
            )


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
                f"{where} should be finite, got {short_repr(classes.tolist())}."
            )
    if not np.array_equal(np.unique(classes), classes):
        raise Refused(
            f"{where} should be sorted and unique, got {short_repr(classes.tolist())}."
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
            f"for multilabel targets, got {short_repr(classes.tolist())}."
        )


def _check_weights(hidden_layer_sizes, n_features_in, state, custom):
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
    hidden = list(hidden_layer_sizes)
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
    """The solver state, checked by the solver that made it."""
    try:
        check_saved_state(state.training.solver, state.weights, params["solver"])
    except ValueError as exc:
        raise Refused(str(exc)) from exc


def _check_progress(progress, early_stopping, score, floor):
    where = "state.training.progress"
    # A validation score is kept only with early stopping.
    best_score = f"-inf or {score.expected}" if early_stopping else "-inf"
    checks = [
        (
            "learning_rate",
            math.isfinite(progress.learning_rate) and progress.learning_rate > 0,
            "a finite number > 0",
        ),
        (
            "best_loss",
            progress.best_loss >= floor,
            "a number >= 0 or inf" if floor == 0 else "a number or inf",
        ),
        (
            "best_score",
            progress.best_score == -math.inf
            or (early_stopping and score.accepts(progress.best_score)),
            best_score + ("" if early_stopping else " without early stopping"),
        ),
        (
            # The training loop counts in int32.
            "no_improvement",
            0 <= progress.no_improvement <= _INT32_MAX,
            f"an integer in [0, {_INT32_MAX}]",
        ),
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


def _check_history(params, history, score, floor):
    """The curves. With early stopping a fit whose loss diverges keeps its best
    validated weights: its last loss and score are then not finite."""
    where = "state.history"
    losses = history.losses
    diverged = history.scores is not None  # a fit may have ended by diverging
    bound = " >= 0" if floor == 0 else ""
    if diverged:
        bound += " (or NaN or inf, a diverged epoch's with early stopping)"
    if not all(_loss_ok(v, floor, diverged) for v in losses):
        raise Refused(
            f"{where}.losses should be finite numbers{bound}, got {short_repr(losses)}."
        )
    stochastic = params["solver"] != "lbfgs"
    if (history.scores is not None) != (params["early_stopping"] and stochastic):
        raise Refused(
            f"{where}.scores should be a list with early stopping (a stochastic "
            f"solver and early_stopping=True) and null otherwise, got "
            f"{short_repr(history.scores)} with solver={params['solver']!r} and "
            f"early_stopping={params['early_stopping']!r}."
        )
    if history.scores is not None and (
        len(history.scores) != len(losses)
        or not all(
            type(v) is float and score.accepts(v, nan=True) for v in history.scores
        )
    ):
        raise Refused(
            f"{where}.scores should be {len(losses)} validation {score.name} "
            f"scores, each {score.expected} or NaN (one per epoch), got "
            f"{short_repr(history.scores)}."
        )
    rates = history.learning_rates
    if (rates is None) == stochastic:
        raise Refused(
            f"{where}.learning_rates should be a list with a stochastic solver and "
            f"null with lbfgs, got {short_repr(rates)} with "
            f"solver={params['solver']!r}."
        )
    if rates is not None and (
        len(rates) > len(losses)
        or not all(type(v) is float and math.isfinite(v) and v > 0 for v in rates)
    ):
        raise Refused(
            f"{where}.learning_rates should be at most {len(losses)} finite numbers "
            f"> 0, got {short_repr(rates)}."
        )
    if not 0 <= history.n_iter <= len(losses):
        raise Refused(
            f"{where}.n_iter should be in [0, {len(losses)}] (the number of "
            f"losses), got {history.n_iter}."
        )
    if not _loss_ok(history.loss, floor, diverged):
        raise Refused(
            f"{where}.loss should be a finite number{bound}, got {history.loss!r}."
        )


def _loss_ok(value, floor, diverged):
    """Whether ``value`` is a loss a fit reports."""
    if type(value) is not float:
        return False
    if not math.isfinite(value):
        return diverged and value != -math.inf
    return value >= floor

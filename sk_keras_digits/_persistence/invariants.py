"""The invariants of a fitted state: only what a fit could have produced.

:func:`check_fitted` accepts a fitted estimator's record
(:class:`~sk_keras_digits._state.FittedEstimator`) only if a fit with its
parameters could have produced it: the public attributes are all derived from
the record, so a file that passes cannot describe a self-contradicting
estimator. ``save`` checks what it writes the same way, so a file that
``save`` writes loads. Each solver checks its own state's layout
(:meth:`~sk_keras_digits._solvers.SGD.check_state`).
"""

import math

import numpy as np

from .._labels import KINDS
from .._solvers import check_saved_state
from .errors import Refused
from .json_values import describe


def check_fitted(record, custom):
    """Refuse a fitted state that no fit with the record's parameters produces.

    Parameters
    ----------
    record : FittedEstimator
        The estimator's record, its parameters already validated.
    custom : bool
        Whether the network is a custom one (its weights are checked against
        the architecture by the caller).
    """
    params, state = record.params, record.state
    n_features_in = record.n_features_in
    check_inputs(n_features_in, record.feature_names_in)
    _check_labels(state.labels)
    try:  # the check fit makes
        state.labels.check_class_weight(params.get("class_weight"))
    except ValueError as exc:
        raise Refused(
            f"params['class_weight'] does not fit the classes: {exc}"
        ) from exc
    _check_weights(record.hidden_layer_sizes, n_features_in, state, custom)
    _check_solver(params, state)
    _check_progress(state.training.progress)
    _check_history(params, state.history)


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
            f"{describe(n_features_in)}."
        )
    if feature_names_in is not None:
        if len(feature_names_in) != n_features_in or not all(
            type(v) is str for v in feature_names_in
        ):
            raise Refused(
                f"feature_names_in should be {n_features_in} strings, "
                f"got {describe(feature_names_in.tolist())}."
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
                f"{where} should be finite, got {describe(classes.tolist())}."
            )
    if not np.array_equal(np.unique(classes), classes):
        raise Refused(
            f"{where} should be sorted and unique, got {describe(classes.tolist())}."
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
            f"for multilabel targets, got {describe(classes.tolist())}."
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
            f"{where}.losses should be finite numbers >= 0, got {describe(losses)}."
        )
    stochastic = params["solver"] != "lbfgs"
    if (history.scores is not None) != (params["early_stopping"] and stochastic):
        raise Refused(
            f"{where}.scores should be a list with early stopping (a stochastic "
            f"solver and early_stopping=True) and null otherwise, got "
            f"{describe(history.scores)} with solver={params['solver']!r} and "
            f"early_stopping={params['early_stopping']!r}."
        )
    if history.scores is not None and (
        len(history.scores) != len(losses)
        or not all(type(v) is float and 0 <= v <= 1 for v in history.scores)
    ):
        raise Refused(
            f"{where}.scores should be {len(losses)} numbers in [0, 1] (one per "
            f"epoch), got {describe(history.scores)}."
        )
    rates = history.learning_rates
    if (rates is None) == stochastic:
        raise Refused(
            f"{where}.learning_rates should be a list with a stochastic solver and "
            f"null with lbfgs, got {describe(rates)} with solver={params['solver']!r}."
        )
    if rates is not None and (
        len(rates) > len(losses)
        or not all(type(v) is float and math.isfinite(v) and v > 0 for v in rates)
    ):
        raise Refused(
            f"{where}.learning_rates should be at most {len(losses)} finite numbers "
            f"> 0, got {describe(rates)}."
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

"""The stopping rules: MLPClassifier's end-of-epoch bookkeeping, for every backend.

After each epoch MLPClassifier records the loss (or, with early stopping, the
validation score), counts the epochs without improvement by more than
``tol``, and when the count exceeds ``n_iter_no_change`` either lowers the
learning rate (the ``adaptive`` schedule) or stops. :func:`end_of_epoch` is
that rule as a function of tensors written with ``keras.ops``, which a backend
module (:mod:`sk_keras_digits._backends`) traces into its compiled loop.
"""

import numpy as np

from ._backends import import_keras
from ._objective import constant, dtype_of, validation_score
from ._state import DIVERGED, RUNNING, Weights


def close_epoch(
    network,
    validation,
    params,
    buffers,
    progress,
    loss,
    samples,
    hyper,
    schedule,
    solver_state,
):
    """Score the epoch (with early stopping) and apply :func:`end_of_epoch`.

    What every backend's loop does after an epoch's batches.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
    validation : TrainingData or None
        The validation split (tensors), with early stopping; None without.
    params, buffers : sequences of tensors
        The weights after the epoch.
    progress, loss, samples, hyper, schedule, solver_state
        As :func:`end_of_epoch`.

    Returns
    -------
    progress, triggered, status
        As :func:`end_of_epoch`.
    score : scalar tensor
        The validation score, NaN without early stopping.
    """
    score = best = None
    if validation is not None:
        proba, _, _ = network.forward(params, list(buffers), validation.X, False)
        score = validation_score(network, proba, validation.Y, validation.sample_weight)
        best = Weights(tuple(params), tuple(buffers))
    progress, triggered, status = end_of_epoch(
        progress, loss, score, samples, hyper, schedule, solver_state, best
    )
    if score is None:
        score = constant(np.nan, dtype_of(loss))
    return progress, triggered, status, score


def end_of_epoch(progress, loss, score, samples, hyper, schedule, solver_state, best):
    """The :class:`~sk_keras_digits._state.Progress` after an epoch.

    Parameters
    ----------
    progress : Progress
        Before the epoch (tensors). With early stopping its ``best_weights``
        holds the best weights so far.
    loss : scalar tensor
        The epoch's mean training loss.
    score : scalar tensor or None
        The validation score, with early stopping; None without.
    samples : scalar tensor
        The number of samples the epoch trained on.
    hyper : Hyper
        The configuration's numbers (tensors).
    schedule : Constant, InvScaling, Adaptive or OptimizerLearningRate
        The solver's learning-rate schedule.
    solver_state : tensors
        The solver's state after the epoch (a Keras optimizer's learning
        rate is read from it).
    best : Weights or None
        With early stopping, the weights after the epoch: kept when the
        score is the best yet.

    Returns
    -------
    progress : Progress
        After the epoch.
    triggered : bool tensor
        Whether the ``n_iter_no_change`` rule fired.
    status : int32 tensor
        ``RUNNING``, the schedule's ``stop_status``, or ``DIVERGED`` for a
        non-finite loss.
    """
    keras = import_keras()

    ops = keras.ops
    tol = hyper.tol
    if score is not None:
        worse = ops.less(score, progress.best_score + tol)
        better = ops.greater(score, progress.best_score)
        kept = progress.best_weights
        progress = progress._replace(
            best_score=ops.where(better, score, progress.best_score),
            best_weights=Weights(
                tuple(
                    ops.where(better, new, old)
                    for new, old in zip(best.params, kept.params, strict=True)
                ),
                tuple(
                    ops.where(better, new, old)
                    for new, old in zip(best.buffers, kept.buffers, strict=True)
                ),
            ),
        )
    else:
        worse = ops.greater(loss, progress.best_loss - tol)
        lower = ops.less(loss, progress.best_loss)
        progress = progress._replace(
            best_loss=ops.where(lower, loss, progress.best_loss)
        )
    no_improvement = ops.cast(ops.where(worse, progress.no_improvement + 1, 0), "int32")
    samples_seen = progress.samples_seen + samples
    learning_rate = schedule.after_epoch(
        progress.learning_rate, samples_seen, hyper.solver, solver_state
    )
    triggered = ops.greater(
        ops.cast(no_improvement, learning_rate.dtype), hyper.n_iter_no_change
    )
    plateau_rate, go_on = schedule.on_plateau(learning_rate, hyper.solver)
    learning_rate = ops.where(triggered, plateau_rate, learning_rate)
    no_improvement = ops.cast(
        ops.where(ops.logical_and(triggered, go_on), 0, no_improvement), "int32"
    )
    stopped = ops.logical_and(triggered, ops.logical_not(go_on))
    status = ops.where(stopped, schedule.stop_status, RUNNING)
    status = ops.cast(ops.where(ops.isfinite(loss), status, DIVERGED), "int32")
    progress = progress._replace(
        learning_rate=learning_rate,
        no_improvement=no_improvement,
        samples_seen=samples_seen,
    )
    return progress, triggered, status

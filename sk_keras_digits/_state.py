"""The fitted state: what a call to fit produces, as small immutable records.

A fitted estimator (:class:`~sk_keras_digits.KerasDigitClassifier`,
:class:`~sk_keras_digits.KerasDigitRegressor`) holds one
:class:`FittedState` and nothing else of its own making (scikit-learn's
``validate_data`` adds ``n_features_in_`` and ``feature_names_in_``). Every
public fitted attribute (``coefs_``, ``t_``, ``loss_curve_``, ``classes_``, ...)
is a property of this record, so there is one source of truth:

- :class:`FittedState`: the target encoding, the training state and the
  history of the fits so far;
- :class:`TrainingState`: what the compiled training loop takes and returns:
  the network's :class:`Weights`, the solver's state (:class:`SGDState`,
  :class:`AdamState`, :class:`OptimizerState` for a Keras optimizer, or None
  for ``lbfgs``) and the :class:`Progress` of the
  stopping rules and learning-rate schedule;
- :class:`History`: the per-epoch curves and the loss of the last fit;
- :class:`EpochLog`: what one call into the training loop reports.

The records are :class:`~typing.NamedTuple` s, which ``tf.nest`` maps over, so
the conversion between NumPy arrays and tensors is one generic mapping (in
:mod:`sk_keras_digits._training`) rather than a schema written out by hand.
This module imports neither TensorFlow nor Keras: a pickled estimator is read
back without them.
"""

from typing import NamedTuple

import numpy as np

from ._labels import LabelEncoding
from ._losses import loss_for
from ._targets import RegressionTargets

# Why a call into the training loop stopped before running all its epochs.
RUNNING, CONVERGED, LEARNING_RATE_TOO_SMALL, DIVERGED = 0, 1, 2, 3


class Weights(NamedTuple):
    """The network's variables, in the order of the Keras model's.

    Attributes
    ----------
    params : tuple of ndarray
        Trainable variables (for the default network: kernel, bias, kernel,
        bias, ...).
    buffers : tuple of ndarray
        Non-trainable variables (e.g. batch-normalisation statistics, random
        generator states); empty for the default network.
    """

    params: tuple
    buffers: tuple

    @property
    def coefs(self):
        """Kernels: the trainable variables of rank >= 2."""
        return [p for p in self.params if p.ndim >= 2]

    @property
    def intercepts(self):
        """Biases: the trainable variables of rank 1."""
        return [p for p in self.params if p.ndim == 1]

    @property
    def size(self):
        """Number of trainable scalars."""
        return sum(int(p.size) for p in self.params)

    def all_finite(self):
        """Whether every trainable value is finite."""
        return all(np.isfinite(p).all() for p in self.params)


class SGDState(NamedTuple):
    """State of :class:`~sk_keras_digits._solvers.SGD`.

    Attributes
    ----------
    velocity : ndarray of shape (n_params,)
        The momentum velocity of every trainable scalar, flattened in the
        order of :attr:`Weights.params`.
    """

    velocity: np.ndarray


class AdamState(NamedTuple):
    """State of :class:`~sk_keras_digits._solvers.Adam`.

    Attributes
    ----------
    step : float
        Number of updates applied.
    m, v : ndarray of shape (n_params,)
        First and second moment estimates, flattened in the order of
        :attr:`Weights.params`.
    """

    step: float
    m: np.ndarray
    v: np.ndarray


class OptimizerState(NamedTuple):
    """State of :class:`~sk_keras_digits._keras_optimizer.KerasOptimizer`.

    Attributes
    ----------
    variables : tuple of ndarray
        The values of the Keras optimizer's variables, in the order of its
        ``variables`` attribute once built on the network's trainable
        variables: its ``iterations`` count, its learning-rate variable
        (absent with a learning-rate schedule) and its per-parameter slots
        (moments, accumulators), each shaped like its parameter. The arrays
        keep the optimizer's dtypes (``int64`` for ``iterations``).
    """

    variables: tuple


class Progress(NamedTuple):
    """Where the stopping rules and the learning-rate schedule stand.

    Attributes
    ----------
    learning_rate : float
        The current learning rate.
    best_loss : float
        Lowest training loss so far (``inf`` before the first epoch).
    best_score : float
        Best validation score so far (``-inf`` before the first epoch).
    no_improvement : int
        Consecutive epochs without an improvement of at least ``tol``.
    samples_seen : float
        Training samples processed by the stochastic solver (``t_``), an
        exact count (the estimator counts them after each call; the training
        loop's own count, in the fit's dtype, serves its schedule only).
    best_weights : Weights or None
        The weights that reached ``best_score``: carried by the training loop
        during a fit with early stopping, None otherwise and between fits
        (after such a fit the estimator's weights are the best ones).
    """

    learning_rate: float
    best_loss: float
    best_score: float
    no_improvement: int
    samples_seen: float
    best_weights: Weights | None = None


class TrainingState(NamedTuple):
    """The state the training loop takes and returns.

    Attributes
    ----------
    weights : Weights
    solver : SGDState, AdamState, OptimizerState or None
        None before the first stochastic step and with ``lbfgs``.
    progress : Progress
    """

    weights: Weights
    solver: SGDState | AdamState | OptimizerState | None
    progress: Progress


class EpochLog(NamedTuple):
    """What happened in each epoch of one call to the training loop.

    Attributes
    ----------
    losses : tuple of float
        Training loss of each epoch.
    scores : tuple of float
        Validation score of each epoch (NaN without early stopping).
    learning_rates : tuple of float
        Learning rate after each epoch.
    triggered : tuple of bool
        Whether the ``n_iter_no_change`` rule fired at each epoch.
    status : int
        :data:`RUNNING`, :data:`CONVERGED`, :data:`LEARNING_RATE_TOO_SMALL` or
        :data:`DIVERGED`.
    interrupted : bool
        Whether a ``KeyboardInterrupt`` cut the call short.
    """

    losses: tuple = ()
    scores: tuple = ()
    learning_rates: tuple = ()
    triggered: tuple = ()
    status: int = RUNNING
    interrupted: bool = False

    @property
    def n_epochs(self):
        """Number of epochs in the log."""
        return len(self.losses)

    def extended(self, losses, scores, learning_rates, triggered, status):
        """This log followed by more epochs, the last ending in ``status``."""
        return EpochLog(
            self.losses + tuple(losses),
            self.scores + tuple(scores),
            self.learning_rates + tuple(learning_rates),
            self.triggered + tuple(triggered),
            status,
        )


class History(NamedTuple):
    """The curves of every fit so far (reset by a fit that starts afresh).

    Attributes
    ----------
    losses : tuple of float
        Loss per epoch or ``lbfgs`` iteration (``loss_curve_``).
    scores : tuple of float or None
        Validation score per epoch with early stopping, else None.
    learning_rates : tuple of float or None
        Learning rate after each epoch; None with ``lbfgs``.
    n_iter : int
        Epochs (or iterations) run by the last call to fit.
    loss : float
        The loss at the end of the last call to fit (``loss_``).
    """

    losses: tuple
    scores: tuple | None
    learning_rates: tuple | None
    n_iter: int
    loss: float


class FittedState(NamedTuple):
    """Everything a fit produces; the estimator's public attributes derive from it.

    Attributes
    ----------
    labels : LabelEncoding or RegressionTargets
        The target encoding: a classifier's labels, or a regressor's target
        columns and loss (the field keeps the name model files know it by).
    training : TrainingState
    history : History
    """

    labels: LabelEncoding | RegressionTargets
    training: TrainingState
    history: History

    @classmethod
    def initial(cls, labels, weights, learning_rate, early_stopping):
        """The state before the first epoch of a fit that starts afresh."""
        progress = Progress(
            learning_rate=float(learning_rate),
            best_loss=np.inf,
            best_score=-np.inf,
            no_improvement=0,
            samples_seen=0.0,
        )
        history = History(
            losses=(),
            scores=() if early_stopping else None,
            learning_rates=(),
            n_iter=0,
            loss=np.nan,
        )
        return cls(labels, TrainingState(weights, None, progress), history)

    # -- bookkeeping of a fit ------------------------------------------------
    def after_epochs(self, training, log, scored=True):
        """The state after a stochastic fit: ``training`` reached, ``log`` run.

        ``scored`` says whether the fit scored a validation split: a fit
        without early stopping that continues one with it (``warm_start``)
        keeps the earlier scores and adds none, as MLP; one with early
        stopping that continues one without records its scores from its first
        epoch (where MLP fails).
        """
        history = self.history
        scores = history.scores
        if scored:
            scores = (scores or ()) + log.scores
        return self._replace(
            training=training,
            history=History(
                losses=history.losses + log.losses,
                scores=scores,
                learning_rates=(history.learning_rates or ()) + log.learning_rates,
                n_iter=log.n_epochs,
                loss=log.losses[-1],
            ),
        )

    def after_lbfgs(self, weights, losses, loss, n_iter):
        """The state after an ``lbfgs`` fit reaching ``weights``."""
        all_losses = self.history.losses + tuple(losses)
        progress = self.training.progress._replace(
            best_loss=min(all_losses, default=loss)
        )
        return self._replace(
            training=self.training._replace(weights=weights, progress=progress),
            history=History(
                losses=all_losses,
                scores=None,
                learning_rates=None,
                n_iter=n_iter,
                loss=loss,
            ),
        )

    # -- derived views, the estimator's public attributes -------------------------
    @property
    def weights(self):
        return self.training.weights

    @property
    def early_stopping(self):
        """Whether the fit validated on a held-out split."""
        return self.history.scores is not None

    @property
    def best_loss(self):
        return None if self.early_stopping else self.training.progress.best_loss

    @property
    def no_improvement_count(self):
        """Consecutive epochs without improvement (MLP's ``_no_improvement_count``);
        None after ``lbfgs``, which runs no epochs."""
        if self.history.learning_rates is None:
            return None
        return int(self.training.progress.no_improvement)

    @property
    def best_validation_score(self):
        return self.training.progress.best_score if self.early_stopping else None

    @property
    def validation_scores(self):
        return None if self.history.scores is None else list(self.history.scores)

    @property
    def keras_history(self):
        """Per-epoch history in the form of Keras' ``History.history``."""
        history = {"loss": list(self.history.losses)}
        if self.history.learning_rates is not None:
            history["learning_rate"] = list(self.history.learning_rates)
        if self.history.scores is not None:
            history[self.score_log] = list(self.history.scores)
        return history

    @property
    def score_log(self):
        """The validation score's name in Keras logs: ``val_accuracy`` or ``val_r2``."""
        return f"val_{loss_for(self.labels.out_activation).score_name}"


class FittedEstimator(NamedTuple):
    """A fitted estimator as a record: what a model file holds of it.

    The estimator hands it out (``_fitted_record``) and is restored from it
    (``_from_fitted_record``); persistence uses nothing else of the estimator.

    Attributes
    ----------
    params : dict
        ``get_params(deep=False)``.
    hidden_layer_sizes : tuple of int
        The hidden widths ``hidden_layer_sizes`` gives (unused by a custom
        network).
    n_features_in : int
    feature_names_in : ndarray of str objects or None
    state : FittedState
    """

    params: dict
    hidden_layer_sizes: tuple
    n_features_in: int
    feature_names_in: object
    state: FittedState

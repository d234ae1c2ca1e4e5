"""The training driver: runs a backend's compiled program over a fit.

Training runs whole epochs inside one compiled program of the backend Keras
runs on (:mod:`sk_keras_digits._backends`): the batches, the solver's updates,
the shuffling and MLPClassifier's end-of-epoch bookkeeping (loss curve,
``tol`` / ``n_iter_no_change`` convergence, learning-rate schedules, early
stopping on a validation split) all happen inside it. Python sees the results
once per call: a call covers as many epochs as fit in :data:`CHUNK_SAMPLES`
samples, or one epoch when the caller needs to act after every epoch (verbose
output, Keras callbacks).

The programs are *pure*: a :class:`~sk_keras_digits._state.TrainingState`
goes in and a new one comes out, with an epoch log. Nothing is stored in Keras
variables, so a compiled program is shared by every estimator, fit and thread
with the same :meth:`TrainingConfig.program_key` on the same backend, and is
compiled once per process. Programs live in a bounded least-recently-used
cache (:data:`CACHE_SIZE` entries). ``lbfgs`` runs SciPy's L-BFGS-B on a
program's full-batch loss and gradient.

This module is backend-neutral: it imports the backend module when it trains.
"""

import math
from typing import NamedTuple

import numpy as np
import scipy.optimize

from ._backends import current
from ._backends._groups import carries_flat
from ._cache import LRUCache
from ._network import aligned_weights
from ._padding import WidthPadding, padded_rows, pads_data, pads_widths
from ._shuffle import EpochOrders, capacity
from ._state import RUNNING, EpochLog, Weights
from ._training_config import Hyper, TrainingConfig, TrainingData

__all__ = ["Hyper", "TrainingConfig", "TrainingData", "train_lbfgs", "train_stochastic"]

#: Most compiled programs kept alive at once.
CACHE_SIZE = 16

#: Most samples (epochs x rows) processed by one call into the compiled loop.
CHUNK_SAMPLES = 2_000_000

PROGRAMS = LRUCache(CACHE_SIZE)


class FitLayout:
    """How one stochastic fit's arrays are padded for its compiled program.

    See :mod:`sk_keras_digits._padding`. Built by :meth:`plan`.

    Attributes
    ----------
    n_rows : int
        The real rows of the training data (the padded rows follow them).
    widths : WidthPadding or None
        The width padding of the default network with a built-in solver.
    rows : bool
        Whether the rows are padded (the network's rows are independent).
    flat : bool
        Whether the loop carries the parameters as one flat vector
        (:mod:`sk_keras_digits._backends._groups`).
    """

    def __init__(self, n_rows, widths, rows, flat=False):
        self.n_rows = n_rows
        self.widths = widths
        self.rows = rows
        self.flat = flat

    @classmethod
    def plan(cls, network, config, n_rows, pad=True):
        """The layout of a fit of ``network`` on ``n_rows`` rows.

        With ``pad=False`` nothing is padded: the reference a padded fit is
        compared with. Large data (:func:`~sk_keras_digits._padding.pads_data`)
        are padded only in hidden widths.
        """
        widths, rows = None, False
        if network.rows_independent:  # the default network
            units = network.layer_units
            if pad:
                rows = pads_data(n_rows, units[0])
                if pads_widths(network, config.solver):
                    widths = WidthPadding(units, inputs=rows)
                    units = widths.padded_units
            n_params = sum(
                (a + 1) * b for a, b in zip(units[:-1], units[1:], strict=False)
            )
        else:
            n_params = sum(int(np.prod(shape)) for shape, _ in network.param_shapes)
        flat = carries_flat(n_params, config.solver)
        return cls(n_rows, widths, rows, flat)

    @property
    def masked(self):
        """Whether the widths are padded (and the gradient masked)."""
        return self.widths is not None

    @property
    def mask(self):
        """The flat gradient mask (None without width padding)."""
        return None if self.widths is None else self.widths.mask

    def pad(self, state, data, validation):
        """The state, data and validation split as the program takes them."""
        if self.widths is not None:
            state = self.widths.pad_state(state)
            data = self.widths.pad_data(data)
            validation = self.widths.pad_data(validation)
        if self.rows:
            data = padded_rows(data)
            if validation is not None:
                validation = padded_rows(validation)
        return state, data, validation

    def unpad_weights(self, weights):
        """Weights (NumPy or tensors) in the network's real shapes."""
        return weights if self.widths is None else self.widths.unpad_weights(weights)

    def unpad_state(self, state):
        """A returned state (NumPy) in the network's real shapes."""
        return state if self.widths is None else self.widths.unpad_state(state)


def get_program(network, config=None, state=None, layout=None):
    """Return the backend's compiled program for ``network`` and ``config``.

    ``config=None`` gives the program for prediction and ``lbfgs``; a training
    program is compiled for the structure of ``state`` (a TrainingState) and
    the padding of ``layout`` (a :class:`FitLayout`).
    """
    backend = current()
    if config is None:
        key = (network.trace_key,)
    else:
        key = (
            *config.program_key(network, state),
            layout.rows,
            layout.masked,
            layout.flat,
        )
    return PROGRAMS.get(
        (backend.NAME, *key),
        lambda: backend.TrainingProgram(network.skeleton(), config, state, layout),
    )


def train_stochastic(
    network,
    config,
    state,
    data,
    validation,
    n_epochs,
    seed,
    on_epoch_end=None,
    pad=True,
):
    """Train with a stochastic solver for up to ``n_epochs`` epochs.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
    config : TrainingConfig
    state : TrainingState
        The state to start from (NumPy arrays), with a solver state.
    data : TrainingData
    validation : TrainingData or None
        The validation split, with early stopping.
    n_epochs : int
        Most epochs to run.
    seed : int
        Seed of the in-graph shuffling.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch_index, log, weights)`` after every epoch, with the
        weights as the backend's tensors; returning True stops training.
        Makes every call run one epoch.
    pad : bool, default=True
        Whether to pad the default network's data and widths to their buckets
        (:mod:`sk_keras_digits._padding`); the result is the same either way,
        to the rounding of sums, and padded fits share compiled programs.

    Returns
    -------
    state : TrainingState
        The new state (NumPy arrays). With early stopping its
        ``progress.best_weights`` holds the best weights.
    log : EpochLog
    """
    state = state._replace(
        weights=aligned_weights(network, state.weights),
        solver=config.solver.aligned_state(state.solver, state.weights),
    )
    if config.early_stopping:
        best = state.progress._replace(best_weights=state.weights)
        state = state._replace(progress=best)
    n_samples = data.X.shape[0]
    layout = FitLayout.plan(network, config, n_samples, pad)
    state, data, validation = layout.pad(state, data, validation)
    program = get_program(network, config, state, layout)
    inputs, tensors = program.prepare(state, data, validation, config.hyper, layout)
    rows = len(data.X)
    batch_size = min(config.batch_size, n_samples)  # as MLPClassifier clips it
    if layout.rows and batch_size == n_samples:
        # One batch per epoch: all the padded rows (the padding weighs zero),
        # so that full-batch fits of every size in a bucket share a program.
        batch_size = rows
    if on_epoch_end is None:
        chunk = max(1, min(n_epochs, math.ceil(CHUNK_SAMPLES / max(n_samples, 1))))
    else:
        chunk = 1
    done, log = 0, EpochLog()
    shuffler = EpochOrders(seed, layout.n_rows, rows) if config.shuffle else None
    # The results of the last completed call, committed in one assignment: an
    # interrupt (handled between Python calls) never leaves the weights and
    # the log of epochs out of step.
    committed = (done, tensors, log)
    try:
        while done < n_epochs and log.status == RUNNING:
            count = min(chunk, n_epochs - done)
            length = capacity(count, rows)
            orders = None if shuffler is None else shuffler.draw(count, length)
            result = program.run(tensors, inputs, batch_size, count, length, orders)
            new_log = log.extended(**result.curves, status=result.status)
            committed = (done + result.epochs, result.state, new_log)
            done, tensors, log = committed
            if on_epoch_end is not None and on_epoch_end(
                done - 1, log, layout.unpad_weights(tensors.weights)
            ):
                break
    except KeyboardInterrupt:
        done, tensors, log = committed
        if done == 0:
            raise
        log = log._replace(interrupted=True)
    return layout.unpad_state(program.to_numpy(tensors, like=state)), log


class LbfgsRun(NamedTuple):
    """What :func:`train_lbfgs` returns."""

    weights: Weights
    result: scipy.optimize.OptimizeResult
    losses: list


def train_lbfgs(network, weights, data, alpha, max_iter, max_fun, tol, verbose):
    """Minimise the loss with SciPy's L-BFGS-B on Keras-computed gradients.

    As MLPClassifier's ``lbfgs`` solver: the whole training set is one batch,
    and SciPy stops at ``max_iter`` iterations, ``max_fun`` evaluations or a
    projected gradient below ``tol``.

    Returns
    -------
    run : LbfgsRun
        The weights reached, SciPy's result and the loss after each iteration.
    """
    program = get_program(network)
    weights = aligned_weights(network, weights)
    objective = program.objective(weights, data, alpha)
    shapes = [np.shape(p) for p in weights.params]
    splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    dtype = weights.params[0].dtype
    losses = []

    def callback(intermediate_result):
        losses.append(float(intermediate_result.fun))
        if verbose:
            print(f"Iteration {len(losses)}, loss = {losses[-1]:.8f}")

    start = np.concatenate([np.ravel(p) for p in weights.params]).astype(np.float64)
    options = {"maxfun": max_fun, "maxiter": max_iter, "gtol": tol}
    result = scipy.optimize.minimize(
        objective,
        start,
        method="L-BFGS-B",
        jac=True,
        options=options,
        callback=callback,
    )
    params = tuple(
        part.reshape(shape).astype(dtype)
        for part, shape in zip(np.split(result.x, splits), shapes, strict=True)
    )
    return LbfgsRun(weights._replace(params=params), result, losses)

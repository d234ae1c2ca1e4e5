"""The compiled training loop.

Training runs whole epochs inside one compiled TensorFlow function: the batches,
the solver's updates, the shuffling (stateless, from a seed drawn from
``random_state``) and MLPClassifier's end-of-epoch bookkeeping (loss curve,
``tol`` / ``n_iter_no_change`` convergence, learning-rate schedules, early
stopping on a validation split) all happen in the graph. Python sees the
results once per call: a call covers as many epochs as fit in
:data:`CHUNK_SAMPLES` samples, or one epoch when the caller needs to act after
every epoch (verbose output, Keras callbacks).

The functions are *pure*: a :class:`~sk_keras_digits._state.TrainingState`
goes in as tensors and a new one comes out, with an epoch log. The conversion
between the NumPy records of :mod:`sk_keras_digits._state` and tensors, and the
program's input signature, are one generic ``tf.nest`` mapping over those
records (:func:`signature`, :func:`to_tensors`, :func:`to_numpy`). Nothing is
stored in Keras variables, so a compiled program is shared by every estimator,
fit and thread with the same :meth:`TrainingConfig.program_key`, and is traced
once per process. The batch dimension (and, for the default dense network, the
layer widths) are left dynamic, so new data sizes and new
``hidden_layer_sizes`` of the same depth do not retrace. Programs
live in a bounded least-recently-used cache (:data:`CACHE_SIZE` entries).
"""

import contextlib
import functools
import math
import threading
from typing import NamedTuple

import numpy as np
import scipy.optimize
import tensorflow as tf

from ._cache import LRUCache
from ._state import DIVERGED, RUNNING, EpochLog, TrainingState, Weights
from ._training_config import Hyper, TrainingConfig, TrainingData

__all__ = ["Hyper", "TrainingConfig", "TrainingData", "train_lbfgs", "train_stochastic"]

#: Most compiled programs kept alive at once.
CACHE_SIZE = 16

#: Most samples (epochs x rows) processed by one call into the compiled loop.
CHUNK_SAMPLES = 2_000_000


class EpochCurves(NamedTuple):
    """Per-epoch values of one call into the loop (tensors)."""

    losses: object
    scores: object
    learning_rates: object
    triggered: object


class ChunkResult(NamedTuple):
    """What one call into the compiled loop returns (tensors)."""

    state: TrainingState
    curves: EpochCurves
    epochs: object
    status: object


# ------------------------------------------------- NumPy records <-> tensors
def _leaf_spec(value, dtype, dynamic):
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        shape = [None] * value.ndim if dynamic else value.shape
        return tf.TensorSpec(shape, value.dtype)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return tf.TensorSpec([], tf.int32)
    return tf.TensorSpec([], dtype)


def signature(structure, dtype, dynamic):
    """``tf.TensorSpec`` s for a record of NumPy arrays and Python numbers.

    Arrays keep their dtype (with every dimension unknown when ``dynamic``);
    Python floats take the compute ``dtype`` and ints ``int32``; None (a part
    that is absent, such as ``Progress.best_weights`` without early stopping)
    stays None, and :func:`input_signature` turns it into ``()``.
    """
    return tf.nest.map_structure(
        functools.partial(_leaf_spec, dtype=dtype, dynamic=dynamic), structure
    )


def input_signature(spec):
    """``spec`` as ``tf.function`` takes it: absent parts as empty tuples."""
    return tf.nest.map_structure(lambda s: () if s is None else s, spec)


def to_tensors(structure, spec):
    """The NumPy record ``structure`` as tensors of ``spec``'s dtypes."""
    return tf.nest.map_structure(
        lambda s, v: () if s is None else tf.convert_to_tensor(v, s.dtype),
        spec,
        structure,
    )


def to_numpy(tensors, like):
    """Tensors back to the NumPy record ``like`` has: same types, None kept.

    ``tensors`` has the structure of ``like`` except where ``like`` holds None
    (an absent part, which went through the program as ``()``).
    """
    if like is None:
        return None
    if isinstance(like, tuple):
        values = [to_numpy(t, v) for t, v in zip(tensors, like, strict=True)]
        return type(like)(*values) if hasattr(like, "_fields") else tuple(values)
    if isinstance(like, np.ndarray):
        return np.asarray(tensors.numpy())  # a 0-d array stays an array
    return type(like)(tensors.numpy())


PROGRAMS = LRUCache(CACHE_SIZE)


def get_program(network, config=None, state=None):
    """Return the compiled program for ``network`` and ``config``.

    ``config=None`` gives the program for prediction and ``lbfgs``; a training
    program is traced for the structure of ``state`` (a TrainingState).
    """
    key = (network.trace_key,) if config is None else config.program_key(network, state)
    return PROGRAMS.get(key, lambda: TrainingProgram(network.skeleton(), config, state))


def _batch_loss(network, params, proba, y, sw, extra_losses, alpha):
    """MLPClassifier's loss: weighted log-loss plus the scaled L2 penalty.

    The probabilities are clipped to ``[eps, 1 - eps]`` as scikit-learn clips
    them; the clipping is straight-through for the gradient, so a saturated
    output still gets scikit-learn's ``proba - y`` error signal.
    """
    dtype = proba.dtype
    eps = tf.constant(np.finfo(dtype.as_numpy_dtype).eps, dtype)
    p = proba + tf.stop_gradient(tf.clip_by_value(proba, eps, 1 - eps) - proba)
    if network.out_activation == "softmax":
        per_sample = -tf.reduce_sum(y * tf.math.log(p), axis=1)
    else:
        per_sample = -tf.reduce_sum(
            y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p), axis=1
        )
    sw_sum = tf.reduce_sum(sw)
    loss = tf.reduce_sum(sw * per_sample) / sw_sum
    penalized = [tf.reduce_sum(tf.square(params[i])) for i in network.penalized]
    if penalized:
        loss += 0.5 * alpha * tf.add_n(penalized) / sw_sum
    if extra_losses:
        loss += tf.cast(tf.add_n(list(extra_losses)), dtype)
    return loss


def _flattener(tensors):
    """Functions packing tensors shaped like ``tensors`` into one vector and back.

    Shapes are read at run time, so dynamic layer widths are fine.
    """
    shapes = [tf.shape(t) for t in tensors]
    sizes = tf.stack([tf.size(t) for t in tensors])

    def pack(parts):
        return tf.concat([tf.reshape(p, [-1]) for p in parts], axis=0)

    def unpack(flat):
        parts = tf.split(flat, sizes, num=len(shapes))
        return [tf.reshape(p, shape) for p, shape in zip(parts, shapes, strict=True)]

    return pack, unpack


def _predicted_indicator(network, proba):
    """Predicted labels as an indicator matrix, as LabelBinarizer decodes them."""
    if network.out_activation == "softmax":
        return tf.one_hot(
            tf.argmax(proba, axis=1), tf.shape(proba)[1], dtype=proba.dtype
        )
    return tf.cast(proba > 0.5, proba.dtype)


def _compile(method, **options):
    """``tf.function`` of a program's method, traced once per program.

    TensorFlow counts traces per underlying code object and would take the
    single trace of each of many programs for excessive retracing of one
    function; a ``functools.partial`` is counted as an object of its own.
    """
    return tf.function(functools.partial(method), **options)


class TrainingProgram:
    """The compiled functions for one network structure and training setting.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
        The network whose ``forward`` is traced (a skeleton owned by the
        program: its variables are never read or written during training).
    config : TrainingConfig or None
        None for a program that only predicts and computes full-batch losses.
        Only its graph-shaping settings are kept: the numbers are inputs.
    state : TrainingState or None
        An example of the state the program trains (its structure and dtypes).
    """

    def __init__(self, network, config=None, state=None):
        self.network = network
        dtype = network.compute_dtype
        dynamic = network.dynamic_shapes
        weights = Weights(tuple(network.param_specs), tuple(network.buffer_specs))
        n_features = getattr(network, "n_features", None)
        x = tf.TensorSpec([None, n_features], dtype)
        data = TrainingData(
            x, tf.TensorSpec([None, None], dtype), tf.TensorSpec([None], dtype)
        )
        scalar = tf.TensorSpec([], dtype)
        self._predict = _compile(
            self._predict_impl,
            input_signature=[weights, x],
            autograph=False,
            reduce_retracing=True,
        )
        self._loss_and_grad = _compile(
            self._loss_and_grad_impl,
            input_signature=[weights, data, scalar],
            autograph=False,
        )
        if config is None:
            return
        self.shuffle = config.shuffle
        self.early_stopping = config.early_stopping
        if config.solver.stateful:
            # The solver's variables have the parameters' exact shapes.
            dynamic = False
            weights = signature(state.weights, dtype, dynamic)
        self.solver = config.solver.bind(weights.params)
        # A stateful solver's program holds variables that every call loads
        # with its own state and reads back: calls are serialised, so that
        # threads (and the estimators they fit) never see each other's state.
        self._lock = (
            threading.Lock() if config.solver.stateful else contextlib.nullcontext()
        )
        self.state_spec = signature(state, dtype, dynamic)._replace(weights=weights)
        if config.early_stopping:
            progress = self.state_spec.progress._replace(best_weights=weights)
            self.state_spec = self.state_spec._replace(progress=progress)
        # Every number of a configuration is a float of the compute dtype,
        # whatever Python or NumPy type spelled it (``momentum=0``,
        # ``np.int64(1)``): the program is shared by configurations that
        # spell the same setting differently.
        self.hyper_spec = tf.nest.map_structure(
            lambda _: tf.TensorSpec([], dtype), config.hyper
        )
        self._run = _compile(
            self._run_impl,
            input_signature=[
                input_signature(self.state_spec),
                data,
                data if config.early_stopping else (),
                self.hyper_spec,
                tf.TensorSpec([], tf.int32),  # batch_size
                tf.TensorSpec([], tf.int32),  # n_epochs
                tf.TensorSpec([2], tf.int64),  # shuffle seed
            ],
            autograph=False,
        )

    # -- inference ---------------------------------------------------------
    def _predict_impl(self, weights, x):
        proba, _, _ = self.network.forward(weights.params, weights.buffers, x, False)
        return proba

    def predict(self, weights, X):
        """Probabilities of ``X`` under ``weights`` (NumPy in and out)."""
        return self._predict(weights, X).numpy()

    # -- full-batch loss and gradient (lbfgs) --------------------------------
    def _loss_and_grad_impl(self, weights, data, alpha):
        params = list(weights.params)
        with tf.GradientTape() as tape:
            tape.watch(params)
            proba, _, extra = self.network.forward(
                params, weights.buffers, data.X, True
            )
            loss = _batch_loss(
                self.network, params, proba, data.Y, data.sample_weight, extra, alpha
            )
        return loss, tape.gradient(loss, params)

    def loss_and_grad(self, weights, data, alpha):
        """Full-batch loss and its gradients with respect to ``weights.params``."""
        return self._loss_and_grad(weights, data, alpha)

    # -- stochastic epochs ---------------------------------------------------
    def _run_impl(self, state, data, validation, hyper, batch_size, n_epochs, seed):
        network, solver = self.network, self.solver
        schedule = solver.schedule
        dtype = data.X.dtype
        n = tf.shape(data.X)[0]
        n_float = tf.cast(n, dtype)
        n_batches = (n + batch_size - 1) // batch_size
        # Inside the loops the parameters travel as one flat vector (as do the
        # solver's moments): fewer loop variables and fewer update ops a step.
        pack, unpack = _flattener(state.weights.params)

        def run_batch(i, flat, buffers, solver_state, total, batches, lr):
            start = i * batch_size
            stop = tf.minimum(start + batch_size, n)
            xb, yb, wb = (part[start:stop] for part in batches)
            params = unpack(flat)
            with tf.GradientTape() as tape:
                tape.watch(params)
                proba, new_buffers, extra = network.forward(params, buffers, xb, True)
                loss = _batch_loss(network, params, proba, yb, wb, extra, hyper.alpha)
            grads = tape.gradient(loss, params)
            if solver.flat:
                flat, solver_state = solver.update(
                    flat, pack(grads), solver_state, lr, hyper.solver
                )
            else:
                params, solver_state = solver.update(
                    params, grads, solver_state, lr, hyper.solver
                )
                flat = pack(params)
            total += loss * tf.cast(stop - start, dtype)
            return i + 1, flat, tuple(new_buffers), solver_state, total

        def run_epoch(epoch, flat, buffers, solver_state, progress, curves, status):
            batches = data
            if self.shuffle:
                # One gather per epoch; the batches are then contiguous slices.
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(n), seed=seed + tf.stack([0, tf.cast(epoch, tf.int64)])
                )
                batches = tuple(tf.gather(part, order) for part in data)
            lr = progress.learning_rate
            _, flat, buffers, solver_state, total = tf.while_loop(
                lambda i, *_: i < n_batches,
                lambda i, p, b, s, t: run_batch(i, p, b, s, t, batches, lr),
                (tf.constant(0), flat, buffers, solver_state, tf.zeros([], dtype)),
            )
            loss = total / n_float
            samples_seen = progress.samples_seen + n_float
            tol = hyper.tol
            if self.early_stopping:
                proba, _, _ = network.forward(
                    unpack(flat), buffers, validation.X, False
                )
                hits = tf.reduce_all(
                    tf.equal(_predicted_indicator(network, proba), validation.Y),
                    axis=1,
                )
                weight = validation.sample_weight
                score = tf.reduce_sum(weight * tf.cast(hits, dtype)) / tf.reduce_sum(
                    weight
                )
                worse = score < progress.best_score + tol
                better = score > progress.best_score
                best = progress.best_weights
                progress = progress._replace(
                    best_score=tf.where(better, score, progress.best_score),
                    best_weights=Weights(
                        (tf.where(better, flat, best.params[0]),),
                        tuple(
                            tf.where(better, b, bb)
                            for b, bb in zip(buffers, best.buffers, strict=True)
                        ),
                    ),
                )
            else:
                score = tf.constant(np.nan, dtype)
                worse = loss > progress.best_loss - tol
                progress = progress._replace(
                    best_loss=tf.where(
                        loss < progress.best_loss, loss, progress.best_loss
                    )
                )
            no_improvement = tf.where(worse, progress.no_improvement + 1, 0)
            lr = schedule.after_epoch(lr, samples_seen, hyper.solver)
            triggered = tf.cast(no_improvement, dtype) > hyper.n_iter_no_change
            plateau_lr, go_on = schedule.on_plateau(lr, hyper.solver)
            lr = tf.where(triggered, plateau_lr, lr)
            no_improvement = tf.where(triggered & go_on, 0, no_improvement)
            status = tf.where(triggered & ~go_on, schedule.stop_status, RUNNING)
            status = tf.where(tf.math.is_finite(loss), status, DIVERGED)
            progress = progress._replace(
                learning_rate=lr,
                no_improvement=no_improvement,
                samples_seen=samples_seen,
            )
            curves = EpochCurves(
                curves.losses.write(epoch, loss),
                curves.scores.write(epoch, score),
                curves.learning_rates.write(epoch, lr),
                curves.triggered.write(epoch, triggered),
            )
            return epoch + 1, flat, buffers, solver_state, progress, curves, status

        def new_curve(curve_dtype):
            return tf.TensorArray(curve_dtype, size=0, dynamic_size=True)

        curves = EpochCurves(
            new_curve(dtype), new_curve(dtype), new_curve(dtype), new_curve(tf.bool)
        )
        progress = state.progress
        if self.early_stopping:
            best = progress.best_weights
            progress = progress._replace(
                best_weights=Weights((pack(best.params),), best.buffers)
            )
        solver_state = solver.start(state.weights.params, state.solver)
        epoch, flat, buffers, solver_state, progress, curves, status = tf.while_loop(
            lambda e, p, b, s, g, c, st: (e < n_epochs) & tf.equal(st, RUNNING),
            run_epoch,
            (
                tf.constant(0),
                pack(state.weights.params),
                state.weights.buffers,
                solver_state,
                progress,
                curves,
                tf.constant(RUNNING),
            ),
        )
        if self.early_stopping:
            best = progress.best_weights
            progress = progress._replace(
                best_weights=Weights(tuple(unpack(best.params[0])), best.buffers)
            )
        new_state = TrainingState(
            Weights(tuple(unpack(flat)), buffers), solver.finish(solver_state), progress
        )
        curves = EpochCurves(*(c.stack() for c in curves))
        return ChunkResult(new_state, curves, epoch, status)

    def run(self, state, data, validation, hyper, batch_size, n_epochs, seed):
        """Run up to ``n_epochs`` epochs (tensors in, :class:`ChunkResult` out)."""
        with self._lock:
            return self._run(
                state,
                data,
                validation,
                hyper,
                tf.constant(batch_size, tf.int32),
                tf.constant(n_epochs, tf.int32),
                tf.constant(seed, tf.int64),
            )


def _data_tensors(data, dtype):
    """``data`` (a TrainingData) as tensors of the compute dtype."""
    return TrainingData(*(tf.convert_to_tensor(v, dtype) for v in data))


def train_stochastic(
    network, config, state, data, validation, n_epochs, seed, on_epoch_end=None
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
        weights as tensors; returning True stops training. Makes every call
        run one epoch.

    Returns
    -------
    state : TrainingState
        The new state (NumPy arrays). With early stopping its
        ``progress.best_weights`` holds the best weights.
    log : EpochLog
    """
    if config.early_stopping:
        best = state.progress._replace(best_weights=state.weights)
        state = state._replace(progress=best)
    program = get_program(network, config, state)
    dtype = network.compute_dtype
    tensors = to_tensors(state, program.state_spec)
    hyper = to_tensors(config.hyper, program.hyper_spec)
    data = _data_tensors(data, dtype)
    validation = () if validation is None else _data_tensors(validation, dtype)
    n_samples = data.X.shape[0]
    if on_epoch_end is None:
        chunk = max(1, min(n_epochs, math.ceil(CHUNK_SAMPLES / max(n_samples, 1))))
    else:
        chunk = 1
    done, log = 0, EpochLog()
    # The results of the last completed call, committed in one assignment: an
    # interrupt (handled between Python calls) never leaves the weights and
    # the log of epochs out of step.
    committed = (done, tensors, log)
    try:
        while done < n_epochs and log.status == RUNNING:
            result = program.run(
                tensors,
                data,
                validation,
                hyper,
                config.batch_size,
                min(chunk, n_epochs - done),
                [seed, done],
            )
            curves = {k: v.numpy().tolist() for k, v in result.curves._asdict().items()}
            new_log = log.extended(**curves, status=int(result.status))
            committed = (done + int(result.epochs), result.state, new_log)
            done, tensors, log = committed
            if on_epoch_end is not None and on_epoch_end(
                done - 1, log, tensors.weights
            ):
                break
    except KeyboardInterrupt:
        done, tensors, log = committed
        if done == 0:
            raise
        log = log._replace(interrupted=True)
    return to_numpy(tensors, like=state), log


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
    dtype = network.compute_dtype
    shapes = [np.shape(p) for p in weights.params]
    sizes = [int(np.prod(s)) for s in shapes]
    splits = np.cumsum(sizes)[:-1]
    data = _data_tensors(data, dtype)
    alpha = tf.constant(alpha, dtype)
    buffers = tuple(tf.convert_to_tensor(b) for b in weights.buffers)

    def unpack(flat):
        return tuple(
            tf.convert_to_tensor(part.reshape(shape), dtype)
            for part, shape in zip(np.split(flat, splits), shapes, strict=True)
        )

    def objective(flat):
        loss, grads = program.loss_and_grad(Weights(unpack(flat), buffers), data, alpha)
        grad = np.concatenate([g.numpy().ravel() for g in grads]).astype(np.float64)
        return float(loss), grad

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
    params = tuple(p.numpy() for p in unpack(result.x))
    return LbfgsRun(weights._replace(params=params), result, losses)

"""The compiled training loop.

Training runs whole epochs inside one compiled TensorFlow function: the batches,
the solver's updates, the shuffling (stateless, from a seed drawn from
``random_state``) and MLPClassifier's end-of-epoch bookkeeping (loss curve,
``tol`` / ``n_iter_no_change`` convergence, learning-rate schedules, early
stopping on a validation split) all happen in the graph. Python sees the
results once per call: a call covers as many epochs as fit in
:data:`CHUNK_SAMPLES` samples, or one epoch when the caller needs to act after
every epoch (verbose output, Keras callbacks).

The functions are *pure*: parameters, solver state and loop state go in as
tensors and come out as new tensors. Nothing is stored in Keras variables, so a
compiled program is shared by every estimator, fit and thread with the same
:func:`program_key`, and is traced once per process. The batch dimension (and,
for the default dense network, the layer widths) are left dynamic, so new data
sizes and new ``hidden_layer_sizes`` of the same depth do not retrace. Programs
live in a bounded least-recently-used cache (:data:`CACHE_SIZE` entries).
"""

import collections
import functools
import math
import threading

import numpy as np
import scipy.optimize
import tensorflow as tf

from . import _solvers

#: Most compiled programs kept alive at once.
CACHE_SIZE = 16

#: Most samples (epochs x rows) processed by one call into the compiled loop.
CHUNK_SAMPLES = 2_000_000

# Why a call stopped before running all its epochs.
RUNNING, CONVERGED, LEARNING_RATE_TOO_SMALL, DIVERGED = 0, 1, 2, 3

HYPER_PARAMETERS = (
    "learning_rate_init",
    "momentum",
    "beta_1",
    "beta_2",
    "epsilon",
    "alpha",
    "tol",
    "power_t",
    "n_iter_no_change",
)


def program_key(network, solver, nesterov, schedule, shuffle, validation):
    """The settings that shape the compiled graph (everything else is an input)."""
    return (
        network.trace_key,
        solver,
        bool(nesterov),
        schedule,
        bool(shuffle),
        bool(validation),
    )


class _ProgramCache:
    """A thread-safe LRU cache of compiled programs."""

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self._programs = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, factory):
        with self._lock:
            program = self._programs.get(key)
            if program is None:
                program = factory()
                self._programs[key] = program
                while len(self._programs) > self.maxsize:
                    self._programs.popitem(last=False)
            else:
                self._programs.move_to_end(key)
            return program

    def __len__(self):
        return len(self._programs)

    def clear(self):
        with self._lock:
            self._programs.clear()


PROGRAMS = _ProgramCache(CACHE_SIZE)


def get_program(
    network,
    solver=None,
    nesterov=False,
    schedule="constant",
    shuffle=False,
    validation=False,
):
    """Return the compiled program for ``network`` and these solver settings.

    ``solver=None`` gives the program for prediction and ``lbfgs``.
    """
    key = program_key(network, solver, nesterov, schedule, shuffle, validation)
    return PROGRAMS.get(
        key,
        lambda: TrainingProgram(
            network.skeleton(), solver, nesterov, schedule, shuffle, validation
        ),
    )


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
    """The compiled functions for one network structure and solver setting.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
        The network whose ``forward`` is traced (a skeleton owned by the
        program: its variables are never read or written during training).
    solver : {"sgd", "adam"} or None
        None for a program that only predicts and computes full-batch losses.
    nesterov : bool
    schedule : {"constant", "invscaling", "adaptive"}
    shuffle : bool
    validation : bool
        Whether epochs end by scoring a validation set (early stopping).
    """

    def __init__(self, network, solver, nesterov, schedule, shuffle, validation):
        self.network = network
        self.solver = solver
        self.nesterov = nesterov
        self.schedule = schedule
        self.shuffle = shuffle
        self.validation = validation
        dtype = network.compute_dtype
        params = network.param_specs
        buffers = network.buffer_specs
        n_features = getattr(network, "n_features", None)
        x = tf.TensorSpec([None, n_features], dtype)
        y = tf.TensorSpec([None, None], dtype)
        w = tf.TensorSpec([None], dtype)
        scalar = tf.TensorSpec([], dtype)
        self._predict = _compile(
            self._predict_impl,
            input_signature=[params, buffers, x],
            autograph=False,
            reduce_retracing=True,
        )
        self._loss_and_grad = _compile(
            self._loss_and_grad_impl,
            input_signature=[params, buffers, x, y, w, scalar],
            autograph=False,
        )
        if solver in _solvers.STOCHASTIC_SOLVERS:
            loop = {
                "learning_rate": scalar,
                "best_loss": scalar,
                "best_score": scalar,
                "no_improvement": tf.TensorSpec([], tf.int32),
                "t": scalar,
                "best_params": params,
                "best_buffers": buffers,
            }
            hyper = {name: scalar for name in HYPER_PARAMETERS}
            self._run = _compile(
                self._run_impl,
                input_signature=[
                    params,
                    buffers,
                    _solvers.state_spec(solver, params),
                    loop,
                    x,
                    y,
                    w,
                    x,
                    y,
                    w,
                    hyper,
                    tf.TensorSpec([], tf.int32),  # batch_size
                    tf.TensorSpec([], tf.int32),  # n_epochs
                    tf.TensorSpec([2], tf.int64),  # shuffle seed
                ],
                autograph=False,
            )

    # -- inference ---------------------------------------------------------
    def _predict_impl(self, params, buffers, x):
        proba, _, _ = self.network.forward(params, buffers, x, False)
        return proba

    def predict(self, params, buffers, X):
        """Probabilities of ``X`` under the given weights (NumPy in and out)."""
        return self._predict(list(params), list(buffers), X).numpy()

    # -- full-batch loss and gradient (lbfgs) --------------------------------
    def _loss_and_grad_impl(self, params, buffers, x, y, sw, alpha):
        with tf.GradientTape() as tape:
            tape.watch(params)
            proba, _, extra = self.network.forward(params, buffers, x, True)
            loss = _batch_loss(self.network, params, proba, y, sw, extra, alpha)
        return loss, tape.gradient(loss, params)

    def loss_and_grad(self, params, buffers, X, Y, sw, alpha):
        """Full-batch loss and its gradients with respect to ``params``."""
        return self._loss_and_grad(list(params), list(buffers), X, Y, sw, alpha)

    # -- stochastic epochs ---------------------------------------------------
    def _run_impl(
        self,
        params,
        buffers,
        opt,
        loop,
        x,
        y,
        sw,
        x_val,
        y_val,
        sw_val,
        hyper,
        batch_size,
        n_epochs,
        seed,
    ):
        network = self.network
        dtype = x.dtype
        n = tf.shape(x)[0]
        n_float = tf.cast(n, dtype)
        n_batches = (n + batch_size - 1) // batch_size
        schedule = self.schedule
        # Inside the loops the parameters (and each solver moment) travel as
        # one flat vector: fewer loop variables and fewer update ops per step.
        pack, unpack = _flattener(params)

        def run_batch(i, flat, buffers, opt, total, data, lr):
            start = i * batch_size
            stop = tf.minimum(start + batch_size, n)
            xb, yb, wb = (part[start:stop] for part in data)
            params = unpack(flat)
            with tf.GradientTape() as tape:
                tape.watch(params)
                proba, new_buffers, extra = network.forward(params, buffers, xb, True)
                loss = _batch_loss(
                    network, params, proba, yb, wb, extra, hyper["alpha"]
                )
            grads = pack(tape.gradient(loss, params))
            step_hyper = dict(hyper, learning_rate=lr)
            (flat,), opt = _solvers.apply_updates(
                self.solver, self.nesterov, [flat], [grads], opt, step_hyper
            )
            total += loss * tf.cast(stop - start, dtype)
            return i + 1, flat, list(new_buffers), opt, total

        def run_epoch(epoch, flat, buffers, opt, loop, curves, status):
            data = (x, y, sw)
            if self.shuffle:
                # One gather per epoch; the batches are then contiguous slices.
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(n), seed=seed + tf.stack([0, tf.cast(epoch, tf.int64)])
                )
                data = tuple(tf.gather(part, order) for part in data)
            lr = loop["learning_rate"]
            _, flat, buffers, opt, total = tf.while_loop(
                lambda i, *_: i < n_batches,
                lambda i, p, b, o, t: run_batch(i, p, b, o, t, data, lr),
                [tf.constant(0), flat, buffers, opt, tf.zeros([], dtype)],
            )
            loss = total / n_float
            loop = dict(loop, t=loop["t"] + n_float)
            tol = hyper["tol"]
            if self.validation:
                proba, _, _ = network.forward(unpack(flat), buffers, x_val, False)
                hits = tf.reduce_all(
                    tf.equal(_predicted_indicator(network, proba), y_val), axis=1
                )
                score = tf.reduce_sum(sw_val * tf.cast(hits, dtype)) / tf.reduce_sum(
                    sw_val
                )
                worse = score < loop["best_score"] + tol
                better = score > loop["best_score"]
                loop["best_score"] = tf.where(better, score, loop["best_score"])
                loop["best_params"] = [tf.where(better, flat, loop["best_params"][0])]
                loop["best_buffers"] = [
                    tf.where(better, b, bb)
                    for b, bb in zip(buffers, loop["best_buffers"], strict=True)
                ]
            else:
                score = tf.constant(np.nan, dtype)
                worse = loss > loop["best_loss"] - tol
                loop["best_loss"] = tf.where(
                    loss < loop["best_loss"], loss, loop["best_loss"]
                )
            no_improvement = tf.where(worse, loop["no_improvement"] + 1, 0)
            if schedule == "invscaling":
                lr = hyper["learning_rate_init"] / tf.pow(
                    loop["t"] + 1, hyper["power_t"]
                )
            triggered = tf.cast(no_improvement, dtype) > hyper["n_iter_no_change"]
            if schedule == "adaptive":
                too_small = triggered & (lr <= 1e-6)
                reduce = triggered & ~too_small
                lr = tf.where(reduce, lr / 5, lr)
                no_improvement = tf.where(reduce, 0, no_improvement)
                status = tf.where(too_small, LEARNING_RATE_TOO_SMALL, RUNNING)
            else:
                status = tf.where(triggered, CONVERGED, RUNNING)
            status = tf.where(tf.math.is_finite(loss), status, DIVERGED)
            loop["learning_rate"] = lr
            loop["no_improvement"] = no_improvement
            curves = [
                curves[0].write(epoch, loss),
                curves[1].write(epoch, score),
                curves[2].write(epoch, lr),
                curves[3].write(epoch, triggered),
            ]
            return epoch + 1, flat, buffers, opt, loop, curves, status

        curves = [
            tf.TensorArray(dtype, size=0, dynamic_size=True),
            tf.TensorArray(dtype, size=0, dynamic_size=True),
            tf.TensorArray(dtype, size=0, dynamic_size=True),
            tf.TensorArray(tf.bool, size=0, dynamic_size=True),
        ]
        opt = {k: [pack(v)] if isinstance(v, list) else v for k, v in opt.items()}
        loop = dict(loop, best_params=[pack(loop["best_params"])])
        epoch, flat, buffers, opt, loop, curves, status = tf.while_loop(
            lambda e, p, b, o, lp, c, s: (e < n_epochs) & tf.equal(s, RUNNING),
            run_epoch,
            [
                tf.constant(0),
                pack(params),
                buffers,
                opt,
                loop,
                curves,
                tf.constant(RUNNING),
            ],
        )
        opt = {k: unpack(v[0]) if isinstance(v, list) else v for k, v in opt.items()}
        loop = dict(loop, best_params=unpack(loop["best_params"][0]))
        curves = [c.stack() for c in curves]
        return unpack(flat), buffers, opt, loop, curves, epoch, status

    def run(self, params, buffers, opt, loop, data, hyper, batch_size, n_epochs, seed):
        """Run up to ``n_epochs`` epochs; see :func:`train_stochastic`."""
        return self._run(
            params,
            buffers,
            opt,
            loop,
            data["X"],
            data["Y"],
            data["sw"],
            data["X_val"],
            data["Y_val"],
            data["sw_val"],
            hyper,
            tf.constant(batch_size, tf.int32),
            tf.constant(n_epochs, tf.int32),
            tf.constant(seed, tf.int64),
        )


class EpochLog:
    """What happened in each epoch of one call to :func:`train_stochastic`."""

    def __init__(self):
        self.losses = []
        self.scores = []
        self.learning_rates = []
        self.triggered = []
        self.status = RUNNING
        self.interrupted = False

    def extended(self, curves, status):
        """A new log: this one, then the epochs in ``curves``, ending in ``status``."""
        losses, scores, lrs, triggered = (c.numpy().tolist() for c in curves)
        log = EpochLog()
        log.losses = self.losses + losses
        log.scores = self.scores + scores
        log.learning_rates = self.learning_rates + lrs
        log.triggered = self.triggered + triggered
        log.status = status
        return log

    def __len__(self):
        return len(self.losses)


def _as_tensors(values, dtype=None):
    return [tf.convert_to_tensor(v, dtype=dtype) for v in values]


def train_stochastic(
    network, state, data, hyper, options, n_epochs, seed, on_epoch_end=None
):
    """Train with SGD or Adam for up to ``n_epochs`` epochs.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
    state : dict
        NumPy arrays: ``params``, ``buffers``, ``solver_state`` and ``loop``
        (``learning_rate``, ``best_loss``, ``best_score``, ``no_improvement``,
        ``t``, ``best_params``, ``best_buffers``).
    data : dict
        ``X``, ``Y``, ``sw`` and, with early stopping, ``X_val``, ``Y_val``,
        ``sw_val`` (NumPy arrays; the validation entries may be empty).
    hyper : dict of float
        The values named in :data:`HYPER_PARAMETERS`.
    options : dict
        ``solver``, ``nesterov``, ``schedule``, ``shuffle``, ``batch_size``.
    n_epochs : int
        Most epochs to run.
    seed : int
        Seed of the in-graph shuffling.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch_index, log, params, buffers)`` after every epoch;
        returning True stops training. Makes every call run one epoch.

    Returns
    -------
    state : dict
        The new state (NumPy arrays).
    log : EpochLog
    """
    validation = data.get("X_val") is not None
    program = get_program(
        network,
        options["solver"],
        options["nesterov"],
        options["schedule"],
        options["shuffle"],
        validation,
    )
    dtype = network.compute_dtype
    tensors = {
        key: tf.convert_to_tensor(value, dtype=dtype)
        for key, value in data.items()
        if value is not None
    }
    if not validation:
        n_features = data["X"].shape[1]
        n_outputs = data["Y"].shape[1]
        tensors["X_val"] = tf.zeros([0, n_features], dtype)
        tensors["Y_val"] = tf.zeros([0, n_outputs], dtype)
        tensors["sw_val"] = tf.zeros([0], dtype)
    hyper_tensors = {k: tf.constant(float(hyper[k]), dtype) for k in HYPER_PARAMETERS}
    params = _as_tensors(state["params"], dtype)
    buffers = _as_tensors(state["buffers"])
    opt = tf.nest.map_structure(
        lambda v: tf.convert_to_tensor(v, dtype), state["solver_state"]
    )
    loop = state["loop"]
    loop = {
        "learning_rate": tf.constant(loop["learning_rate"], dtype),
        "best_loss": tf.constant(loop["best_loss"], dtype),
        "best_score": tf.constant(loop["best_score"], dtype),
        "no_improvement": tf.constant(loop["no_improvement"], tf.int32),
        "t": tf.constant(loop["t"], dtype),
        "best_params": _as_tensors(loop["best_params"], dtype),
        "best_buffers": _as_tensors(loop["best_buffers"]),
    }
    n_samples = data["X"].shape[0]
    if on_epoch_end is None:
        chunk = max(1, min(n_epochs, math.ceil(CHUNK_SAMPLES / max(n_samples, 1))))
    else:
        chunk = 1
    log = EpochLog()
    done = 0
    # The results of the last completed call, committed in one assignment: an
    # interrupt (handled between Python calls) never leaves the weights and
    # the log of epochs out of step.
    committed = (done, params, buffers, opt, loop, log)
    try:
        while done < n_epochs and log.status == RUNNING:
            size = min(chunk, n_epochs - done)
            out = program.run(
                params,
                buffers,
                opt,
                loop,
                tensors,
                hyper_tensors,
                options["batch_size"],
                size,
                [seed, done],
            )
            new_log = log.extended(out[4], int(out[6]))
            committed = (done + int(out[5]), *out[:4], new_log)
            done, params, buffers, opt, loop, log = committed
            if on_epoch_end is not None and on_epoch_end(
                done - 1, log, params, buffers
            ):
                break
    except KeyboardInterrupt:
        done, params, buffers, opt, loop, log = committed
        if done == 0:
            raise
        log.interrupted = True
    return _to_numpy_state(params, buffers, opt, loop), log


def _to_numpy_state(params, buffers, opt, loop):
    loop = dict(loop)
    return {
        "params": [p.numpy() for p in params],
        "buffers": [b.numpy() for b in buffers],
        "solver_state": tf.nest.map_structure(lambda v: v.numpy(), opt),
        "loop": {
            "learning_rate": float(loop["learning_rate"]),
            "best_loss": float(loop["best_loss"]),
            "best_score": float(loop["best_score"]),
            "no_improvement": int(loop["no_improvement"]),
            "t": float(loop["t"]),
            "best_params": [p.numpy() for p in loop["best_params"]],
            "best_buffers": [b.numpy() for b in loop["best_buffers"]],
        },
    }


def train_lbfgs(
    network, params, buffers, X, Y, sw, alpha, max_iter, max_fun, tol, verbose
):
    """Minimise the loss with SciPy's L-BFGS-B on Keras-computed gradients.

    As MLPClassifier's ``lbfgs`` solver: the whole training set is one batch,
    and SciPy stops at ``max_iter`` iterations, ``max_fun`` evaluations or a
    projected gradient below ``tol``.

    Returns
    -------
    params : list of ndarray
    result : scipy.optimize.OptimizeResult
    losses : list of float
        The loss after each iteration.
    """
    program = get_program(network)
    dtype = network.compute_dtype
    shapes = [np.shape(p) for p in params]
    sizes = [int(np.prod(s)) for s in shapes]
    splits = np.cumsum(sizes)[:-1]
    X = tf.convert_to_tensor(X, dtype)
    Y = tf.convert_to_tensor(Y, dtype)
    sw = tf.convert_to_tensor(sw, dtype)
    alpha = tf.constant(alpha, dtype)
    buffers = _as_tensors(buffers)

    def unpack(flat):
        return [
            tf.convert_to_tensor(part.reshape(shape), dtype)
            for part, shape in zip(np.split(flat, splits), shapes, strict=True)
        ]

    def objective(flat):
        loss, grads = program.loss_and_grad(unpack(flat), buffers, X, Y, sw, alpha)
        grad = np.concatenate([g.numpy().ravel() for g in grads]).astype(np.float64)
        return float(loss), grad

    losses = []

    def callback(intermediate_result):
        losses.append(float(intermediate_result.fun))
        if verbose:
            print(f"Iteration {len(losses)}, loss = {losses[-1]:.8f}")

    start = np.concatenate([np.ravel(p) for p in params]).astype(np.float64)
    options = {"maxfun": max_fun, "maxiter": max_iter, "gtol": tol}
    result = scipy.optimize.minimize(
        objective,
        start,
        method="L-BFGS-B",
        jac=True,
        options=options,
        callback=callback,
    )
    params = [p.numpy() for p in unpack(result.x)]
    return params, result, losses

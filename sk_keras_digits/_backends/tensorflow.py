"""The TensorFlow backend: the training program as ``tf.function`` s.

Training runs whole epochs inside one compiled TensorFlow function: the
batches, the solver's updates (:mod:`sk_keras_digits._solvers`), the
shuffling (stateless, from a seed drawn from ``random_state``) and the
end-of-epoch rules (:mod:`sk_keras_digits._stopping`) all happen in the graph.
The batch dimension (and, for the default dense network, the layer widths) are
left dynamic, so new data sizes and new ``hidden_layer_sizes`` of the same
depth do not retrace.

The state crosses the program's boundary as the records of
:mod:`sk_keras_digits._state`, mapped leaf by leaf with ``tf.nest``
(:func:`signature`, :func:`to_tensors`). Nothing is stored in Keras variables
(except by a Keras optimizer, see :class:`StatefulKerasOptimizer`), so a
program is shared by every estimator, fit and thread with the same key.

Also here: TensorFlow's variable-naming fix (:func:`build_scope`), and the
stateful form of a user's Keras optimizer (TensorFlow does not support
``Optimizer.stateless_apply``).
"""

import contextlib
import functools
import threading

import numpy as np
import tensorflow as tf

from .._objective import batch_loss
from .._solvers import apply_update
from .._state import RUNNING, OptimizerState, TrainingState, Weights
from .._stopping import close_epoch
from .._training_config import TrainingData
from . import ChunkResult
from ._records import leaf_dtype, restore

NAME = "tensorflow"

# Name of the TensorFlow variables created in a build scope (see below).
_VARIABLE_NAME = "sk_keras_digits_variable"


def _constant_name_creator(next_creator, **kwargs):
    """Create a TensorFlow variable under one constant name, at the root scope.

    In eager mode TensorFlow passes a variable's scoped name to its
    ``VarHandleOp`` as the ``debug_name`` attribute, and its eager context
    caches one kernel (about 35 kB of native memory, never freed) for each
    distinct set of attributes. Keras scopes every weight under its layer's
    automatically numbered name (``sequential_7/dense_12/kernel``), so each
    fresh network cost about 35 kB per variable, for the life of the process
    (seen with TensorFlow 2.21 and Keras 3.15). One constant name keeps that
    cache to one entry per shape and dtype.

    Only TensorFlow's own name of the variable changes: Keras' ``name`` and
    ``path`` (what Keras shows, saves and loads by) are set by Keras and kept.
    """
    kwargs["name"] = _VARIABLE_NAME
    # An empty name scope is the root scope: the layers' scopes are left out.
    with tf.name_scope(""):
        return next_creator(**kwargs)


def build_scope(dtype):
    """Around building Keras objects: variables under one constant name.

    ``tf.variable_creator_scope`` is thread-local and removed on exit.
    """
    return tf.variable_creator_scope(_constant_name_creator)


def compute_scope(dtype):
    """Around Keras computations: nothing to set on TensorFlow."""
    return contextlib.nullcontext()


def to_numpy(value):
    """A tensor or variable as a NumPy array."""
    return np.asarray(value)


def start():
    """Start TensorFlow's runtime (it logs while finding its devices).

    Returns
    -------
    description : str
        ``"TensorFlow 2.21.0"``.
    """
    tf.config.list_logical_devices()
    return f"TensorFlow {tf.__version__}"


def activation(name):
    """Keras' activation ``name`` (each keeps its input's dtype here)."""
    import keras

    return keras.activations.get(name)


# ------------------------------------------------- NumPy records <-> tensors
def _leaf_spec(value, dtype, dynamic):
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        shape = [None] * value.ndim if dynamic else value.shape
        return tf.TensorSpec(shape, value.dtype)
    return tf.TensorSpec([], leaf_dtype(value, dtype))


def signature(structure, dtype, dynamic):
    """``tf.TensorSpec`` s for a record of NumPy arrays and Python numbers.

    Arrays keep their dtype (with every dimension unknown when ``dynamic``);
    numbers take :func:`~sk_keras_digits._backends._records.leaf_dtype`'s;
    None (a part that is absent, such as ``Progress.best_weights`` without
    early stopping) stays None, and :func:`input_signature` turns it into
    ``()``.
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


def _specs(shapes):
    return [tf.TensorSpec(shape, dtype) for shape, dtype in shapes]


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


def _compile(method, **options):
    """``tf.function`` of a program's method, traced once per program.

    TensorFlow counts traces per underlying code object and would take the
    single trace of each of many programs for excessive retracing of one
    function; a ``functools.partial`` is counted as an object of its own.
    """
    return tf.function(functools.partial(method), **options)


class FitInputs:
    """A fit's data and numbers as tensors, converted once per fit."""

    def __init__(self, data, validation, hyper):
        self.data = data
        self.validation = validation
        self.hyper = hyper


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
        dtype = self.dtype = network.compute_dtype
        dynamic = network.dynamic_shapes
        weights = Weights(
            tuple(_specs(network.param_shapes)), tuple(_specs(network.buffer_shapes))
        )
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
        shapes = tuple(tuple(p.shape.as_list()) for p in weights.params)
        self.solver = config.solver.bind(shapes, dtype, bind_optimizer)
        # A stateful solver's program holds variables that every call loads
        # with its own state and reads back: calls are serialised, so that
        # threads (and the estimators they fit) never see each other's state.
        self._lock = (
            threading.Lock()
            if getattr(self.solver, "stateful", False)
            else contextlib.nullcontext()
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
            loss = batch_loss(
                self.network, params, proba, data.Y, data.sample_weight, extra, alpha
            )
        return loss, tape.gradient(loss, params)

    def objective(self, weights, data, alpha):
        """The full-batch loss and gradient as a function of the flat parameters.

        Returns ``f(flat) -> (loss, gradient)`` on float64 NumPy vectors, for
        SciPy; the data are converted to tensors once.
        """
        dtype = self.dtype
        shapes = [np.shape(p) for p in weights.params]
        splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        data = TrainingData(*(tf.convert_to_tensor(v, dtype) for v in data))
        alpha = tf.constant(alpha, dtype)
        buffers = tuple(tf.convert_to_tensor(b) for b in weights.buffers)

        def f(flat):
            params = tuple(
                tf.convert_to_tensor(part.reshape(shape), dtype)
                for part, shape in zip(np.split(flat, splits), shapes, strict=True)
            )
            loss, grads = self._loss_and_grad(Weights(params, buffers), data, alpha)
            grad = np.concatenate([g.numpy().ravel() for g in grads])
            return float(loss), grad.astype(np.float64)

        return f

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
                loss = batch_loss(network, params, proba, yb, wb, extra, hyper.alpha)
            grads = tape.gradient(loss, params)
            flat, solver_state = apply_update(
                solver, flat, params, grads, pack, solver_state, lr, hyper.solver
            )
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
            progress, triggered, status, score = close_epoch(
                network,
                validation if self.early_stopping else None,
                unpack(flat),
                flat,
                buffers,
                progress,
                loss,
                n_float,
                hyper,
                schedule,
                solver_state,
            )
            curves = (
                curves[0].write(epoch, loss),
                curves[1].write(epoch, score),
                curves[2].write(epoch, progress.learning_rate),
                curves[3].write(epoch, triggered),
            )
            return epoch + 1, flat, buffers, solver_state, progress, curves, status

        def new_curve(curve_dtype):
            return tf.TensorArray(curve_dtype, size=0, dynamic_size=True)

        curves = tuple(new_curve(d) for d in (dtype, dtype, dtype, tf.bool))
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
        return new_state, tuple(c.stack() for c in curves), epoch, status

    def prepare(self, state, data, validation, hyper):
        """The fit's inputs and starting state as tensors (converted once)."""
        dtype = self.dtype

        def tensors(part):
            return TrainingData(*(tf.convert_to_tensor(v, dtype) for v in part))

        inputs = FitInputs(
            tensors(data),
            () if validation is None else tensors(validation),
            to_tensors(hyper, self.hyper_spec),
        )
        return inputs, to_tensors(state, self.state_spec)

    def run(self, state, inputs, batch_size, n_epochs, seed):
        """Run up to ``n_epochs`` epochs from ``state`` (tensors).

        Returns
        -------
        ChunkResult
        """
        with self._lock:
            new_state, curves, epochs, status = self._run(
                state,
                inputs.data,
                inputs.validation,
                inputs.hyper,
                tf.constant(batch_size, tf.int32),
                tf.constant(n_epochs, tf.int32),
                tf.constant(seed, tf.int64),
            )
        names = ("losses", "scores", "learning_rates", "triggered")
        lists = {k: c.numpy().tolist() for k, c in zip(names, curves, strict=True)}
        return ChunkResult(new_state, lists, int(epochs), int(status))

    def compilations(self):
        """How many times the training function was traced (compiled)."""
        return self._run.experimental_get_tracing_count()

    def to_numpy(self, tensors, like):
        """Tensors back to the NumPy record ``like``."""
        return restore(tensors, like, to_numpy)


# ----------------------------------------------------- Keras optimizers
def bind_optimizer(solver, shapes, dtype):
    """A :class:`StatefulKerasOptimizer` for parameters of ``shapes``."""
    return StatefulKerasOptimizer(solver, shapes, dtype)


class StatefulKerasOptimizer:
    """A private Keras optimizer and the variables it updates, for one program.

    TensorFlow's Keras optimizers update variables in place. The program owns
    an optimizer rebuilt from the user's class and config, built on Keras
    variables of the parameters' layout; each call assigns the incoming
    parameters and optimizer state to them (:meth:`start`), and reads the
    state back after the epochs (:meth:`finish`). Calls are serialised.

    Parameters
    ----------
    solver : KerasOptimizer
    shapes : tuple of tuple of int
        The parameters' shapes.
    dtype : str

    Attributes
    ----------
    flat : bool
        Whether the optimizer updates one flat variable (an element-wise
        optimizer, see ``KerasOptimizer.ELEMENTWISE``), taking and returning
        the flat parameter vector, or one variable per parameter.
    """

    stateful = True

    def __init__(self, solver, shapes, dtype):
        from .._solvers import OptimizerLearningRate, build_optimizer

        self.flat = solver.elementwise
        # Created eagerly: a ``tf.function`` may not create variables after
        # its first trace.
        with tf.init_scope():
            self.optimizer, self.variables = build_optimizer(
                solver, solver.layout(shapes), dtype
            )
        self.schedule = OptimizerLearningRate(self.optimizer, stateless=False)

    def start(self, params, state):
        """Load ``params`` and the optimizer state into the variables."""
        if self.flat:
            params = [tf.concat([tf.reshape(p, [-1]) for p in params], axis=0)]
        for variable, value in zip(self.variables, params, strict=True):
            self.optimizer.assign(variable, value)
        for variable, value in zip(
            self.optimizer.variables, state.variables, strict=True
        ):
            self.optimizer.assign(variable, value)
        return state

    def update(self, params, grads, state, learning_rate, hyper):
        """One ``optimizer.apply`` step; the parameters read back (tensors).

        ``params`` are the values the variables hold already (loaded by
        :meth:`start`, then read back after each step), so they are not
        assigned again. ``learning_rate`` and ``hyper`` are unused: the
        optimizer has its own.
        """
        if self.flat:
            self.optimizer.apply([grads], self.variables)
            return tf.convert_to_tensor(self.variables[0]), state
        self.optimizer.apply(grads, self.variables)
        return [tf.convert_to_tensor(v) for v in self.variables], state

    def finish(self, state):
        """The optimizer's variables, read after the epochs."""
        return OptimizerState(
            tuple(tf.convert_to_tensor(v) for v in self.optimizer.variables)
        )

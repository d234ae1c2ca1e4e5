"""The TensorFlow backend: the training program as ``tf.function`` s.

Training runs a call's epochs inside one function compiled by XLA
(``jit_compile=True``): the batches (for padded data every batch is a window
of ``batch_size`` rows, the last one ending at the last real row with the rows
of earlier batches weighing zero), the solver's updates
(:mod:`sk_keras_digits._solvers`), each epoch's order of the rows (drawn on
the host, :mod:`sk_keras_digits._shuffle`) and the end-of-epoch rules
(:mod:`sk_keras_digits._stopping`). The function is traced once, with
dynamic shapes; XLA compiles the trace once per input shape, and the default
network's fits are padded to buckets of shapes
(:mod:`sk_keras_digits._padding`) so that a grid search compiles a few. A
network XLA cannot compile trains with the same function as a plain graph,
with one warning.

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

from .._keras_optimizer import join_parameters, split_parameters
from .._objective import batch_loss
from .._padding import padded_rows, pads_data
from .._solvers import apply_update
from .._state import RUNNING, OptimizerState, TrainingState, Weights
from .._stopping import close_epoch
from .._training_config import TrainingData
from . import ChunkResult, FitInputs, _handover
from ._fallback import warn_outside_xla
from ._groups import ParameterGroups
from ._imports import import_keras
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
    """A tensor or variable as a writable NumPy array of its own.

    (``np.asarray`` of an eager tensor is a read-only view of its buffer: the
    fitted ``coefs_`` would be read-only, where MLPClassifier's are not. The
    view is copied: ``np.array`` of a ``tf.Variable`` passes ``copy=``, which
    its ``__array__`` does not take, and NumPy warns.)
    """
    return np.asarray(value).copy()


def start():
    """Start TensorFlow's runtime (it logs while finding its devices).

    Returns
    -------
    description : str
        ``"TensorFlow 2.21.0"``.
    """
    tf.config.list_logical_devices()
    return f"TensorFlow {tf.__version__}"


def check_runnable():
    """Refuse, naming the setting, what a compiled program cannot run under.

    Inside a user's ``tf.function`` (graph mode) nothing can be read back to
    NumPy. TensorFlow's op callbacks (``tf.debugging.enable_check_numerics``,
    ``enable_dump_debug_info``), of the calling thread, would check every
    operation: the training program holds infinities by design (the best
    loss before the first epoch), and XLA cannot compile their checks.
    """
    if not tf.executing_eagerly():
        raise RuntimeError(
            "sk_keras_digits cannot fit or predict inside a tf.function (graph "
            "mode): call it from eager Python code."
        )
    if _op_callbacks_active():
        raise RuntimeError(
            "TensorFlow's op callbacks are on in this thread "
            "(tf.debugging.enable_check_numerics() or "
            "tf.debugging.experimental.enable_dump_debug_info()): the compiled "
            "training program holds infinities by design (the best loss before "
            "the first epoch) and XLA cannot compile their checks. Turn them off "
            "around the fit: tf.debugging.disable_check_numerics()."
        )


def _op_callbacks_active():
    try:
        from tensorflow.python.framework import op_callbacks
    except ImportError:  # moved in another TensorFlow: not checked
        return False
    return bool(op_callbacks.should_invoke_op_callbacks())


def dense_product(x, w):
    """``x @ w`` of a default network's layer (Keras' own, and its gradient)."""
    keras = import_keras()

    return keras.ops.matmul(x, w)


def activation(name):
    """Keras' activation ``name`` (each keeps its input's dtype here)."""
    keras = import_keras()

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
        lambda s, v: () if s is None else tf.constant(v, s.dtype),
        spec,
        structure,
    )


def data_tensor(value, dtype):
    """A fit's data array as a tensor of ``dtype``, copied once, quickly.

    Arrays of :data:`~sk_keras_digits._backends._handover.LARGE_ARRAY_BYTES`
    and more are copied by NumPy into an aligned private buffer and handed to
    TensorFlow through DLPack (:mod:`._handover`: for MNIST's 172 MB, 0.015 s
    against 0.03 to 1 s for ``tf.convert_to_tensor``); smaller ones are
    converted by TensorFlow. The caller's array is never shared.
    """
    array = np.asarray(value, dtype=tf.as_dtype(dtype).as_numpy_dtype)
    if array.nbytes < _handover.LARGE_ARRAY_BYTES:
        return tf.constant(array)
    private = _handover.aligned_copy(array)
    return tf.experimental.dlpack.from_dlpack(private.__dlpack__())


def on_compute_device(tensor):
    """``tensor`` on the device TensorFlow's operations run on here, copied once.

    On a CPU-only machine, ``tensor`` itself. With an accelerator (a GPU),
    a tensor made from host memory (the DLPack handover above) is copied to
    the device the current scope places operations on, so that the calls of
    a fit's program, one per chunk of epochs, do not each copy it again.
    """
    return tf.identity(tensor) if _accelerated() else tensor


@functools.cache
def _accelerated():
    """Whether TensorFlow has a GPU or TPU (its devices are fixed once started)."""
    return any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))


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


def _xla_refusal(error):
    """Whether ``error`` is XLA refusing to compile an operation."""
    text = str(error)
    marks = ("XLA", "compile-time constant", "not supported by", "No registered")
    return any(mark in text for mark in marks)


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
    layout : FitLayout or None
        How the fits it runs are padded (:mod:`sk_keras_digits._padding`):
        whether the data are padded in rows and the widths masked.
    """

    #: TensorFlow keeps a ``jit_compile`` function's executables for the life
    #: of the process: an evicted program is set aside, not rebuilt
    #: (:mod:`sk_keras_digits._cache`).
    evictable = False

    def __init__(self, network, config=None, state=None, layout=None):
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
        # The default network's full-batch loss runs under XLA, on rows
        # padded to a bucket; a custom network's in the graph (its rows are
        # not padded, and XLA would compile each data size).
        self._loss_and_grad = _compile(
            self._loss_and_grad_impl,
            input_signature=[weights, data, scalar],
            autograph=False,
            jit_compile=bool(network.rows_independent),
        )
        if config is None:
            return
        self.shuffle = config.shuffle
        self.early_stopping = config.early_stopping
        #: Whether the data are padded to a bucket of rows (with zero
        #: weights), and the widths padded and masked: see
        #: :mod:`sk_keras_digits._padding`.
        self.padded = layout.rows
        self.masked = layout.masked
        #: Whether the loop carries the parameters as one flat vector.
        self.flat = layout.flat
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
        signature_ = [
            input_signature(self.state_spec),
            data,
            data if config.early_stopping else (),
            self.hyper_spec,
            tf.TensorSpec([], tf.int32),  # batch_size
            tf.TensorSpec([], tf.int32),  # n_epochs
            tf.TensorSpec([None, None], tf.int32) if self.shuffle else (),  # orders
            tf.TensorSpec([], tf.int32),  # real rows
            tf.TensorSpec([None], tf.bool) if self.masked else (),  # mask
            tf.TensorSpec([None], dtype),  # curve buffer
        ]
        # Traced once; XLA compiles the trace once per input shape (the
        # buckets of :mod:`sk_keras_digits._padding`).
        self._run = _compile(
            self._run_impl,
            input_signature=signature_,
            autograph=False,
            jit_compile=True,
        )
        self._graph_run = functools.partial(
            _compile, self._run_impl, input_signature=signature_, autograph=False
        )
        #: Whether the program runs TensorFlow's graph instead of XLA (a
        #: network XLA cannot compile).
        self.fallback = False
        self._concrete = None
        self._shapes = set()

    # -- inference ---------------------------------------------------------
    def _predict_impl(self, weights, x):
        proba, _, _ = self.network.forward(weights.params, weights.buffers, x, False)
        return proba

    def predict(self, weights, X):
        """Probabilities of ``X`` under ``weights`` (NumPy in and out)."""
        check_runnable()
        return self._predict(weights, X).numpy()

    # -- full-batch loss and gradient (lbfgs) --------------------------------
    def _loss_and_grad_impl(self, weights, data, alpha):
        params = list(weights.params)
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss, _ = batch_loss(self.network, params, weights.buffers, data, alpha)
        # A parameter the loss does not reach (a custom layer's unused
        # weight) has a zero gradient, as on JAX.
        grads = tape.gradient(
            loss, params, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        # One flat gradient, as SciPy takes it: a single tensor to read back.
        return loss, tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)

    def objective(self, weights, data, alpha):
        """The full-batch loss and gradient as a function of the flat parameters.

        Returns ``f(flat) -> (loss, gradient)`` on float64 NumPy vectors, for
        SciPy; the data are converted to tensors once.
        """
        check_runnable()
        dtype = self.dtype
        shapes = [np.shape(p) for p in weights.params]
        splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        if self.network.rows_independent and pads_data(*np.shape(data.X)):
            data = padded_rows(data)
        data = TrainingData(*(data_tensor(v, dtype) for v in data))
        alpha = tf.constant(alpha, dtype)
        buffers = tuple(tf.convert_to_tensor(b) for b in weights.buffers)

        # Called as its concrete function (its input signature fixes the
        # trace): 0.6 ms less per evaluation than the tf.function's dispatch.
        loss_and_grad = self._loss_and_grad.get_concrete_function()

        def f(flat):
            params = tuple(
                tf.constant(part.reshape(shape), dtype)
                for part, shape in zip(np.split(flat, splits), shapes, strict=True)
            )
            loss, grad = loss_and_grad(Weights(params, buffers), data, alpha)
            return float(loss), grad.numpy().astype(np.float64)

        return f

    # -- stochastic epochs ---------------------------------------------------
    def _run_impl(
        self,
        state,
        data,
        validation,
        hyper,
        batch_size,
        n_epochs,
        orders,
        n_rows,
        mask,
        template,
    ):
        network, solver = self.network, self.solver
        schedule = solver.schedule
        dtype = data.X.dtype
        rows = tf.shape(data.X)[0]
        # Padded data: ``n_rows`` real rows then rows of zero weight.
        # Unpadded: every row is real.
        n = n_rows if self.padded else rows
        n_full, rest = n // batch_size, n % batch_size
        # The loops carry the parameters' groups (each parameter, or one flat
        # vector: :mod:`._groups`), as does the solver state.
        groups = ParameterGroups(self.flat, *_flattener(state.weights.params))
        masks = None if self.masked is False else groups.split(mask)

        def rows(part, start, size):
            # Rows ``start`` to ``start + size``, gathered, not sliced: a
            # slice's start is a compile-time constant to TensorFlow's XLA
            # bridge, so the start of the last, shorter batch (which depends on
            # the number of real rows) would compile a program per row count.
            return tf.gather(part, start + tf.range(size))

        def step(carried, buffers, solver_state, lr, batch):
            carried = list(carried)
            with tf.GradientTape() as tape:
                tape.watch(carried)
                params = groups.params(carried)
                loss, new_buffers = batch_loss(
                    network, params, buffers, batch, hyper.alpha
                )
            grads = tape.gradient(loss, carried)
            carried, solver_state = apply_update(
                solver, carried, grads, solver_state, lr, hyper.solver, masks
            )
            return tuple(carried), tuple(new_buffers), solver_state, loss

        def run_epoch(epoch, params, buffers, solver_state, progress, curves, status):
            # The epoch's order of the rows (:mod:`sk_keras_digits._shuffle`):
            # each batch gathers its own rows, so padded rows cost nothing.
            order = orders[epoch] if self.shuffle else None

            def take(start, size):
                if order is None:
                    return TrainingData(*(rows(part, start, size) for part in data))
                picked = rows(order, start, size)
                return TrainingData(*(tf.gather(part, picked) for part in data))

            lr = progress.learning_rate

            def run_batch(i, params, buffers, solver_state, total):
                batch = take(i * batch_size, batch_size)
                params, buffers, solver_state, loss = step(
                    params, buffers, solver_state, lr, batch
                )
                total += loss * tf.cast(batch_size, dtype)
                return i + 1, params, buffers, solver_state, total

            def run_window(i, params, buffers, solver_state, total):
                # Batch ``i`` of padded data: the ``batch_size`` rows from
                # ``i * batch_size``, or for the last, smaller batch those
                # ending at the last real row, the rows of earlier batches
                # weighing zero. One compiled step for every batch.
                first = i * batch_size
                start = tf.minimum(first, tf.maximum(n - batch_size, 0))
                batch = take(start, batch_size)
                index = start + tf.range(batch_size)
                weight = tf.where(
                    index >= first,
                    batch.sample_weight,
                    tf.zeros_like(batch.sample_weight),
                )
                params, buffers, solver_state, loss = step(
                    params,
                    buffers,
                    solver_state,
                    lr,
                    batch._replace(sample_weight=weight),
                )
                count = tf.cast(tf.minimum(batch_size, n - first), dtype)
                return i + 1, params, buffers, solver_state, total + loss * count

            loop = (tf.constant(0), params, buffers, solver_state, tf.zeros([], dtype))
            if self.padded:
                n_batches = (n + batch_size - 1) // batch_size
                _, params, buffers, solver_state, total = tf.while_loop(
                    lambda i, *_: i < n_batches, run_window, loop
                )
            else:
                _, params, buffers, solver_state, total = tf.while_loop(
                    lambda i, *_: i < n_full, run_batch, loop
                )

                def run_last():
                    batch = take(n_full * batch_size, rest)
                    new = step(params, buffers, solver_state, lr, batch)
                    return (*new[:3], total + new[3] * tf.cast(rest, dtype))

                params, buffers, solver_state, total = tf.cond(
                    rest > 0, run_last, lambda: (params, buffers, solver_state, total)
                )
            n_float = tf.cast(n, dtype)
            loss = total / n_float
            progress, triggered, status, score = close_epoch(
                network,
                validation if self.early_stopping else None,
                groups.params(params),
                buffers,
                progress,
                loss,
                n_float,
                hyper,
                schedule,
                solver_state,
            )
            values = (loss, score, progress.learning_rate, triggered)
            curves = tuple(
                tf.tensor_scatter_nd_update(c, [[epoch]], tf.reshape(v, [1]))
                for c, v in zip(curves, values, strict=True)
            )
            return epoch + 1, params, buffers, solver_state, progress, curves, status

        curves = (
            tf.zeros_like(template),
            tf.zeros_like(template),
            tf.zeros_like(template),
            tf.zeros_like(template, tf.bool),
        )
        progress = state.progress
        solver_state = solver.start(state.weights.params, state.solver, groups.split)
        epoch, params, buffers, solver_state, progress, curves, status = tf.while_loop(
            lambda e, p, b, s, g, c, st: (e < n_epochs) & tf.equal(st, RUNNING),
            run_epoch,
            (
                tf.constant(0),
                groups.of(state.weights.params),
                tuple(state.weights.buffers),
                solver_state,
                progress,
                curves,
                tf.constant(RUNNING),
            ),
        )
        new_state = TrainingState(
            Weights(tuple(groups.params(params)), buffers),
            solver.finish(solver_state, groups.join),
            progress,
        )
        return new_state, curves, epoch, status

    def prepare(self, state, data, validation, hyper, layout):
        """The fit's inputs and starting state as tensors (converted once).

        ``data``, ``validation`` and ``state`` come padded as ``layout`` (a
        :class:`~sk_keras_digits._training.FitLayout`) says.
        """
        check_runnable()
        dtype = self.dtype

        def tensors(part):
            return TrainingData(
                *(on_compute_device(data_tensor(v, dtype)) for v in part)
            )

        inputs = FitInputs(
            tensors(data),
            () if validation is None else tensors(validation),
            to_tensors(hyper, self.hyper_spec),
            layout.n_rows,
            () if layout.mask is None else tf.constant(layout.mask),
        )
        return inputs, to_tensors(state, self.state_spec)

    def run(self, state, inputs, batch_size, n_epochs, length, orders):
        """Run up to ``n_epochs`` epochs from ``state`` (tensors).

        ``length`` is the length of the per-epoch buffers, ``orders`` the row
        order of each epoch (:mod:`sk_keras_digits._shuffle`), or None
        without shuffling.

        Returns
        -------
        ChunkResult
        """
        capacity = length
        self._shapes.add(
            (
                tuple(inputs.data.X.shape),
                None if inputs.validation == () else tuple(inputs.validation.X.shape),
                tuple(tuple(p.shape) for p in state.weights.params),
                int(batch_size),
                capacity,
            )
        )
        with self._lock:
            new_state, curves, epochs, status = self._call_run(
                state,
                inputs.data,
                inputs.validation,
                inputs.hyper,
                tf.constant(batch_size, tf.int32),
                tf.constant(n_epochs, tf.int32),
                () if orders is None else tf.constant(orders, tf.int32),
                tf.constant(inputs.n_rows, tf.int32),
                inputs.mask,
                tf.constant(np.zeros(capacity), self.dtype),
            )
        epochs = int(epochs)
        names = ("losses", "scores", "learning_rates", "triggered")
        lists = {
            k: c.numpy()[:epochs].tolist() for k, c in zip(names, curves, strict=True)
        }
        return ChunkResult(new_state, lists, epochs, int(status))

    def _call_run(self, *args):
        """Call the XLA program; on a network XLA cannot compile, the graph.

        The fallback happens once per program, with one warning.
        """
        if not self.fallback:
            try:
                return self._traced()(*args)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
                if not _xla_refusal(e):
                    raise
                self.fallback = True
                self._run = self._graph_run()
                self._concrete = None
                warn_outside_xla(e, "TensorFlow's graph loop", stacklevel=2)
        return self._traced()(*args)

    def _traced(self):
        """The program's single trace (its input signature fixes it).

        Called as a concrete function, which skips the ``tf.function``'s
        dispatch on its arguments: 0.5 ms against 1.2 ms for a call that
        runs no epoch.
        """
        concrete = self._concrete
        if concrete is None:
            concrete = self._concrete = self._run.get_concrete_function()
        return concrete

    def compilations(self):
        """How many programs XLA compiled: one per input shapes and batch size.

        TensorFlow keys its compilations on the inputs' shapes and the values
        of the inputs its XLA bridge takes as compile-time constants: here the
        batch size alone (the tests compare the computation it builds for
        other values of every other input).
        """
        return len(self._shapes)

    def loaded(self):
        """How many were read from a persistent compilation cache: none here."""
        return 0

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
    variables of the parameters' shapes; each call assigns the incoming
    parameters and optimizer state to them (:meth:`start`, the state moved
    from the record's layout to the program's by its
    :class:`~sk_keras_digits._keras_optimizer.SlotLayout`), and reads the
    state back after the epochs (:meth:`finish`). Calls are serialised.

    Parameters
    ----------
    solver : KerasOptimizer
    shapes : tuple of tuple of int
        The parameters' shapes.
    dtype : str
    """

    stateful = True

    def __init__(self, solver, shapes, dtype):
        from .._keras_optimizer import OptimizerLearningRate, program_optimizer

        self.shapes = shapes
        # Created eagerly: a ``tf.function`` may not create variables after
        # its first trace.
        with tf.init_scope():
            self.optimizer, self.variables, self.slots, self.flat = program_optimizer(
                solver, shapes, dtype
            )
        self.schedule = OptimizerLearningRate(self.optimizer, stateless=False)

    def start(self, params, state, unpack):
        """Load ``params`` and the optimizer state into the variables."""
        if self.flat:
            params = [join_parameters(params)]
        for variable, value in zip(self.variables, params, strict=True):
            self.optimizer.assign(variable, value)
        values = self.slots.to_program(state.variables, unpack)
        for variable, value in zip(self.optimizer.variables, values, strict=True):
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
            self.optimizer.apply([join_parameters(grads)], self.variables)
            flat = tf.convert_to_tensor(self.variables[0])
            return split_parameters(flat, self.shapes), state
        self.optimizer.apply(grads, self.variables)
        return [tf.convert_to_tensor(v) for v in self.variables], state

    def finish(self, state, pack):
        """The optimizer's variables, read after the epochs (the record's layout)."""
        values = [tf.convert_to_tensor(v) for v in self.optimizer.variables]
        return OptimizerState(self.slots.to_record(values, pack))

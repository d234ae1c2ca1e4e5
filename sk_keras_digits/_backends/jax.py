"""The JAX backend: the training program as ``jax.jit`` functions.

Training runs a call's epochs inside one XLA program: the batches (a
``lax.fori_loop``; for padded data every batch is a window of ``batch_size``
rows, the last one ending at the last real row with the rows of earlier
batches weighing zero, so one compiled step serves them all), the solver's
updates (:mod:`sk_keras_digits._solvers`), each epoch's order of the rows
(drawn on the host, :mod:`sk_keras_digits._shuffle`) and the end-of-epoch
rules (:mod:`sk_keras_digits._stopping`) in a ``lax.while_loop`` over epochs.
JAX compiles one executable per input shape: the default network's fits are
padded to buckets of shapes (:mod:`sk_keras_digits._padding`), and
:class:`~sk_keras_digits._backends.jax_executables.Executables` keeps each
compiled executable, in memory and in the persistent compilation cache
(:mod:`sk_keras_digits._compile_cache`).

Float64 (input of dtype float64, as MLPClassifier trains on) needs JAX's
64-bit mode. It is enabled only inside :func:`compute_scope`, a
``jax.enable_x64`` context of the calling thread: the user's global JAX
configuration is never changed. Outside it, a float64 ``model_`` computes in
float32 (JAX's rule for every float64 array).

A custom network JAX cannot trace (one that reads a tensor's value in Python)
runs the same functions op by op, the loops in Python, with one warning.

A user's Keras optimizer is applied with ``Optimizer.stateless_apply``
(:class:`~sk_keras_digits._keras_optimizer.StatelessKerasOptimizer`), so no program
holds state and none needs a lock.
"""

import contextlib
import functools
import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._keras_optimizer import StatelessKerasOptimizer
from .._objective import batch_loss
from .._padding import padded_rows, pads_data
from .._solvers import apply_update
from .._state import RUNNING, TrainingState, Weights
from .._stopping import close_epoch
from .._training_config import TrainingData
from . import ChunkResult, FitInputs, _handover
from ._fallback import first_line, warn_outside_xla
from ._groups import ParameterGroups
from ._imports import import_keras
from ._records import leaf_dtype, restore
from .jax_executables import Executables

NAME = "jax"

#: The errors of a network JAX cannot trace: it reads a tensor's value in
#: Python (``np.asarray(x)``, ``if x > 0``, ``int(x)``, boolean indexing).
_UNTRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.NonConcreteBooleanIndexError,
)


def _tracing_error(error):
    """JAX's refusal to trace, if ``error`` is it or was raised from it; else None.

    (Keras re-raises an error from a layer's ``call`` with its arguments in
    the message, and fails for these: the original is the context.)
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _UNTRACEABLE):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _python_while(go_on, body, carry):
    while bool(go_on(carry)):
        carry = body(carry)
    return carry


def _python_fori(lower, upper, body, carry):
    for i in range(int(lower), int(upper)):
        carry = body(jnp.asarray(i, jnp.int32), carry)
    return carry


def _op_by_op(impl, static, *args):
    """Run ``impl`` untraced; a network JAX cannot differentiate is refused."""
    try:
        return impl(*args, **static)
    except Exception as e:
        refusal = _tracing_error(e)
        if refusal is None:
            raise
        raise ValueError(
            "network: JAX cannot differentiate this network: a layer reads in "
            "Python a value that depends on the weights "
            f"({first_line(refusal)}). Compute it with keras.ops instead."
        ) from refusal


class Loops(NamedTuple):
    """How a training function's loops run: traced into XLA, or in Python."""

    while_loop: object
    fori_loop: object


#: The loops of a compiled program, and of one that runs op by op.
TRACED = Loops(lax.while_loop, lax.fori_loop)
EAGER = Loops(_python_while, _python_fori)


@contextlib.contextmanager
def compute_scope(dtype):
    """Around Keras computations in ``dtype``: 64-bit mode on for float64, off
    for float32, whatever the user set; JAX's NaN and infinity checks off.

    These are contexts of the calling thread; nothing global changes, and
    other threads keep their own settings. A float32 fit is the same with the
    user's 64-bit mode on (its random draws, a Dropout's masks, would
    otherwise be drawn with 64-bit keys). The training program holds NaN and
    infinities by design (an epoch's score before validation, the best loss
    before the first epoch) and reports a diverged fit itself, so
    ``jax_debug_nans`` and ``jax_debug_infs`` would fail every fit.
    """
    with (
        jax.enable_x64(bool(np.dtype(dtype) == np.float64)),
        jax.debug_nans(False),
        jax.debug_infs(False),
    ):
        yield


def build_scope(dtype):
    """Around building Keras objects: variables of ``dtype`` need its scope."""
    return compute_scope(dtype)


def to_numpy(value):
    """A JAX array (or Keras variable's value) as a writable NumPy array.

    (``np.asarray`` of a JAX array is a read-only view.)
    """
    return np.array(value)


def start():
    """Start JAX's runtime (its devices).

    Returns
    -------
    description : str
        ``"JAX 0.10.2"``.
    """
    jax.devices()
    return f"JAX {jax.__version__}"


def activation(name):
    """Keras' activation ``name``, keeping its input's dtype.

    Keras 3.15's ``ops.tanh`` on JAX computes float64 input in float32 (it
    promotes the input's dtype with Python's ``float``, which Keras reads as
    float32): ``jax.numpy.tanh`` is used instead. The others keep the dtype.
    """
    keras = import_keras()

    if name == "tanh":
        return jnp.tanh
    return keras.activations.get(name)


#: Most elements of a float64 layer input whose weights' gradient is computed
#: from a materialised transpose (:func:`dense_product`).
SMALL_PRODUCT = 1 << 15


@jax.custom_vjp
def dense_product(x, w):
    """``x @ w`` of a default network's layer.

    Its weights' gradient ``x.T @ g`` is, for a small float64 batch, computed
    from a copy of ``x.T`` behind an optimisation barrier: XLA's CPU runs a
    product whose left operand is transposed through Eigen, and one of
    row-major operands through YNNPACK, 1.5 times faster at the tutorial's
    sizes (100 x 64 by 100 x 16: 10 us against 14 us). Larger or float32
    products keep XLA's own form (Eigen is faster there: 511 to 547 us
    against 606 to 625 us for 256 x 784 by 256 x 256 in float32). The value
    is the product's to the rounding of its sums.
    """
    return x @ w


def _dense_product_forward(x, w):
    return x @ w, (x, w)


def _dense_product_backward(residuals, g):
    x, w = residuals
    xt = x.T
    if x.dtype == jnp.float64 and x.size <= SMALL_PRODUCT:
        xt = lax.optimization_barrier(xt)
    return g @ w.T, xt @ g


dense_product.defvjp(_dense_product_forward, _dense_product_backward)


def bind_optimizer(solver, shapes, dtype):
    """A :class:`~sk_keras_digits._keras_optimizer.StatelessKerasOptimizer`."""
    return StatelessKerasOptimizer(solver, shapes, dtype)


def _private(value, dtype):
    """``value`` as a C-contiguous NumPy array of ``dtype`` that nobody else holds.

    JAX's CPU client takes a 64-byte aligned NumPy array over without copying
    it (``jax.device_put(..., may_alias=False)`` too, in JAX 0.10): the device
    array would then change with the caller's array. Putting a fresh copy on
    the device makes the device array the copy's only holder.
    """
    return np.array(value, dtype, copy=True, order="C")


def _device(value, dtype):
    """``value`` as a JAX array of ``dtype`` on the default device, a private copy.

    Converted by NumPy and put on the device as it is: ``jnp.asarray(value,
    dtype)`` would compile a conversion program for each new dtype and shape
    (about 0.1 s in a process' first fit).
    """
    return jax.device_put(_private(value, dtype))


def _to_arrays(structure, dtype):
    """The NumPy record ``structure`` as JAX arrays (None stays None)."""
    return jax.tree.map(lambda v: _device(v, leaf_dtype(v, dtype)), structure)


def _on_device(arrays, dtype):
    """The fit's data arrays as JAX arrays of ``dtype`` on the default device.

    On a CPU, arrays of
    :data:`~sk_keras_digits._backends._handover.LARGE_ARRAY_BYTES` and more
    are copied by NumPy into an aligned private buffer that JAX takes over
    through DLPack (:mod:`._handover`: for MNIST's 172 MB, 0.016 s against
    0.08 s for ``jax.device_put``); the others go through ``jax.device_put``
    of a private copy (:func:`_private`), as every array for another device
    goes through ``jax.device_put``. The caller's arrays are never shared.
    """
    if jax.default_backend() != "cpu":
        return jax.device_put([np.asarray(v, dtype) for v in arrays])
    itemsize = np.dtype(dtype).itemsize
    return [
        jax.dlpack.from_dlpack(_handover.aligned_copy(np.asarray(v, dtype)))
        if np.size(v) * itemsize >= _handover.LARGE_ARRAY_BYTES
        else _device(v, dtype)  # converted and copied in one step
        for v in arrays
    ]


def _host(structure, dtype):
    """A record of numbers as NumPy arrays of the program's dtypes.

    The compiled program takes NumPy arguments and moves them itself: for a
    call's numbers (the hyperparameters, the state it starts from, the epoch
    count) that costs about 2 us each, where ``jax.device_put`` costs 25 us.
    """
    return jax.tree.map(lambda v: np.asarray(v, leaf_dtype(v, dtype)), structure)


def _flattener(shapes):
    """Functions packing tensors of ``shapes`` into one vector and back."""
    sizes = [int(np.prod(s)) for s in shapes]
    splits = np.cumsum(sizes)[:-1].tolist()

    def pack(parts):
        return jnp.concatenate([jnp.ravel(p) for p in parts])

    def unpack(flat):
        parts = jnp.split(flat, splits)
        return [p.reshape(s) for p, s in zip(parts, shapes, strict=True)]

    return pack, unpack


def _identity(function, network, *settings):
    """A persistent program's description: what its trace depends on."""
    return repr((NAME, function, network.trace_key, *settings))


class TrainingProgram:
    """The jitted functions for one network structure and training setting.

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

    def __init__(self, network, config=None, state=None, layout=None):
        self.network = network
        self.dtype = np.dtype(network.compute_dtype).name
        #: Whether the program runs op by op (a network JAX cannot trace).
        self.fallback = False
        self._fallback_lock = threading.Lock()
        persistent = network.rows_independent  # the default network
        self._predict = Executables(jax.jit(self._predict_impl))
        self._loss_and_grad = Executables(
            jax.jit(self._loss_and_grad_impl),
            _identity("loss_and_grad", network) if persistent else None,
        )
        if config is None:
            return
        self.shuffle = config.shuffle
        self.early_stopping = config.early_stopping
        shapes = tuple(tuple(p.shape) for p in state.weights.params)
        self.solver = config.solver.bind(shapes, self.dtype, bind_optimizer)
        #: Whether the data are padded to a power of two of rows (with zero
        #: weights), so that one compiled program serves every data size in
        #: a bucket: only for networks whose rows do not interact.
        self.padded = layout.rows
        #: Whether the widths are padded and the gradient masked.
        self.masked = layout.masked
        #: Whether the loop carries the parameters as one flat vector.
        self.flat = layout.flat
        persistent = network.rows_independent and not config.solver.stateful
        self._run = Executables(
            jax.jit(self._run_impl, static_argnames=("batch_size", "capacity")),
            _identity(
                "run",
                network,
                config.solver.key,
                config.shuffle,
                config.early_stopping,
                self.padded,
                self.masked,
                self.flat,
            )
            if persistent
            else None,
        )

    def scope(self):
        """The compute scope of this program's dtype."""
        return compute_scope(self.dtype)

    def _function(self, executables, impl, *args, **static):
        """The compiled function for ``args``, or ``impl`` if JAX cannot trace.

        A network JAX cannot trace makes every function of the program run
        op by op from then on, with one warning.
        """
        if not self.fallback:
            try:
                return executables.executable(*args, **static)
            except Exception as e:
                refusal = _tracing_error(e)
                if refusal is None:
                    raise
                with self._fallback_lock:
                    warn, self.fallback = not self.fallback, True
                if warn:
                    how = "JAX's operations one by one"
                    warn_outside_xla(refusal, how, stacklevel=3)
        return functools.partial(_op_by_op, impl, static)

    # -- inference ---------------------------------------------------------
    def _predict_impl(self, params, buffers, x):
        proba, _, _ = self.network.forward(list(params), list(buffers), x, False)
        return proba

    def predict(self, weights, X):
        """Probabilities of ``X`` under ``weights`` (NumPy in and out).

        (Only custom networks predict here: the default network predicts
        with NumPy, :mod:`sk_keras_digits._inference`.)
        """
        with self.scope():
            args = (weights.params, weights.buffers, X)
            proba = self._function(self._predict, self._predict_impl, *args)(*args)
            return to_numpy(proba)

    # -- full-batch loss and gradient (lbfgs) --------------------------------
    def _loss_and_grad_impl(self, params, buffers, data, alpha):
        def loss(params):
            value, _ = batch_loss(self.network, params, list(buffers), data, alpha)
            return value

        value, grads = jax.value_and_grad(loss)(list(params))
        # One flat gradient, as SciPy takes it: a single array to read back.
        return value, jnp.concatenate([jnp.ravel(g) for g in grads])

    def objective(self, weights, data, alpha):
        """The full-batch loss and gradient as a function of the flat parameters.

        Returns ``f(flat) -> (loss, gradient)`` on float64 NumPy vectors, for
        SciPy; the data go to the device once.
        """
        dtype = self.dtype
        shapes = [np.shape(p) for p in weights.params]
        splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        if self.network.rows_independent and pads_data(*np.shape(data.X)):
            data = padded_rows(data)
        with self.scope():
            data = TrainingData(*(_device(v, dtype) for v in data))
            alpha = _device(alpha, dtype)
            buffers = _to_arrays(tuple(weights.buffers), dtype)

        def parts(flat):
            return [
                part.reshape(shape).astype(dtype)
                for part, shape in zip(np.split(flat, splits), shapes, strict=True)
            ]

        with self.scope():
            # Every evaluation has the signature of the starting parameters:
            # one lookup.
            loss_and_grad = self._function(
                self._loss_and_grad,
                self._loss_and_grad_impl,
                [np.asarray(p, dtype) for p in weights.params],
                buffers,
                data,
                alpha,
            )

        def f(flat):
            with self.scope():
                loss, grad = loss_and_grad(parts(flat), buffers, data, alpha)
            return float(loss), np.asarray(grad, dtype=np.float64)

        return f

    # -- stochastic epochs ---------------------------------------------------
    def _run_impl(self, *args, batch_size, capacity):
        return self._epochs(TRACED, *args, batch_size=batch_size, capacity=capacity)

    def _run_eager(self, *args, batch_size, capacity):
        return self._epochs(EAGER, *args, batch_size=batch_size, capacity=capacity)

    def _epochs(
        self,
        loops,
        state,
        data,
        validation,
        hyper,
        n_epochs,
        orders,
        n_rows,
        mask,
        *,
        batch_size,
        capacity,
    ):
        network, solver = self.network, self.solver
        schedule = solver.schedule
        dtype = data.X.dtype
        rows = data.X.shape[0]
        # Padded data: ``n_rows`` real rows (a traced number) then rows of
        # zero weight. Unpadded: every row is real, and ``n`` is static.
        n = n_rows if self.padded else rows
        n_full, rest = n // batch_size, n % batch_size
        # The loop carries the parameters' groups (each parameter, or one flat
        # vector: :mod:`._groups`), as does the solver state.
        groups = ParameterGroups(
            self.flat, *_flattener([p.shape for p in state.weights.params])
        )
        masks = None if mask is None else groups.split(mask)

        def step(carried, buffers, solver_state, lr, batch):
            def loss_of(carried):
                params = groups.params(carried)
                loss, new_buffers = batch_loss(
                    network, params, list(buffers), batch, hyper.alpha
                )
                return loss, tuple(new_buffers)

            (loss, new_buffers), grads = jax.value_and_grad(loss_of, has_aux=True)(
                list(carried)
            )
            carried, solver_state = apply_update(
                solver, carried, grads, solver_state, lr, hyper.solver, masks
            )
            return tuple(carried), new_buffers, solver_state, loss

        def run_epoch(carry):
            epoch, params, buffers, solver_state, progress, curves, status = carry
            # The epoch's order of the rows (:mod:`sk_keras_digits._shuffle`):
            # each batch gathers its own rows, so padded rows cost nothing.
            order = orders[epoch] if self.shuffle else None

            def take(start, size):
                if order is None:
                    return TrainingData(
                        *(lax.dynamic_slice_in_dim(v, start, size) for v in data)
                    )
                picked = lax.dynamic_slice_in_dim(order, start, size)
                return TrainingData(
                    *(
                        jnp.take(v, picked, axis=0, mode="clip", unique_indices=True)
                        for v in data
                    )
                )

            lr = progress.learning_rate

            def run_batch(i, inner):
                params, buffers, solver_state, total = inner
                batch = take(i * batch_size, batch_size)
                params, buffers, solver_state, loss = step(
                    params, buffers, solver_state, lr, batch
                )
                return params, buffers, solver_state, total + loss * batch_size

            def run_window(i, inner):
                # Batch ``i`` of padded data: the ``batch_size`` rows from
                # ``i * batch_size``, or for the last, smaller batch those
                # ending at the last real row, the rows of earlier batches
                # weighing zero. One compiled step for every batch.
                params, buffers, solver_state, total = inner
                first = i * batch_size
                start = jnp.minimum(first, jnp.maximum(n - batch_size, 0))
                batch = take(start, batch_size)
                index = start + jnp.arange(batch_size)
                weight = jnp.where(index >= first, batch.sample_weight, 0)
                params, buffers, solver_state, loss = step(
                    params,
                    buffers,
                    solver_state,
                    lr,
                    batch._replace(sample_weight=weight),
                )
                count = jnp.minimum(batch_size, n - first)
                return params, buffers, solver_state, total + loss * count

            inner = (params, buffers, solver_state, jnp.zeros([], dtype))
            if self.padded:
                n_batches = (n + batch_size - 1) // batch_size
                inner = loops.fori_loop(0, n_batches, run_window, inner)
                params, buffers, solver_state, total = inner
            else:
                inner = loops.fori_loop(0, n_full, run_batch, inner)
                params, buffers, solver_state, total = inner
                if rest:
                    batch = take(n_full * batch_size, rest)
                    params, buffers, solver_state, loss = step(
                        params, buffers, solver_state, lr, batch
                    )
                    total = total + loss * rest
            n_float = jnp.asarray(n).astype(dtype)
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
                c.at[epoch].set(v) for c, v in zip(curves, values, strict=True)
            )
            return epoch + 1, params, buffers, solver_state, progress, curves, status

        def go_on(carry):
            epoch, *_, status = carry
            return (epoch < n_epochs) & (status == RUNNING)

        progress = state.progress
        curves = (
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], bool),
        )
        carry = (
            jnp.zeros([], jnp.int32),
            groups.of(state.weights.params),
            tuple(state.weights.buffers),
            solver.start(state.weights.params, state.solver, groups.split),
            progress,
            curves,
            jnp.asarray(RUNNING, jnp.int32),
        )
        epoch, params, buffers, solver_state, progress, curves, status = (
            loops.while_loop(go_on, run_epoch, carry)
        )
        new_state = TrainingState(
            Weights(tuple(groups.params(params)), buffers),
            solver.finish(solver_state, groups.join),
            progress,
        )
        return new_state, curves, epoch, status

    def prepare(self, state, data, validation, hyper, layout):
        """The fit's inputs and starting state as JAX arrays (converted once).

        ``data``, ``validation`` and ``state`` come padded as ``layout`` (a
        :class:`~sk_keras_digits._training.FitLayout`) says: with
        :attr:`padded`, the data have ``layout.n_rows`` real rows, then rows
        of zero weight.
        """
        dtype = self.dtype
        with self.scope():
            # The data go to the device once per fit; the numbers and the
            # starting state go with the first call.
            inputs = FitInputs(
                TrainingData(*_on_device(data, dtype)),
                None
                if validation is None
                else TrainingData(*_on_device(validation, dtype)),
                jax.tree.map(lambda v: np.asarray(v, dtype), hyper),
                layout.n_rows,
                None if layout.mask is None else _device(layout.mask, None),
            )
            return inputs, _host(state, dtype)

    def run(self, state, inputs, batch_size, n_epochs, length, orders):
        """Run up to ``n_epochs`` epochs from ``state`` (JAX or NumPy arrays).

        ``length`` is the length of the per-epoch buffers, ``orders`` the row
        order of each epoch (:mod:`sk_keras_digits._shuffle`), or None
        without shuffling.

        Returns
        -------
        ChunkResult
        """
        with self.scope():
            args = (
                state,
                inputs.data,
                inputs.validation,
                inputs.hyper,
                np.asarray(n_epochs, np.int32),
                None if orders is None else np.asarray(orders, np.int32),
                np.asarray(inputs.n_rows, np.int32),
                inputs.mask,
            )
            run = self._function(
                self._run,
                self._run_eager,
                *args,
                batch_size=int(batch_size),
                capacity=length,
            )
            new_state, curves, epochs, status = run(*args)
            epochs = int(epochs)
            names = ("losses", "scores", "learning_rates", "triggered")
            lists = {
                k: np.asarray(c)[:epochs].tolist()
                for k, c in zip(names, curves, strict=True)
            }
        return ChunkResult(new_state, lists, epochs, int(status))

    def compilations(self):
        """How many variants of the training function were compiled.

        JAX compiles one per input shape and static argument; those read
        from the persistent compilation cache are not compiled (see
        :meth:`loaded`).
        """
        return self._run.compiled

    def loaded(self):
        """How many variants were read from the persistent compilation cache."""
        return self._run.loaded

    def to_numpy(self, arrays, like):
        """JAX arrays back to the NumPy record ``like``."""
        return restore(arrays, like, to_numpy)

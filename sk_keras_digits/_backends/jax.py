"""The JAX backend: the training program as ``jax.jit`` functions.

Training runs whole epochs inside one jitted function: the batches
(``lax.fori_loop`` over full batches, then the last, smaller one), the solver's
updates (:mod:`sk_keras_digits._solvers`), the shuffling (``jax.random``, from
a seed drawn from ``random_state``) and the end-of-epoch rules
(:mod:`sk_keras_digits._stopping`) in a ``lax.while_loop`` over epochs. JAX
compiles one program per input shape; a program object keeps its compiled
shapes, and the per-epoch curves are buffers of a bucketed length so that
chunks of different lengths share them.

Float64 (input of dtype float64, as MLPClassifier trains on) needs JAX's
64-bit mode. It is enabled only inside :func:`compute_scope`, a
``jax.enable_x64`` context of the calling thread: the user's global JAX
configuration is never changed. Outside it, a float64 ``model_`` computes in
float32 (JAX's rule for every float64 array).

A user's Keras optimizer is applied with ``Optimizer.stateless_apply``
(:class:`~sk_keras_digits._solvers.StatelessKerasOptimizer`), so no program
holds state and none needs a lock.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._objective import batch_loss
from .._solvers import StatelessKerasOptimizer, apply_update
from .._state import RUNNING, TrainingState, Weights
from .._stopping import close_epoch
from .._training_config import TrainingData
from . import ChunkResult
from ._records import leaf_dtype, restore

NAME = "jax"

#: Shortest per-epoch curve buffer of a call (lengths are powers of two).
_MIN_CAPACITY = 16


def compute_scope(dtype):
    """Around Keras computations in ``dtype``: float64 enabled for float64.

    ``jax.enable_x64`` is a context of the calling thread; nothing global
    changes, and other threads keep their own setting.
    """
    if np.dtype(dtype) == np.float64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


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
    import keras

    if name == "tanh":
        return jnp.tanh
    return keras.activations.get(name)


def bind_optimizer(solver, shapes, dtype):
    """A :class:`~sk_keras_digits._solvers.StatelessKerasOptimizer`."""
    return StatelessKerasOptimizer(solver, shapes, dtype)


def _to_arrays(structure, dtype):
    """The NumPy record ``structure`` as JAX arrays (None stays None)."""
    return jax.tree.map(lambda v: jnp.asarray(v, leaf_dtype(v, dtype)), structure)


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


def _padded_rows(n):
    """The rows data of ``n`` rows are padded to: a power of two >= ``n``."""
    return 1 << max(n - 1, 0).bit_length()


def _padded(part, rows):
    """``part`` (a TrainingData of NumPy arrays) with zero rows up to ``rows``.

    The added rows have zero weight: they change no loss, gradient or score.
    """
    extra = rows - len(part.X)
    if extra == 0:
        return part
    return TrainingData(
        *(np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)]) for v in part)
    )


def _capacity(n_epochs):
    """The length of a call's curve buffers: a power of two >= ``n_epochs``."""
    return max(_MIN_CAPACITY, 1 << max(n_epochs - 1, 0).bit_length())


class FitInputs:
    """A fit's data and numbers as JAX arrays, put on the device once.

    ``n_rows`` is the number of real rows of ``data`` (the rest is padding).
    """

    def __init__(self, data, validation, hyper, n_rows):
        self.data = data
        self.validation = validation
        self.hyper = hyper
        self.n_rows = n_rows


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
    """

    def __init__(self, network, config=None, state=None):
        self.network = network
        self.dtype = np.dtype(network.compute_dtype).name
        self._predict = jax.jit(self._predict_impl)
        self._loss_and_grad = jax.jit(self._loss_and_grad_impl)
        if config is None:
            return
        self.shuffle = config.shuffle
        self.early_stopping = config.early_stopping
        shapes = tuple(tuple(p.shape) for p in state.weights.params)
        self.solver = config.solver.bind(shapes, self.dtype, bind_optimizer)
        #: Whether the data are padded to a power of two of rows (with zero
        #: weights), so that one compiled program serves every data size in
        #: a bucket: only for networks whose rows do not interact.
        self.padded = network.rows_independent
        self._run = jax.jit(self._run_impl, static_argnames=("batch_size", "capacity"))

    def scope(self):
        """The compute scope of this program's dtype."""
        return compute_scope(self.dtype)

    # -- inference ---------------------------------------------------------
    def _predict_impl(self, params, buffers, x):
        proba, _, _ = self.network.forward(list(params), list(buffers), x, False)
        return proba

    def predict(self, weights, X):
        """Probabilities of ``X`` under ``weights`` (NumPy in and out)."""
        with self.scope():
            proba = self._predict(weights.params, weights.buffers, X)
            return to_numpy(proba)

    # -- full-batch loss and gradient (lbfgs) --------------------------------
    def _loss_and_grad_impl(self, params, buffers, data, alpha):
        def loss(params):
            proba, _, extra = self.network.forward(params, list(buffers), data.X, True)
            return batch_loss(
                self.network, params, proba, data.Y, data.sample_weight, extra, alpha
            )

        return jax.value_and_grad(loss)(list(params))

    def objective(self, weights, data, alpha):
        """The full-batch loss and gradient as a function of the flat parameters.

        Returns ``f(flat) -> (loss, gradient)`` on float64 NumPy vectors, for
        SciPy; the data go to the device once.
        """
        dtype = self.dtype
        shapes = [np.shape(p) for p in weights.params]
        splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        if self.network.rows_independent:
            data = _padded(data, _padded_rows(len(data.X)))
        with self.scope():
            data = TrainingData(*(jnp.asarray(v, dtype) for v in data))
            alpha = jnp.asarray(alpha, dtype)
            buffers = _to_arrays(tuple(weights.buffers), dtype)

        def f(flat):
            params = [
                part.reshape(shape).astype(dtype)
                for part, shape in zip(np.split(flat, splits), shapes, strict=True)
            ]
            with self.scope():
                loss, grads = self._loss_and_grad(params, buffers, data, alpha)
                grad = np.concatenate([np.asarray(g).ravel() for g in grads])
            return float(loss), grad.astype(np.float64)

        return f

    # -- stochastic epochs ---------------------------------------------------
    def _run_impl(
        self,
        state,
        data,
        validation,
        hyper,
        n_epochs,
        seed,
        n_rows,
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
        pack, unpack = _flattener([p.shape for p in state.weights.params])
        base_key = jax.random.key(seed[0])

        def step(flat, buffers, solver_state, lr, batch):
            def loss_of(params):
                proba, new_buffers, extra = network.forward(
                    params, list(buffers), batch.X, True
                )
                loss = batch_loss(
                    network,
                    params,
                    proba,
                    batch.Y,
                    batch.sample_weight,
                    extra,
                    hyper.alpha,
                )
                return loss, tuple(new_buffers)

            params = unpack(flat)
            (loss, new_buffers), grads = jax.value_and_grad(loss_of, has_aux=True)(
                params
            )
            flat, solver_state = apply_update(
                solver, flat, params, grads, pack, solver_state, lr, hyper.solver
            )
            return flat, new_buffers, solver_state, loss

        def run_epoch(carry):
            epoch, flat, buffers, solver_state, progress, curves, status = carry
            batches = data
            if self.shuffle:
                # Keyed by the epoch's index in the fit (``seed[1]`` is the
                # index of this call's first epoch): chunks do not matter.
                key = jax.random.fold_in(base_key, seed[1] + epoch.astype(seed.dtype))
                if self.padded:
                    # A random order of the real rows, the padding after them:
                    # the real rows of a permutation of all rows, in its order
                    # (a uniform permutation of them, whatever the dtype).
                    order = jax.random.permutation(key, rows)
                    order = order[jnp.argsort(order >= n, stable=True)]
                else:
                    order = jax.random.permutation(key, n)
                batches = TrainingData(*(part[order] for part in data))
            lr = progress.learning_rate

            def run_batch(i, inner):
                flat, buffers, solver_state, total = inner
                batch = TrainingData(
                    *(
                        lax.dynamic_slice_in_dim(part, i * batch_size, batch_size)
                        for part in batches
                    )
                )
                flat, buffers, solver_state, loss = step(
                    flat, buffers, solver_state, lr, batch
                )
                return flat, buffers, solver_state, total + loss * batch_size

            inner = (flat, buffers, solver_state, jnp.zeros([], dtype))
            inner = lax.fori_loop(0, n_full, run_batch, inner)
            if self.padded:
                # The last, smaller batch: the ``batch_size`` rows ending at
                # the last real row, those of earlier batches weighing zero.
                def run_last(inner):
                    flat, buffers, solver_state, total = inner
                    start = n - batch_size
                    batch = TrainingData(
                        *(
                            lax.dynamic_slice_in_dim(part, start, batch_size)
                            for part in batches
                        )
                    )
                    index = start + jnp.arange(batch_size)
                    weight = jnp.where(
                        index >= n_full * batch_size, batch.sample_weight, 0
                    )
                    flat, buffers, solver_state, loss = step(
                        flat,
                        buffers,
                        solver_state,
                        lr,
                        batch._replace(sample_weight=weight),
                    )
                    return flat, buffers, solver_state, total + loss * rest

                inner = lax.cond(rest > 0, run_last, lambda inner: inner, inner)
                flat, buffers, solver_state, total = inner
            else:
                flat, buffers, solver_state, total = inner
                if rest:
                    batch = TrainingData(
                        *(part[n_full * batch_size : n] for part in batches)
                    )
                    flat, buffers, solver_state, loss = step(
                        flat, buffers, solver_state, lr, batch
                    )
                    total = total + loss * rest
            n_float = jnp.asarray(n).astype(dtype)
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
            values = (loss, score, progress.learning_rate, triggered)
            curves = tuple(
                c.at[epoch].set(v) for c, v in zip(curves, values, strict=True)
            )
            return epoch + 1, flat, buffers, solver_state, progress, curves, status

        def go_on(carry):
            epoch, *_, status = carry
            return (epoch < n_epochs) & (status == RUNNING)

        progress = state.progress
        if self.early_stopping:
            kept = progress.best_weights
            progress = progress._replace(
                best_weights=Weights((pack(kept.params),), tuple(kept.buffers))
            )
        curves = (
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], dtype),
            jnp.zeros([capacity], bool),
        )
        carry = (
            jnp.zeros([], jnp.int32),
            pack(state.weights.params),
            tuple(state.weights.buffers),
            solver.start(state.weights.params, state.solver),
            progress,
            curves,
            jnp.asarray(RUNNING, jnp.int32),
        )
        epoch, flat, buffers, solver_state, progress, curves, status = lax.while_loop(
            go_on, run_epoch, carry
        )
        if self.early_stopping:
            kept = progress.best_weights
            progress = progress._replace(
                best_weights=Weights(tuple(unpack(kept.params[0])), kept.buffers)
            )
        new_state = TrainingState(
            Weights(tuple(unpack(flat)), buffers), solver.finish(solver_state), progress
        )
        return new_state, curves, epoch, status

    def prepare(self, state, data, validation, hyper):
        """The fit's inputs and starting state as JAX arrays (converted once).

        With :attr:`padded`, the data and the validation split are padded to
        a power of two of rows with zero weights, so that fits on 600 or 1000
        rows (the folds of a grid search) run one compiled program.
        """
        dtype = self.dtype
        n_rows = len(data.X)
        if self.padded:
            data = _padded(data, _padded_rows(n_rows))
            if validation is not None:
                validation = _padded(validation, _padded_rows(len(validation.X)))
        with self.scope():

            def arrays(part):
                return TrainingData(*(jnp.asarray(v, dtype) for v in part))

            inputs = FitInputs(
                arrays(data),
                None if validation is None else arrays(validation),
                jax.tree.map(lambda v: jnp.asarray(v, dtype), hyper),
                n_rows,
            )
            return inputs, _to_arrays(state, dtype)

    def run(self, state, inputs, batch_size, n_epochs, seed):
        """Run up to ``n_epochs`` epochs from ``state`` (JAX arrays).

        Returns
        -------
        ChunkResult
        """
        with self.scope():
            new_state, curves, epochs, status = self._run(
                state,
                inputs.data,
                inputs.validation,
                inputs.hyper,
                jnp.asarray(n_epochs, jnp.int32),
                jnp.asarray(seed, jnp.uint32),
                jnp.asarray(inputs.n_rows, jnp.int32),
                batch_size=int(batch_size),
                capacity=_capacity(n_epochs),
            )
            epochs = int(epochs)
            names = ("losses", "scores", "learning_rates", "triggered")
            lists = {
                k: np.asarray(c)[:epochs].tolist()
                for k, c in zip(names, curves, strict=True)
            }
        return ChunkResult(new_state, lists, epochs, int(status))

    def compilations(self):
        """How many variants of the training function were compiled.

        JAX compiles one per input shape and static argument.
        """
        return self._run._cache_size()

    def to_numpy(self, arrays, like):
        """JAX arrays back to the NumPy record ``like``."""
        return restore(arrays, like, to_numpy)

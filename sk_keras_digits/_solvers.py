"""Stochastic solvers and learning-rate schedules as small objects.

Each solver owns its state layout (a record of :mod:`sk_keras_digits._state`),
its update rule and its learning-rate schedule. The update rules are those of
scikit-learn's ``SGDOptimizer`` and ``AdamOptimizer``
(``sklearn/neural_network/_stochastic_optimizers.py``), written as pure
functions of tensors so that they run inside the compiled training loop.

A solver object holds only the settings that shape the compiled graph (its
:attr:`~SGD.key`); its numbers (learning rate, momentum, ...) are a
:class:`~typing.NamedTuple` of floats, ``solver.Hyper``, that enters the loop as
tensors. So one compiled loop serves every learning rate of a grid search, and
an update rule cannot bake a number into a shared program by mistake: it reads
numbers only from its ``hyper`` argument.

Inside the loop the parameters travel as one flat vector, and so does every
per-parameter part of a solver's state (``velocity``, ``m``, ``v``).

:class:`KerasOptimizer` trains with a user's ``keras.optimizers.Optimizer``
instead, rebuilt from its class and config. The backend module decides its
form in the program (:meth:`KerasOptimizer.bind`): on JAX a
:class:`StatelessKerasOptimizer` (``Optimizer.stateless_apply``, a pure
function like the built-in rules); on TensorFlow, where ``stateless_apply`` is
not supported, a private optimizer whose variables each call loads and reads
back. Either way its state crosses the program's boundary as a record
(:class:`~sk_keras_digits._state.OptimizerState`), so a fit's state lives in
the estimator, never in the program.

The update rules and schedules are written with ``keras.ops``, once for every
backend.

Each solver also checks its own state's layout (:meth:`SGD.check_state`), for
``partial_fit``, which carries the state across calls, and for ``load``, which
reads it from a file (:func:`check_saved_state`). :func:`solver_for` makes the
solver of an estimator's parameters. Importing this module, making a built-in
solver and checking a state import no backend: the update rules import
Keras when the training loop traces them.
"""

import json
import math
from typing import NamedTuple

import numpy as np

from ._cache import LRUCache
from ._names import qualified_name
from ._objective import constant, dtype_of
from ._state import (
    CONVERGED,
    LEARNING_RATE_TOO_SMALL,
    AdamState,
    OptimizerState,
    SGDState,
)


def _ops():
    import keras

    return keras.ops


#: Where a solver state is in a fitted state, for messages.
STATE_PATH = "state.training.solver"


# ---------------------------------------------------------------- schedules
class Constant:
    """Keep the learning rate; stop when the ``n_iter_no_change`` rule fires."""

    key = "constant"
    #: The status of a fit this schedule stops.
    stop_status = CONVERGED

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        """The learning rate for the next epoch."""
        return learning_rate

    def on_plateau(self, learning_rate, hyper):
        """The rule fired: the new learning rate, and whether to go on."""
        return learning_rate, _ops().convert_to_tensor(False)


class InvScaling(Constant):
    """``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen."""

    key = "invscaling"

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        ops = _ops()
        return hyper.learning_rate_init / ops.power(samples_seen + 1, hyper.power_t)


class Adaptive(Constant):
    """Divide the learning rate by 5 each time the rule fires, down to 1e-6."""

    key = "adaptive"
    stop_status = LEARNING_RATE_TOO_SMALL

    def on_plateau(self, learning_rate, hyper):
        ops = _ops()
        go_on = ops.greater(learning_rate, constant(1e-6, dtype_of(learning_rate)))
        return ops.where(go_on, learning_rate / 5, learning_rate), go_on


SCHEDULES = {s.key: s for s in (Constant, InvScaling, Adaptive)}


# ------------------------------------------------------------------ solvers
class _Solver:
    """What the training loop expects of a solver, with the pure defaults.

    A pure solver updates the flat parameter vector (:attr:`flat` is True) as a
    function of tensors; its program needs no binding and no lock.
    """

    #: Whether :meth:`update` takes and returns the flat parameter vector (or,
    #: when False, the list of parameter tensors and their gradients).
    flat = True
    #: Whether a program needs the parameters' exact shapes to bind the
    #: solver (a Keras optimizer is built on variables of those shapes).
    stateful = False

    def bind(self, shapes, dtype, bind_optimizer):
        """The solver a program traces, for parameters of ``shapes``.

        Parameters
        ----------
        shapes : tuple of tuple of int
            The parameters' shapes (only read by a stateful solver).
        dtype : str
            Their dtype.
        bind_optimizer : callable
            The ``bind_optimizer`` of the backend module compiling the
            program (:mod:`sk_keras_digits._backends`).
        """
        return self

    def aligned_state(self, state, weights):
        """``state`` as this backend's program takes it (unchanged here)."""
        return state

    def start(self, params, state):
        """Called once per program call, before the epochs (tensors)."""
        return state

    def finish(self, state):
        """The solver state the program call returns (tensors)."""
        return state

    @property
    def label(self):
        """The solver as the ``solver`` parameter names it, for messages."""
        return repr(self.name)

    def check_state(self, state, weights):
        """Refuse a solver state that this solver did not lay out for ``weights``.

        Parameters
        ----------
        state : SGDState, AdamState or OptimizerState
            The state to check (NumPy arrays).
        weights : Weights
            The network's weights the state goes with.

        Raises
        ------
        ValueError
            Naming the field (``state.training.solver.<field>``), its value
            and what was expected.
        """
        if type(state) is not self.state_type:
            raise ValueError(
                f"{STATE_PATH} should be a {self.state_type.__name__} for "
                f"solver={self.label}, got {_describe(state)}."
            )
        self._check_fields(state, weights)


def _describe(value):
    text = repr(value) if not isinstance(value, tuple) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _check_vectors(vectors, weights):
    """Each vector: one finite value per trainable scalar, of the weights' dtype."""
    size, dtype = weights.size, _dtype(weights)
    for name, vector in vectors.items():
        where = f"{STATE_PATH}.{name}"
        if (
            not isinstance(vector, np.ndarray)
            or vector.shape != (size,)
            or vector.dtype != dtype
        ):
            raise ValueError(
                f"{where} should be an array of shape ({size},) and dtype {dtype}, "
                f"got {_describe(vector)}."
            )
        if not np.isfinite(vector).all():
            raise ValueError(f"{where} holds non-finite values.")


class SGD(_Solver):
    """Stochastic gradient descent with momentum, as scikit-learn's ``SGDOptimizer``.

    Parameters
    ----------
    nesterov : bool
        Whether to use Nesterov's momentum.
    schedule : Constant, InvScaling or Adaptive
        The learning-rate schedule.
    """

    name = "sgd"
    #: The record of its state.
    state_type = SGDState

    class Hyper(NamedTuple):
        learning_rate_init: float
        momentum: float
        power_t: float

    def __init__(self, nesterov=True, schedule=None):
        self.nesterov = bool(nesterov)
        self.schedule = Constant() if schedule is None else schedule

    @property
    def key(self):
        """The settings that shape the compiled graph."""
        return (self.name, self.nesterov, self.schedule.key)

    def initial_state(self, weights):
        """Zero velocity for ``weights``' trainable variables."""
        return SGDState(velocity=np.zeros(weights.size, _dtype(weights)))

    def _check_fields(self, state, weights):
        _check_vectors({"velocity": state.velocity}, weights)

    def update(self, params, grads, state, learning_rate, hyper):
        """One step: the new flat parameters and state (tensors)."""
        momentum = hyper.momentum
        velocity = momentum * state.velocity - learning_rate * grads
        if self.nesterov:
            update = momentum * velocity - learning_rate * grads
        else:
            update = velocity
        return params + update, SGDState(velocity)


class Adam(_Solver):
    """Adam, as scikit-learn's ``AdamOptimizer``; the learning rate is constant."""

    name = "adam"
    state_type = AdamState

    class Hyper(NamedTuple):
        learning_rate_init: float
        beta_1: float
        beta_2: float
        epsilon: float

    def __init__(self):
        self.schedule = Constant()

    @property
    def key(self):
        return (self.name,)

    def initial_state(self, weights):
        """Zero moments and step count for ``weights``' trainable variables."""
        dtype = _dtype(weights)
        return AdamState(
            step=0.0,
            m=np.zeros(weights.size, dtype),
            v=np.zeros(weights.size, dtype),
        )

    def _check_fields(self, state, weights):
        _check_vectors({"m": state.m, "v": state.v}, weights)
        step = state.step
        if not (math.isfinite(step) and step >= 0):
            raise ValueError(
                f"{STATE_PATH}.step should be a finite number >= 0, got {step!r}."
            )
        if (state.v < 0).any():
            raise ValueError(f"{STATE_PATH}.v holds negative second moments.")

    def update(self, params, grads, state, learning_rate, hyper):
        ops = _ops()
        beta_1, beta_2 = hyper.beta_1, hyper.beta_2
        step = state.step + 1
        m = beta_1 * state.m + (1 - beta_1) * grads
        v = beta_2 * state.v + (1 - beta_2) * ops.square(grads)
        rate = (
            learning_rate
            * ops.sqrt(1 - ops.power(beta_2, step))
            / (1 - ops.power(beta_1, step))
        )
        # XLA and TensorFlow flush subnormal numbers to zero: an epsilon below
        # the dtype's smallest normal number (``epsilon=5e-324``) would divide
        # a zero gradient's zero moments by zero, where MLPClassifier moves
        # nothing. It counts as that smallest normal number instead.
        dtype = dtype_of(params)
        epsilon = ops.maximum(
            ops.cast(hyper.epsilon, dtype), constant(np.finfo(dtype).tiny, dtype)
        )
        params = params - rate * m / (ops.sqrt(v) + epsilon)
        return params, AdamState(step, m, v)


def apply_update(
    solver, flat, params, grads, pack, state, learning_rate, hyper, mask=None
):
    """One step of a bound solver: the new flat parameters and solver state.

    A flat solver updates the flat parameter vector with the flat gradient;
    the others (a Keras optimizer on the parameters' shapes) update the list
    of parameters, packed again after. ``pack`` turns a list of tensors into
    one flat vector; ``hyper`` is the solver's numbers. ``mask`` (a boolean
    flat vector, for a fit padded in width, see :mod:`sk_keras_digits._padding`)
    zeroes the gradient of the padding, which so never moves.
    """
    if solver.flat:
        grad = pack(grads)
        if mask is not None:
            grad = _ops().where(mask, grad, _ops().zeros_like(grad))
        return solver.update(flat, grad, state, learning_rate, hyper)
    params, state = solver.update(params, grads, state, learning_rate, hyper)
    return pack(params), state


def _dtype(weights):
    return weights.params[0].dtype


# ------------------------------------------------------- Keras optimizers
class OptimizerLearningRate(Constant):
    """The learning rate a Keras optimizer applies now; the rule stops training.

    The optimizer owns its learning rate and schedule: this reports
    ``optimizer.learning_rate`` (a ``LearningRateSchedule`` evaluated at the
    optimizer's ``iterations``) after each epoch, and stops training when the
    ``n_iter_no_change`` rule fires, as with ``solver="adam"``.
    """

    key = "keras"

    def __init__(self, optimizer, stateless):
        self.optimizer = optimizer
        self.stateless = stateless

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        """The optimizer's learning rate, read from its variables' new values.

        With a stateless optimizer its variables' values are ``solver_state``
        (a schedule is evaluated at the ``iterations`` they hold); a stateful
        one holds them itself.
        """
        import keras

        if self.stateless:
            mapping = list(
                zip(self.optimizer.variables, solver_state.variables, strict=True)
            )
            with keras.StatelessScope(state_mapping=mapping):
                rate = self.optimizer.learning_rate
        else:
            rate = self.optimizer.learning_rate
        return keras.ops.cast(rate, learning_rate.dtype)


def describe(optimizer):
    """A short name for an optimizer object in messages: ``'<AdamW>'``."""
    return f"<{type(optimizer).__name__}>"


def _canonical_config(config):
    """``config`` as canonical JSON, without the optimizer's (unique) name.

    Keras gives every optimizer a name made unique in the process (``adam``,
    ``adam_1``, ...); the name does not change the computation, so it is
    left out of the key.
    """
    config = {k: v for k, v in config.items() if k != "name"}
    return json.dumps(config, sort_keys=True, default=repr)


class KerasOptimizer(_Solver):
    """A ``keras.optimizers.Optimizer``, rebuilt from its class and config.

    The user's optimizer is only read (its class and ``get_config()``): it is
    never built, applied or changed. Every fit starts from a fresh optimizer's
    state (:meth:`initial_state`); the compiled program trains with its own
    optimizer built from the same config (:meth:`bind`), into whose variables
    each call assigns the incoming state and from which it reads the new one.

    Parameters
    ----------
    optimizer : keras.optimizers.Optimizer
        The user's optimizer (not built by this object).
    """

    name = "keras"
    flat = False
    stateful = True
    state_type = OptimizerState

    class Hyper(NamedTuple):
        """No numbers: the optimizer's own are part of :attr:`key`."""

    #: Keras' optimizers whose update of a scalar depends only on that
    #: scalar's gradient and slots (and on global counters): built on one
    #: flat variable, they compute what they compute on the parameters'
    #: shapes, in fewer (larger) operations. Exact classes only: a subclass
    #: may change the rule. ``clipnorm`` (a norm per variable) opts out.
    ELEMENTWISE = (
        "Adadelta",
        "Adagrad",
        "Adam",
        "Adamax",
        "AdamW",
        "Ftrl",
        "Lion",
        "Nadam",
        "RMSprop",
        "SGD",
    )

    def __init__(self, optimizer):
        import keras

        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                "solver must be 'lbfgs', 'sgd', 'adam' or a "
                f"keras.optimizers.Optimizer instance; got {optimizer!r}."
            )
        from ._fixes import serialization_without_tensorflow

        with serialization_without_tensorflow():
            config = optimizer.get_config()
        if config.get("use_ema"):
            raise ValueError(
                f"solver={describe(optimizer)} has use_ema=True, which is not "
                "supported: the estimator keeps the trained weights, not their "
                "moving average. Pass an optimizer with use_ema=False."
            )
        # Set by ``exclude_from_weight_decay``, which get_config() leaves out:
        # a copy made from the config would decay every variable.
        if getattr(optimizer, "_exclude_from_weight_decay", None) or getattr(
            optimizer, "_exclude_from_weight_decay_pattern", None
        ):
            raise ValueError(
                f"solver={describe(optimizer)} excludes variables from weight "
                "decay (exclude_from_weight_decay), which its get_config() does "
                "not record, so the optimizer cannot be rebuilt with it. Use "
                "alpha (an L2 penalty on the kernels only) instead."
            )
        self.optimizer_class = type(optimizer)
        self.config = config
        self.schedule = Constant()
        self.elementwise = (
            any(
                self.optimizer_class is getattr(keras.optimizers, name)
                for name in self.ELEMENTWISE
            )
            and config.get("clipnorm") is None
        )
        #: The optimizer's class and configuration: they shape the graph.
        self.key = (
            self.name,
            qualified_name(self.optimizer_class),
            _canonical_config(config),
        )

    def layout(self, shapes):
        """Shapes of the variables the optimizer is built on, for ``shapes``.

        One flat vector for an element-wise optimizer (the order of the
        parameters, flattened: the training loop's own layout), else the
        parameters' shapes.
        """
        if self.elementwise:
            return ((sum(int(np.prod(s)) for s in shapes),),)
        return shapes

    def new_optimizer(self):
        """A fresh, unbuilt optimizer of the user's class and config."""
        return self.optimizer_class.from_config(self.config)

    def initial_state(self, weights):
        """The state of a fresh optimizer built for ``weights``' parameters."""
        shapes = self.layout(tuple(p.shape for p in weights.params))
        dtype = weights.params[0].dtype.name
        from ._backends import name

        values = _INITIAL.get(
            (name(), self.key, shapes, dtype),
            lambda: _initial_values(self, shapes, dtype),
        )
        return OptimizerState(values)

    def aligned_state(self, state, weights):
        """``state`` with each variable in this backend's dtype for it.

        Backends keep an optimizer's counter in different integer types
        (``iterations`` is int64 on TensorFlow, int32 on JAX without x64),
        so a state saved on one backend continues training on another.
        """
        expected = self.initial_state(weights).variables
        return OptimizerState(
            tuple(
                np.asarray(v, dtype=e.dtype)
                for v, e in zip(state.variables, expected, strict=True)
            )
        )

    def bind(self, shapes, dtype, bind_optimizer):
        """The backend's form of this optimizer, for parameters of ``shapes``."""
        return bind_optimizer(self, shapes, dtype)

    @property
    def label(self):
        return f"<{self.optimizer_class.__name__}>"

    def _check_fields(self, state, weights):
        check_variables(state)
        expected = self.initial_state(weights).variables
        layout = [(v.shape, _kind(v.dtype)) for v in state.variables]
        wanted = [(v.shape, _kind(v.dtype)) for v in expected]
        if layout != wanted:
            raise ValueError(
                f"{STATE_PATH}.variables should be laid out as "
                f"{self.optimizer_class.__name__}'s variables {wanted} for these "
                f"weights, got {layout}."
            )


def _kind(dtype):
    """A variable's dtype as a layout compares it: any width of integer counts.

    Backends count steps in different integer types; float slots must have
    the parameters' own dtype.
    """
    return "integer" if dtype.kind in "iu" else dtype.str


def check_variables(state):
    """Refuse a Keras optimizer's variables that are not finite numbers.

    Their layout is the optimizer's own (:meth:`KerasOptimizer.check_state`).
    """
    where = f"{STATE_PATH}.variables"
    for i, v in enumerate(state.variables):
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "iuf":
            raise ValueError(
                f"{where}[{i}] should be a numeric array, got {_describe(v)}."
            )
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError(f"{where}[{i}] holds non-finite values.")
        if v.dtype.kind in "iu" and (v < 0).any():
            raise ValueError(f"{where}[{i}] holds a negative count.")


def check_saved_state(state, weights, solver):
    """Refuse a saved solver state that the solver which made it did not lay out.

    The state's own solver checks it, whatever the ``solver`` parameter is
    now (``set_params`` may change it after a fit; ``partial_fit`` then
    refuses the state, and ``fit`` starts afresh).

    Parameters
    ----------
    state : SGDState, AdamState, OptimizerState or None
    weights : Weights
    solver : str or keras.optimizers.Optimizer
        The ``solver`` parameter. The layout of a Keras optimizer's state is
        checked against this optimizer, if it is one.

    Raises
    ------
    ValueError
        As :meth:`SGD.check_state`.
    """
    if state is None:
        return
    if isinstance(state, OptimizerState):
        if isinstance(solver, str):
            check_variables(state)  # nothing reads its layout
            return
        KerasOptimizer(solver).check_state(state, weights)
        return
    {SGDState: SGD, AdamState: Adam}[type(state)]().check_state(state, weights)


def solver_for(params):
    """The solver object and its numbers (``solver.Hyper``) for these parameters.

    Parameters
    ----------
    params : dict
        A stochastic estimator's parameters (``get_params()``): ``solver`` is
        ``'sgd'``, ``'adam'`` or a ``keras.optimizers.Optimizer``.

    Returns
    -------
    solver : SGD, Adam or KerasOptimizer
    numbers : NamedTuple
        ``solver.Hyper`` of the parameters' floats.
    """
    name = params["solver"]
    if isinstance(name, str) and name == "sgd":
        solver = SGD(
            nesterov=params["nesterovs_momentum"] and params["momentum"] > 0,
            schedule=SCHEDULES[params["learning_rate"]](),
        )
        return solver, solver.Hyper(
            learning_rate_init=float(params["learning_rate_init"]),
            momentum=float(params["momentum"]),
            power_t=float(params["power_t"]),
        )
    if isinstance(name, str) and name == "adam":
        solver = Adam()
        return solver, solver.Hyper(
            learning_rate_init=float(params["learning_rate_init"]),
            beta_1=float(params["beta_1"]),
            beta_2=float(params["beta_2"]),
            epsilon=float(params["epsilon"]),
        )
    _check_optimizer_settings(params)
    solver = KerasOptimizer(name)
    return solver, solver.Hyper()


def _check_optimizer_settings(params):
    """Refuse a built-in learning-rate schedule with a Keras optimizer object.

    The built-in solvers' other settings are unused with an optimizer object,
    as MLPClassifier leaves ``momentum`` unused with ``'adam'``, so that one
    grid can search string solvers and optimizer objects.
    """
    if params["learning_rate"] != "constant":
        raise ValueError(
            f"learning_rate={params['learning_rate']!r} is a schedule of the "
            "built-in 'sgd' solver; it has no meaning with "
            f"solver={describe(params['solver'])}, whose own learning "
            "rate applies. Give the optimizer a "
            "keras.optimizers.schedules.LearningRateSchedule instead, or "
            "leave learning_rate='constant'."
        )


def build_optimizer(solver, shapes, dtype):
    """A fresh optimizer built on new Keras variables of ``shapes`` and ``dtype``.

    The variables are named ``kernel`` or ``bias`` by rank, as the ``Dense``
    layers' are, so an optimizer's name-based rules
    (``exclude_from_weight_decay(var_names=...)``) see familiar names. Built
    in the backend's compute scope (on JAX, float64 variables need it).
    """
    import keras

    from ._backends import current

    with current().compute_scope(dtype):
        variables = [
            keras.Variable(
                np.zeros(shape, dtype),
                name="kernel" if len(shape) >= 2 else "bias",
            )
            for shape in shapes
        ]
        optimizer = solver.new_optimizer()
        optimizer.build(variables)
    return optimizer, variables


def _initial_values(solver, shapes, dtype):
    """A fresh optimizer's variable values, read-only (every fit shares them)."""
    from ._backends import current

    optimizer, _ = build_optimizer(solver, shapes, dtype)
    values = []
    for variable in optimizer.variables:
        value = np.array(current().to_numpy(variable.value))
        value.flags.writeable = False
        values.append(value)
    return tuple(values)


#: Building an optimizer costs tens of milliseconds, so the initial state of
#: each (backend, optimizer key, parameter shapes, dtype) is computed once per
#: process.
_INITIAL = LRUCache(16)


class StatelessKerasOptimizer:
    """A Keras optimizer applied as a pure function, for one program.

    For backends whose Keras optimizers support ``stateless_apply`` (JAX):
    the optimizer's variables travel through the program as the solver state
    (:class:`~sk_keras_digits._state.OptimizerState`), so the program holds
    no state, needs no lock, and is shared like a built-in solver's.

    Parameters
    ----------
    solver : KerasOptimizer
    shapes : tuple of tuple of int
        The parameters' shapes.
    dtype : str
        Their dtype.
    """

    stateful = False

    def __init__(self, solver, shapes, dtype):
        self.flat = solver.elementwise
        self.optimizer, _ = build_optimizer(solver, solver.layout(shapes), dtype)
        self.schedule = OptimizerLearningRate(self.optimizer, stateless=True)

    def start(self, params, state):
        return state

    def finish(self, state):
        return state

    def update(self, params, grads, state, learning_rate, hyper):
        """One ``optimizer.stateless_apply`` step (tensors in and out).

        ``learning_rate`` and ``hyper`` are unused: the optimizer has its own.
        """
        if self.flat:
            params, grads = [params], [grads]
        new_params, variables = self.optimizer.stateless_apply(
            list(state.variables), list(grads), list(params)
        )
        new_params = new_params[0] if self.flat else list(new_params)
        return new_params, OptimizerState(tuple(variables))

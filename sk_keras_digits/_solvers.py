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
instead. On the TensorFlow backend a Keras optimizer updates variables in
place (``Optimizer.stateless_apply`` is not supported there), so this solver
is *stateful* inside the loop: the compiled program owns a private optimizer,
rebuilt from the user's class and config, and Keras variables shaped like the
parameters (see :meth:`KerasOptimizer.bind`). Its state still crosses the
program's boundary as a record (:class:`~sk_keras_digits._state.OptimizerState`),
so a fit's state lives in the estimator, never in the program.

Each solver also checks its own state's layout (:meth:`SGD.check_state`), for
``partial_fit``, which carries the state across calls, and for ``load``, which
reads it from a file (:func:`check_saved_state`). :func:`solver_for` makes the
solver of an estimator's parameters. Importing this module, making a built-in
solver and checking a state import neither TensorFlow nor Keras: the update
rules import them when the training loop traces them.
"""

import json
import math
from typing import NamedTuple

import numpy as np

from ._cache import LRUCache
from ._names import qualified_name
from ._state import (
    CONVERGED,
    LEARNING_RATE_TOO_SMALL,
    AdamState,
    OptimizerState,
    SGDState,
)

#: Where a solver state is in a fitted state, for messages.
STATE_PATH = "state.training.solver"


# ---------------------------------------------------------------- schedules
class Constant:
    """Keep the learning rate; stop when the ``n_iter_no_change`` rule fires."""

    key = "constant"
    #: The status of a fit this schedule stops.
    stop_status = CONVERGED

    def after_epoch(self, learning_rate, samples_seen, hyper):
        """The learning rate for the next epoch."""
        return learning_rate

    def on_plateau(self, learning_rate, hyper):
        """The rule fired: the new learning rate, and whether to go on."""
        import tensorflow as tf

        return learning_rate, tf.constant(False)


class InvScaling(Constant):
    """``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen."""

    key = "invscaling"

    def after_epoch(self, learning_rate, samples_seen, hyper):
        import tensorflow as tf

        return hyper.learning_rate_init / tf.pow(samples_seen + 1, hyper.power_t)


class Adaptive(Constant):
    """Divide the learning rate by 5 each time the rule fires, down to 1e-6."""

    key = "adaptive"
    stop_status = LEARNING_RATE_TOO_SMALL

    def on_plateau(self, learning_rate, hyper):
        import tensorflow as tf

        go_on = learning_rate > 1e-6
        return tf.where(go_on, learning_rate / 5, learning_rate), go_on


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
    #: Whether the program holds variables between calls (so calls into it
    #: must be serialised) and needs the parameters' exact shapes.
    stateful = False

    def bind(self, params):
        """The solver a program traces, for parameters like ``params`` (specs)."""
        return self

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
        import tensorflow as tf

        beta_1, beta_2 = hyper.beta_1, hyper.beta_2
        step = state.step + 1
        m = beta_1 * state.m + (1 - beta_1) * grads
        v = beta_2 * state.v + (1 - beta_2) * tf.square(grads)
        rate = (
            learning_rate
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        # TensorFlow flushes subnormal numbers to zero: an epsilon below the
        # dtype's smallest normal number (``epsilon=5e-324``) would divide a
        # zero gradient's zero moments by zero, where MLPClassifier moves
        # nothing. It counts as that smallest normal number instead.
        tiny = np.finfo(params.dtype.as_numpy_dtype).tiny
        epsilon = tf.maximum(hyper.epsilon, tf.constant(tiny, params.dtype))
        params = params - rate * m / (tf.sqrt(v) + epsilon)
        return params, AdamState(step, m, v)


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

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def after_epoch(self, learning_rate, samples_seen, hyper):
        import tensorflow as tf

        return tf.cast(self.optimizer.learning_rate, learning_rate.dtype)


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
        dtype = weights.params[0].dtype.str
        values = _INITIAL.get(
            (self.key, shapes, dtype), lambda: _initial_values(self, shapes, dtype)
        )
        return OptimizerState(values)

    def bind(self, params):
        """A :class:`BoundKerasOptimizer` for parameters like ``params``."""
        return BoundKerasOptimizer(self, params)

    @property
    def label(self):
        return f"<{self.optimizer_class.__name__}>"

    def _check_fields(self, state, weights):
        check_variables(state)
        expected = self.initial_state(weights).variables
        layout = [(v.shape, v.dtype.str) for v in state.variables]
        wanted = [(v.shape, v.dtype.str) for v in expected]
        if layout != wanted:
            raise ValueError(
                f"{STATE_PATH}.variables should be laid out as "
                f"{self.optimizer_class.__name__}'s variables {wanted} for these "
                f"weights, got {layout}."
            )


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


def _build(solver, shapes, dtype):
    """A fresh optimizer built on new Keras variables of ``shapes``.

    The variables are created eagerly (a ``tf.function`` may not create
    variables after its first trace) and named ``kernel`` or ``bias`` by rank,
    as the ``Dense`` layers' are, so an optimizer's name-based rules
    (``exclude_from_weight_decay(var_names=...)``) see familiar names.
    """
    import keras
    import tensorflow as tf

    with tf.init_scope():
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
    optimizer, _ = _build(solver, shapes, dtype)
    values = []
    for variable in optimizer.variables:
        value = np.array(variable.numpy())
        value.flags.writeable = False
        values.append(value)
    return tuple(values)


#: Building an optimizer costs tens of milliseconds, so the initial state of
#: each (optimizer key, parameter shapes, dtype) is computed once per process.
_INITIAL = LRUCache(16)


class BoundKerasOptimizer:
    """A private Keras optimizer and the variables it updates, for one program.

    Parameters
    ----------
    solver : KerasOptimizer
    params : list of tf.TensorSpec
        The parameters' specs (with fully known shapes).

    Attributes
    ----------
    flat : bool
        Whether the optimizer updates one flat variable (an element-wise
        optimizer, see :attr:`KerasOptimizer.ELEMENTWISE`), taking and
        returning the flat parameter vector, or one variable per parameter.
    """

    stateful = True

    def __init__(self, solver, params):
        shapes = solver.layout(tuple(tuple(p.shape.as_list()) for p in params))
        dtype = params[0].dtype.as_numpy_dtype().dtype.str
        self.flat = solver.elementwise
        self.optimizer, self.variables = _build(solver, shapes, dtype)
        self.schedule = OptimizerLearningRate(self.optimizer)

    def start(self, params, state):
        """Load ``params`` and the optimizer state into the variables."""
        import tensorflow as tf

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
        import tensorflow as tf

        if self.flat:
            self.optimizer.apply([grads], self.variables)
            return tf.convert_to_tensor(self.variables[0]), state
        self.optimizer.apply(grads, self.variables)
        return [tf.convert_to_tensor(v) for v in self.variables], state

    def finish(self, state):
        """The optimizer's variables, read after the epochs."""
        import tensorflow as tf

        return OptimizerState(
            tuple(tf.convert_to_tensor(v) for v in self.optimizer.variables)
        )

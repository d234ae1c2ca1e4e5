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

A solver's state record (:mod:`sk_keras_digits._state`) keeps each
per-parameter part (``velocity``, ``m``, ``v``) as one flat vector, in the
order of the parameters: the layout of model files and of width padding.
Inside the compiled loop the parameters and those parts travel as one tensor
per parameter (:meth:`SGD.start` splits them, :meth:`SGD.finish` joins them
again): XLA compiles an update of one flat vector, fed by a concatenation of
the gradients and slices of it feeding the matrix products, into loops that
cost 6 times the step's arithmetic at MNIST's scale.

:class:`~sk_keras_digits._keras_optimizer.KerasOptimizer` trains with a
user's ``keras.optimizers.Optimizer`` instead (:mod:`sk_keras_digits._keras_optimizer`).

The update rules and schedules are written with ``keras.ops``, once for every
backend.

Each solver also checks its own state's layout (:meth:`SGD.check_state`), for
``partial_fit``, which carries the state across calls, and for ``load``, which
reads it from a file (:func:`check_saved_state`). :func:`solver_for` makes the
solver of an estimator's parameters. Importing this module, making a built-in
solver and checking a state import no backend: the update rules import
Keras when the training loop traces them.
"""

import math
from typing import NamedTuple

import numpy as np

from ._keras_optimizer import KerasOptimizer, check_variables, describe
from ._objective import constant, dtype_of
from ._schedules import SCHEDULES, Constant, _ops
from ._solver_base import STATE_PATH, _describe, _Solver
from ._state import (
    AdamState,
    OptimizerState,
    SGDState,
)


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
    per_parameter = ("velocity",)

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
        """One step: the new parameters and state (lists of tensors)."""
        momentum = hyper.momentum
        velocity = tuple(
            momentum * v - learning_rate * g
            for v, g in zip(state.velocity, grads, strict=True)
        )
        if self.nesterov:
            updates = [
                momentum * v - learning_rate * g
                for v, g in zip(velocity, grads, strict=True)
            ]
        else:
            updates = velocity
        return [p + u for p, u in zip(params, updates, strict=True)], SGDState(velocity)


class Adam(_Solver):
    """Adam, as scikit-learn's ``AdamOptimizer``; the learning rate is constant."""

    name = "adam"
    state_type = AdamState
    per_parameter = ("m", "v")

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
        """One step: the new parameters and state (lists of tensors)."""
        ops = _ops()
        beta_1, beta_2 = hyper.beta_1, hyper.beta_2
        step = state.step + 1
        m = tuple(
            beta_1 * m + (1 - beta_1) * g for m, g in zip(state.m, grads, strict=True)
        )
        v = tuple(
            beta_2 * v + (1 - beta_2) * ops.square(g)
            for v, g in zip(state.v, grads, strict=True)
        )
        rate = (
            learning_rate
            * ops.sqrt(1 - ops.power(beta_2, step))
            / (1 - ops.power(beta_1, step))
        )
        # XLA and TensorFlow flush subnormal numbers to zero: an epsilon below
        # the dtype's smallest normal number (``epsilon=5e-324``) would divide
        # a zero gradient's zero moments by zero, where MLPClassifier moves
        # nothing. It counts as that smallest normal number instead.
        dtype = dtype_of(params[0])
        epsilon = ops.maximum(
            ops.cast(hyper.epsilon, dtype), constant(np.finfo(dtype).tiny, dtype)
        )
        params = [
            p - rate * m / (ops.sqrt(v) + epsilon)
            for p, m, v in zip(params, m, v, strict=True)
        ]
        return params, AdamState(step, m, v)


class FittedOptimizer(NamedTuple):
    """A fit's built-in solver as MLPClassifier's ``_optimizer`` shows it.

    The estimators' private ``_optimizer`` (:func:`fitted_optimizer`), for
    code written against MLPClassifier's (scikit-learn's own tests read its
    ``learning_rate``).

    Attributes
    ----------
    learning_rate_init : float
    learning_rate : float
        The rate of the next update: 'sgd''s after its schedule's last change;
        'adam''s with the bias correction of its last update
        (``learning_rate_init`` before any).
    """

    learning_rate_init: float
    learning_rate: float


def fitted_optimizer(training, params):
    """The :class:`FittedOptimizer` of a fit, or None where it has none.

    Parameters
    ----------
    training : TrainingState
        The fit's training state.
    params : dict
        The estimator's parameters (``learning_rate_init``, ``learning_rate``,
        ``power_t``, ``beta_1``, ``beta_2``).

    Returns
    -------
    optimizer : FittedOptimizer or None
        None after ``lbfgs`` or with a Keras optimizer (MLPClassifier has no
        ``_optimizer`` after ``lbfgs``, and never trains a Keras optimizer).
    """
    state, init = training.solver, float(params["learning_rate_init"])
    if isinstance(state, SGDState):
        hyper = SGD.Hyper(init, float(params["momentum"]), float(params["power_t"]))
        progress = training.progress
        rate = SCHEDULES[params["learning_rate"]]().fitted_rate(
            float(progress.learning_rate), progress.samples_seen, hyper
        )
        return FittedOptimizer(init, rate)
    if not isinstance(state, AdamState):
        return None
    t = float(state.step)
    if t == 0:
        return FittedOptimizer(init, init)
    # AdamOptimizer's expression, in its order: the same float.
    rate = init * np.sqrt(1 - params["beta_2"] ** t) / (1 - params["beta_1"] ** t)
    return FittedOptimizer(init, float(rate))


def apply_update(solver, params, grads, state, learning_rate, hyper, masks=None):
    """One step of a bound solver: the new parameters and solver state.

    ``params`` and ``grads`` are lists of tensors, ``state`` the solver's
    state as the loop carries it (:meth:`SGD.start`), ``hyper`` the solver's
    numbers. ``masks`` (one boolean tensor per parameter, for a fit padded in
    width, see :mod:`sk_keras_digits._padding`) zero the gradient of the
    padding, which so never moves.
    """
    if masks is not None:
        ops = _ops()
        grads = [
            ops.where(mask, g, ops.zeros_like(g))
            for mask, g in zip(masks, grads, strict=True)
        ]
    return solver.update(list(params), list(grads), state, learning_rate, hyper)


def _dtype(weights):
    return weights.params[0].dtype


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

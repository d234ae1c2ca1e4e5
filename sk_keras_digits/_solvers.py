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
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ._state import CONVERGED, LEARNING_RATE_TOO_SMALL, AdamState, SGDState


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
        return learning_rate, tf.constant(False)


class InvScaling(Constant):
    """``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen."""

    key = "invscaling"

    def after_epoch(self, learning_rate, samples_seen, hyper):
        return hyper.learning_rate_init / tf.pow(samples_seen + 1, hyper.power_t)


class Adaptive(Constant):
    """Divide the learning rate by 5 each time the rule fires, down to 1e-6."""

    key = "adaptive"
    stop_status = LEARNING_RATE_TOO_SMALL

    def on_plateau(self, learning_rate, hyper):
        go_on = learning_rate > 1e-6
        return tf.where(go_on, learning_rate / 5, learning_rate), go_on


SCHEDULES = {s.key: s for s in (Constant, InvScaling, Adaptive)}


# ------------------------------------------------------------------ solvers
class SGD:
    """Stochastic gradient descent with momentum, as scikit-learn's ``SGDOptimizer``.

    Parameters
    ----------
    nesterov : bool
        Whether to use Nesterov's momentum.
    schedule : Constant, InvScaling or Adaptive
        The learning-rate schedule.
    """

    name = "sgd"

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

    def update(self, params, grads, state, learning_rate, hyper):
        """One step: the new flat parameters and state (tensors)."""
        momentum = hyper.momentum
        velocity = momentum * state.velocity - learning_rate * grads
        if self.nesterov:
            update = momentum * velocity - learning_rate * grads
        else:
            update = velocity
        return params + update, SGDState(velocity)


class Adam:
    """Adam, as scikit-learn's ``AdamOptimizer``; the learning rate is constant."""

    name = "adam"

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

    def update(self, params, grads, state, learning_rate, hyper):
        beta_1, beta_2 = hyper.beta_1, hyper.beta_2
        step = state.step + 1
        m = beta_1 * state.m + (1 - beta_1) * grads
        v = beta_2 * state.v + (1 - beta_2) * tf.square(grads)
        rate = (
            learning_rate
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        params = params - rate * m / (tf.sqrt(v) + hyper.epsilon)
        return params, AdamState(step, m, v)


def _dtype(weights):
    return weights.params[0].dtype

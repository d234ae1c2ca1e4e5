"""Stochastic solvers as pure TensorFlow update rules.

The update rules are those of scikit-learn's ``SGDOptimizer`` and
``AdamOptimizer`` (``sklearn/neural_network/_stochastic_optimizers.py``), written
as functions of tensors so that they run inside the compiled training loop.
Every function takes the current values and returns new ones: nothing here
holds state, so one compiled loop serves any number of estimators and threads.

The solver state is a dict of tensors:

- ``"sgd"``: ``{"velocities": [...]}``, one velocity per parameter;
- ``"adam"``: ``{"t": scalar, "m": [...], "v": [...]}``, the step count and
  the first and second moment estimates.
"""

import numpy as np
import tensorflow as tf

STOCHASTIC_SOLVERS = ("sgd", "adam")


def initial_state(solver, params):
    """Return the state of ``solver`` before its first step, as NumPy arrays.

    Parameters
    ----------
    solver : {"sgd", "adam"}
        The solver.
    params : list of ndarray
        The parameters the solver will update.

    Returns
    -------
    state : dict
        The solver state, with NumPy arrays shaped like ``params``.
    """
    zeros = [np.zeros_like(p) for p in params]
    if solver == "sgd":
        return {"velocities": zeros}
    dtype = params[0].dtype
    return {
        "t": np.zeros((), dtype=dtype),
        "m": zeros,
        "v": [np.zeros_like(p) for p in params],
    }


def state_spec(solver, param_specs):
    """Return the ``tf.TensorSpec`` structure of the state of ``solver``."""
    if solver == "sgd":
        return {"velocities": list(param_specs)}
    return {
        "t": tf.TensorSpec([], param_specs[0].dtype),
        "m": list(param_specs),
        "v": list(param_specs),
    }


def apply_updates(solver, nesterov, params, grads, state, hyper):
    """Apply one step of ``solver`` and return the new parameters and state.

    Parameters
    ----------
    solver : {"sgd", "adam"}
        The solver.
    nesterov : bool
        Whether SGD uses Nesterov's momentum (ignored by Adam).
    params, grads : list of tf.Tensor
        Current parameters and the gradients of the loss.
    state : dict
        Solver state, see the module docstring.
    hyper : dict of scalar tf.Tensor
        ``learning_rate`` (the current one), ``momentum``, ``beta_1``,
        ``beta_2`` and ``epsilon``.

    Returns
    -------
    params : list of tf.Tensor
    state : dict
    """
    lr = hyper["learning_rate"]
    if solver == "sgd":
        momentum = hyper["momentum"]
        velocities = [
            momentum * v - lr * g
            for v, g in zip(state["velocities"], grads, strict=True)
        ]
        if nesterov:
            updates = [
                momentum * v - lr * g for v, g in zip(velocities, grads, strict=True)
            ]
        else:
            updates = velocities
        params = [p + u for p, u in zip(params, updates, strict=True)]
        return params, {"velocities": velocities}

    beta_1, beta_2 = hyper["beta_1"], hyper["beta_2"]
    t = state["t"] + 1
    m = [beta_1 * m + (1 - beta_1) * g for m, g in zip(state["m"], grads, strict=True)]
    v = [
        beta_2 * v + (1 - beta_2) * tf.square(g)
        for v, g in zip(state["v"], grads, strict=True)
    ]
    step = lr * tf.sqrt(1 - tf.pow(beta_2, t)) / (1 - tf.pow(beta_1, t))
    params = [
        p - step * m_ / (tf.sqrt(v_) + hyper["epsilon"])
        for p, m_, v_ in zip(params, m, v, strict=True)
    ]
    return params, {"t": t, "m": m, "v": v}

"""The backend seam: everything that depends on the backend Keras runs on.

Keras 3 runs on several backends; the estimator trains on the one Keras is
configured with (``KERAS_BACKEND`` or ``~/.keras/keras.json``). Everything
that differs between backends lives in one module per backend in this package,
and nothing else in the package imports a backend library. The rest is written
once, backend-neutral: the solvers' update rules and learning-rate schedules
(:mod:`sk_keras_digits._solvers`), the loss and the stopping rules
(:mod:`sk_keras_digits._objective`, :mod:`sk_keras_digits._stopping`) are
functions of tensors written with ``keras.ops``, which a backend module
compiles into its program; the records of the fitted state
(:mod:`sk_keras_digits._state`) are NumPy; the training driver
(:mod:`sk_keras_digits._training`) only calls a program.

A backend module implements:

``NAME``
    The backend's name, as ``keras.backend.backend()`` reports it.
``build_scope(dtype)`` and ``compute_scope(dtype)``
    Context managers around building Keras objects and around running Keras
    computations in ``dtype``: TensorFlow names its variables so that its
    kernel cache stays bounded; JAX computes float64 only inside a scoped
    ``jax.enable_x64`` (the user's global configuration is never changed).
``TrainingProgram(network, config=None, state=None, layout=None)``
    The compiled functions of one network structure, training setting and
    padding (``layout``, see :mod:`sk_keras_digits._padding`):
    ``predict(weights, X)``; ``objective(weights, data, alpha)`` (for
    ``lbfgs``: the full-batch loss and flat float64 gradient as a function of
    the flat float64 parameters); ``prepare(state, data, validation, hyper)``
    (a fit's :class:`FitInputs` and starting state, put on the device once);
    ``run(state, inputs, batch_size, n_epochs, length, orders)`` (up to
    ``n_epochs`` epochs, with per-epoch buffers of ``length`` and the rows'
    order of each epoch, :mod:`sk_keras_digits._shuffle`, returning a
    :class:`ChunkResult`); ``to_numpy(state, like)`` (a
    returned state back to NumPy records); ``compilations()`` (how many
    variants of the training function it has compiled) and ``loaded()``
    (how many it read from the persistent compilation cache instead,
    :mod:`sk_keras_digits._compile_cache`).
``bind_optimizer(solver, shapes, dtype)``
    The form of a user's Keras optimizer a program trains with: stateless
    (``Optimizer.stateless_apply``) where the backend supports it, else a
    private optimizer whose variables each call loads and reads back.
``to_numpy(value)``
    One tensor as a NumPy array.
``start()``
    Start the backend's runtime (find its devices) and describe it with its
    version, e.g. ``"JAX 0.10.2"``.
``activation(name)``
    Keras' activation ``name`` as a function that keeps its input's dtype
    (the default network's layers; a fix where Keras' own does not).
``dense_product(x, w)``
    ``x @ w`` for the default network's layers, differentiated the way the
    backend computes fastest (``keras.ops.matmul`` where nothing is faster).

Keras and the backend libraries are imported lazily, and only through
:func:`~sk_keras_digits._backends._imports.imported` (``import_keras()`` for
Keras): their imports draw from NumPy's and Python's global random generators,
which a fit must leave as the user had them.

A PyTorch module would implement the same names with ``torch.func.grad``
and ``torch.compile``, and Keras' stateless optimizers; it is one new module
plus its entry in :data:`MODULES`.
"""

import functools
import json
import os
import sys
from typing import NamedTuple

from ._imports import import_keras, imported

#: The backends the estimator trains on, and the module of each.
MODULES = {
    "tensorflow": "sk_keras_digits._backends.tensorflow",
    "jax": "sk_keras_digits._backends.jax",
}


class ChunkResult(NamedTuple):
    """What one call into a compiled training program returns.

    Attributes
    ----------
    state : TrainingState
        The new state, as the backend's tensors (see ``to_numpy``).
    curves : dict of list
        The per-epoch ``losses``, ``scores``, ``learning_rates`` and
        ``triggered`` of the epochs run, as Python lists.
    epochs : int
        Epochs run.
    status : int
        Why the call stopped (``RUNNING`` when it ran all its epochs).
    """

    state: object
    curves: dict
    epochs: int
    status: int


class FitInputs(NamedTuple):
    """A fit's data and numbers as the backend's arrays, put on the device once.

    What a program's ``prepare`` returns and its ``run`` takes, call after
    call of one fit.

    Attributes
    ----------
    data : TrainingData
        The training data, padded as the fit's layout says.
    validation : TrainingData or None or ()
        Early stopping's validation split, padded alike; None on JAX and
        ``()`` on TensorFlow (an empty structure) without early stopping.
    hyper : Hyper
        The fit's numbers (learning rate, L2 penalty, solver settings).
    n_rows : int
        The real rows of ``data``; the padded rows follow them.
    mask : tensor or None or ()
        The flat gradient mask of a fit padded in width; None on JAX and
        ``()`` on TensorFlow without width padding.
    """

    data: object
    validation: object
    hyper: object
    n_rows: int
    mask: object


def name():
    """The name of the backend Keras is configured with, or runs on.

    Once Keras is imported, the backend it runs on. Before, the one it will
    run on, read as Keras reads it at import (``KERAS_BACKEND`` if set and
    not empty, else ``"backend"`` of ``keras.json`` in ``KERAS_HOME`` or
    ``~/.keras``, else TensorFlow), without importing Keras: a fit whose
    compiled program comes from the persistent compilation cache
    (:mod:`sk_keras_digits._compile_cache`) never needs Keras, which is
    imported only to trace a program or to build a ``keras.Model``.
    """
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    if backend is not None:
        return backend()
    configured = os.environ.get("KERAS_BACKEND")
    if configured:
        return configured
    configured = _configured_in_file(_keras_config_path())
    if configured is None:  # a file too large to read here: Keras reads it
        keras = import_keras()

        return keras.backend.backend()
    return configured


def _keras_config_path():
    """The ``keras.json`` Keras reads at import (its ``config.py``)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    return os.path.expanduser(os.path.join(home, "keras.json"))


#: The largest ``keras.json`` read here; Keras itself reads a larger one.
MAX_CONFIG_BYTES = 1 << 16


@functools.cache
def _configured_in_file(path):
    """The backend a ``keras.json`` names, as Keras reads it once a process.

    Keras' default (TensorFlow) for a missing or unreadable file, one that is
    not JSON or names no backend; None for a file over
    :data:`MAX_CONFIG_BYTES`, which is not read.
    """
    try:
        with open(path, "rb") as f:
            content = f.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        content = b""
    if len(content) > MAX_CONFIG_BYTES:
        return None
    try:
        config = json.loads(content.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        config = {}
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def current():
    """The backend module for the backend Keras is configured with.

    Raises
    ------
    RuntimeError
        If Keras runs on a backend the estimator does not support, naming it
        and the supported ones.
    """
    backend = name()
    if backend not in MODULES:
        supported = ", ".join(repr(b) for b in MODULES)
        raise RuntimeError(
            f"Keras is configured with the {backend!r} backend (KERAS_BACKEND="
            f"{os.environ.get('KERAS_BACKEND')!r}), which sk_keras_digits does "
            f"not support; it trains on {supported}. Set KERAS_BACKEND to one "
            "of them before Keras is first imported."
        )
    return imported(MODULES[backend])

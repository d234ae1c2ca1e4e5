"""Importing Keras and its backend without touching the user's random generators.

The package imports Keras and the backend library lazily, at the first fit (or
the first ``model_``, model file or network builder) that needs them, not at
``import sk_keras_digits``. Their imports draw from the process' global random
generators: JAX's ``k8s_cluster`` module calls ``np.random.rand`` as it is
defined, TensorFlow's import draws from NumPy's generator too, and ``rich``,
which Keras imports, calls ``random.getrandbits``. A user's first fit would
then advance NumPy's and Python's global generators, which fitting must never
touch. Every import of Keras or a backend library by this package goes
through :func:`imported`, which puts both generators back as they were
(:func:`~sk_keras_digits._random_states.random_states_kept`).
"""

import importlib
import sys

from .._random_states import random_states_kept


def imported(name):
    """The module ``name``, imported if new with the global generators kept.

    Parameters
    ----------
    name : str
        An absolute module name, e.g. ``"keras"`` or
        ``"keras.src.utils.module_utils"``.

    Returns
    -------
    module : module
    """
    module = sys.modules.get(name)
    if module is None or _initializing(module):
        # A module another thread is still importing is in sys.modules half
        # made: import_module waits for it (under Python's module lock).
        with random_states_kept():
            module = importlib.import_module(name)
    return module


def _initializing(module):
    """Whether ``module`` is still being imported (by any thread)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def import_keras():
    """The ``keras`` module (and so its backend), imported as :func:`imported` does."""
    return imported("keras")

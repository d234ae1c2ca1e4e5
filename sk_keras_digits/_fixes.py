"""Version shims for Keras and TensorFlow.

Everything here touches Keras internals or version-dependent behaviour, so that
the rest of the package only uses public APIs. Importing this module imports
Keras (and TensorFlow): it is only imported from the Keras seam
(:mod:`sk_keras_digits._network` and :mod:`sk_keras_digits._training`).
"""

import contextlib
import os
import random
import threading

# Keras 3 defaults to TensorFlow; an explicit choice by the user is respected and
# checked below rather than overridden.
import keras
from keras.src.backend.common import global_state

_SEED_GENERATOR_ATTRIBUTE = "global_seed_generator"
_DTYPE_POLICY_ATTRIBUTE = "dtype_policy"

# Keras draws default seeds (initializers, Dropout) from Python's global
# `random`, which every thread shares: builds take turns.
_BUILD_LOCK = threading.RLock()


def check_backend():
    """Raise a clear error unless Keras runs on TensorFlow."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(
            "sk_keras_digits trains its networks with TensorFlow, but Keras is "
            f"configured with the {backend!r} backend (KERAS_BACKEND="
            f"{os.environ.get('KERAS_BACKEND')!r}). Set KERAS_BACKEND=tensorflow "
            "before Keras is first imported."
        )


check_backend()


@contextlib.contextmanager
def network_build_scope(seed, dtype):
    """Build a Keras network deterministically, without global side effects.

    Inside the scope, Keras initializers and layers created without an explicit
    seed draw from a seed generator seeded with ``seed``, and layers created
    without an explicit dtype use ``dtype``. On exit everything the scope
    changed is restored: Keras' (thread-local) global seed generator and dtype
    policy, and the state of Python's :mod:`random` module, which Keras uses to
    pick default seeds for layers such as ``Dropout``.

    Parameters
    ----------
    seed : int
        Seed for every random draw made while building.
    dtype : str
        Default dtype policy of the layers built in the scope, e.g. ``"float64"``.
    """
    with _BUILD_LOCK:
        previous_generator = global_state.get_global_attribute(
            _SEED_GENERATOR_ATTRIBUTE
        )
        previous_policy = global_state.get_global_attribute(_DTYPE_POLICY_ATTRIBUTE)
        python_random_state = random.getstate()
        try:
            random.seed(seed)
            global_state.set_global_attribute(
                _SEED_GENERATOR_ATTRIBUTE, keras.random.SeedGenerator(seed)
            )
            global_state.set_global_attribute(
                _DTYPE_POLICY_ATTRIBUTE, keras.dtype_policies.DTypePolicy(dtype)
            )
            yield
        finally:
            global_state.set_global_attribute(
                _SEED_GENERATOR_ATTRIBUTE, previous_generator
            )
            global_state.set_global_attribute(_DTYPE_POLICY_ATTRIBUTE, previous_policy)
            random.setstate(python_random_state)

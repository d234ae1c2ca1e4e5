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
import tensorflow as tf
from keras.src.backend.common import global_state

_SEED_GENERATOR_ATTRIBUTE = "global_seed_generator"
_DTYPE_POLICY_ATTRIBUTE = "dtype_policy"

# Keras draws default seeds (initializers, Dropout) from Python's global
# `random`, which every thread shares: builds take turns.
_BUILD_LOCK = threading.RLock()

# Name of the TensorFlow variables created in a build scope (see below).
_VARIABLE_NAME = "sk_keras_digits_variable"
# Name of the build scope's seed generator (an explicit name does not advance
# Keras' global counter of automatic names).
_SEED_GENERATOR_NAME = "sk_keras_digits_build_seed"


def _constant_name_creator(next_creator, **kwargs):
    """Create a TensorFlow variable under one constant name, at the root scope.

    In eager mode TensorFlow passes a variable's scoped name to its
    ``VarHandleOp`` as the ``debug_name`` attribute, and its eager context
    caches one kernel (about 35 kB of native memory, never freed) for each
    distinct set of attributes. Keras scopes every weight under its layer's
    automatically numbered name (``sequential_7/dense_12/kernel``), so each
    fresh network cost about 35 kB per variable, for the life of the process
    (seen with TensorFlow 2.21 and Keras 3.15). One constant name keeps that
    cache to one entry per shape and dtype.

    Only TensorFlow's own name of the variable changes: Keras' ``name`` and
    ``path`` (what Keras shows, saves and loads by) are set by Keras and kept.
    """
    kwargs["name"] = _VARIABLE_NAME
    # An empty name scope is the root scope: the layers' scopes are left out.
    with tf.name_scope(""):
        return next_creator(**kwargs)


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

    TensorFlow variables created in the scope all get one constant name (see
    :func:`_constant_name_creator`), so building many networks does not grow
    TensorFlow's cache of eager kernels. The variable creator is installed
    with ``tf.variable_creator_scope``, which is thread-local and removed on
    exit.

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
            with tf.variable_creator_scope(_constant_name_creator):
                random.seed(seed)
                global_state.set_global_attribute(
                    _SEED_GENERATOR_ATTRIBUTE,
                    keras.random.SeedGenerator(seed, name=_SEED_GENERATOR_NAME),
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


_UNINITIALIZED_VARIABLES_ATTRIBUTE = "uninitialized_variables"


@contextlib.contextmanager
def unallocated_variables():
    """Create Keras variables without allocating them, and forget them after.

    Used to read a network configuration's variable shapes before building it
    for real (a model file's claims are checked before memory is spent).
    Inside a :class:`keras.StatelessScope` Keras defers the initialisation of
    the variables created, and registers them (in its global state) to be
    initialised when a scope exits; they are unregistered here so that
    nothing ever initialises them.
    """
    previous = list(
        global_state.get_global_attribute(_UNINITIALIZED_VARIABLES_ATTRIBUTE, []) or []
    )
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute(_UNINITIALIZED_VARIABLES_ATTRIBUTE, previous)

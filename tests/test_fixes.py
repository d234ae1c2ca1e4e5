"""Keras shims: a build scope that leaves no trace on global state."""

import random
import threading

import keras
import numpy as np
from keras.src.backend.common import global_state

from sk_keras_digits._fixes import network_build_scope


def test_build_scope_restores_everything_it_changes():
    generator = global_state.get_global_attribute("global_seed_generator")
    policy = global_state.get_global_attribute("dtype_policy")
    python_state = random.getstate()
    floatx = keras.config.floatx()
    with network_build_scope(7, "float64"):
        layer = keras.layers.Dense(3)
        layer.build((None, 2))
        dropout = keras.layers.Dropout(0.5)
        inside = keras.config.dtype_policy().name
        assert keras.Input((2,)).dtype == "float64"  # floatx, X's in the scope
    assert keras.config.floatx() == floatx
    assert inside == "float64" and layer.kernel.dtype == "float64"
    assert dropout.seed_generator is not None
    assert global_state.get_global_attribute("global_seed_generator") is generator
    assert global_state.get_global_attribute("dtype_policy") is policy
    assert random.getstate() == python_state


#: The global attributes of Keras that the build scope sets.
SCOPE_ATTRIBUTES = {"global_seed_generator", "dtype_policy", "object_name_uids"}


def test_build_scope_leaves_absent_global_attributes_absent():
    """In a thread whose Keras state is empty (Keras' global state is per
    thread), what the scope set is gone after it, not left as ``None``."""
    found = []

    def build():
        before = set(vars(global_state.GLOBAL_STATE_TRACKER))
        with network_build_scope(0, "float32"):
            inside = set(vars(global_state.GLOBAL_STATE_TRACKER))
        found.append((before, inside, set(vars(global_state.GLOBAL_STATE_TRACKER))))

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()
    ((before, inside, after),) = found
    assert before == set()
    assert inside >= SCOPE_ATTRIBUTES and not after & SCOPE_ATTRIBUTES


def test_build_scope_leaves_the_users_automatic_names_alone():
    """Names count on inside the scope (no clash with the user's layers), and
    the user's counters are as they were: their next layer is named as if
    nothing had been built."""
    first = keras.layers.Dense(1).name
    counters = dict(global_state.get_global_attribute("object_name_uids"))
    with network_build_scope(0, "float32"):
        inside = [keras.layers.Dense(1).name for _ in range(3)]
    assert first not in inside and len(set(inside)) == 3
    assert dict(global_state.get_global_attribute("object_name_uids")) == counters


def test_build_scope_is_deterministic():
    kernels = []
    for _ in range(2):
        with network_build_scope(11, "float32"):
            layer = keras.layers.Dense(4)
            layer.build((None, 3))
        kernels.append(np.asarray(layer.kernel))
    np.testing.assert_array_equal(*kernels)

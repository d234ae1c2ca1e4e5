"""Version shims for Keras.

Everything here touches Keras internals or version-dependent behaviour, so that
the rest of the package only uses public APIs. Importing this module imports
Keras (not a backend's own library: what differs between backends is in
:mod:`sk_keras_digits._backends`), through
:func:`~sk_keras_digits._backends._imports.imported`.
"""

import collections
import contextlib
import random
import sys
import threading

from ._backends import current, import_keras, imported

keras = import_keras()
global_state = imported("keras.src.backend.common.global_state")

_SEED_GENERATOR_ATTRIBUTE = "global_seed_generator"
_DTYPE_POLICY_ATTRIBUTE = "dtype_policy"
# Keras' counters of automatic names ("dense", "dense_1", ...).
_NAME_COUNTERS_ATTRIBUTE = "object_name_uids"

# Keras draws default seeds (initializers, Dropout) from Python's global
# `random`, which every thread shares: builds take turns.
_BUILD_LOCK = threading.RLock()

#: Marks a global attribute Keras did not hold.
_ABSENT = object()

# Name of the build scope's seed generator (an explicit name does not advance
# Keras' global counter of automatic names).
_SEED_GENERATOR_NAME = "sk_keras_digits_build_seed"


@contextlib.contextmanager
def network_build_scope(seed, dtype):
    """Build a Keras network deterministically, without global side effects.

    Inside the scope, Keras initializers and layers created without an explicit
    seed draw from a seed generator seeded with ``seed``, and layers created
    without an explicit dtype use ``dtype``, an ``Input`` too (Keras'
    ``floatx``). On exit everything the scope changed is restored: Keras'
    (thread-local) global seed generator, dtype policy and counters of
    automatic layer names, and the process' ``floatx`` and state of Python's
    :mod:`random` module (which Keras uses to pick default seeds for layers
    such as ``Dropout``): those two are global, which is why builds take
    turns (a Keras model built in another thread at that moment would see
    them).

    The backend's own build scope applies too (``build_scope`` of
    :mod:`sk_keras_digits._backends`): on TensorFlow every variable gets one
    constant name, so building many networks does not grow TensorFlow's cache
    of eager kernels; on JAX a float64 network is built with float64 enabled,
    in a scope of this thread only.

    Parameters
    ----------
    seed : int
        Seed for every random draw made while building.
    dtype : str
        Default dtype policy of the layers built in the scope, e.g. ``"float64"``.
    """
    backend = current()
    with _BUILD_LOCK:
        previous_floatx = keras.config.floatx()
        python_random_state = random.getstate()
        try:
            with (
                backend.build_scope(dtype),
                automatic_names_kept(),
                _global_attribute(
                    _SEED_GENERATOR_ATTRIBUTE,
                    keras.random.SeedGenerator(seed, name=_SEED_GENERATOR_NAME),
                ),
                _global_attribute(
                    _DTYPE_POLICY_ATTRIBUTE, keras.dtype_policies.DTypePolicy(dtype)
                ),
            ):
                random.seed(seed)
                # A keras.Input without a dtype takes floatx: X's, not the user's.
                keras.config.set_floatx(dtype)
                yield
        finally:
            keras.config.set_floatx(previous_floatx)
            random.setstate(python_random_state)


def automatic_names_kept():
    """A scope whose Keras objects leave the user's automatic names as they were.

    Keras names an object created without a name from a (thread-local) counter
    per class (``"dense"``, ``"dense_1"``, ...). Inside the scope the counters
    count on from the user's, in a copy: the user's next layer or optimizer is
    named as if nothing had been created.
    """
    counters = global_state.get_global_attribute(_NAME_COUNTERS_ATTRIBUTE)
    return _global_attribute(
        _NAME_COUNTERS_ATTRIBUTE, collections.defaultdict(int, counters or {})
    )


@contextlib.contextmanager
def _global_attribute(name, value):
    """Keras' (thread-local) global attribute ``name`` set to ``value`` in the
    block, then put back as it was: absent again where it was absent."""
    tracker = global_state.GLOBAL_STATE_TRACKER
    previous = getattr(tracker, name, _ABSENT)
    global_state.set_global_attribute(name, value)
    try:
        yield
    finally:
        if previous is _ABSENT:
            with contextlib.suppress(AttributeError):
                delattr(tracker, name)
        else:
            global_state.set_global_attribute(name, previous)


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


@contextlib.contextmanager
def serialization_without_tensorflow():
    """Serialize Keras objects without importing TensorFlow where it is not loaded.

    Keras 3.15's ``serialize_keras_object`` asks, for every object it
    serializes, whether it is a TensorFlow ``TensorShape``, ``DType`` or
    ``TypeSpec``, through a lazy module that imports TensorFlow to answer
    (``keras.src.utils.module_utils.tensorflow``), whatever backend Keras runs
    on: saving a model on JAX would import TensorFlow (seconds, and its
    memory). While TensorFlow is not imported no object can be one of its
    types, so within this scope, and only then, the lazy module reports
    TensorFlow unavailable; its previous answer is restored on exit.
    """
    lazy = imported("keras.src.utils.module_utils").tensorflow
    if "tensorflow" in sys.modules or lazy._available is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def layer_output_shapes(model):
    """The output shapes of each layer of ``model``, nested models' included
    (input layers, which pass their input on, are left out).

    Read from the graph Keras records as a model is called symbolically (each
    layer's inbound nodes): one list of shapes per layer, one shape per
    output of each call. A layer called inside another layer's ``call`` (not
    through the model's graph) is not listed.
    """
    shapes, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer is not model and not isinstance(layer, keras.layers.InputLayer):
            shapes.append(
                [
                    tuple(tensor.shape)
                    for node in getattr(layer, "_inbound_nodes", ())
                    for tensor in node.output_tensors
                ]
            )
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return shapes

"""The user's global random generators, kept as they were around Keras' code.

Two kinds of Keras-side work draw from the process' global generators, which a
fit, a load or a prediction must leave as the user had them:

- importing Keras and the backend libraries (JAX's ``k8s_cluster`` module calls
  ``np.random.rand`` as it is defined, TensorFlow's import draws from NumPy's
  generator too, ``rich``, which Keras imports, calls ``random.getrandbits``):
  :mod:`sk_keras_digits._backends._imports`;
- deserializing a network's configuration (an initializer or ``Dropout``
  without a seed draws a default seed with ``random.randint``):
  :mod:`sk_keras_digits._persistence.network_config`.

Building a network for a fit has its own, seeded scope
(:func:`sk_keras_digits._fixes.network_build_scope`).
"""

import contextlib
import random
import threading

import numpy as np

# One block at a time: a block swaps the process' generators (below), and two
# threads swapping at once would put back each other's private streams.
_LOCK = threading.RLock()


@contextlib.contextmanager
def random_states_kept():
    """Python's and NumPy's global random generators as they were, after the block.

    For the block's duration the global generators draw from fresh private
    streams (seeded by the operating system), and the user's states are put
    back after it: the block's own draws never reach them. Another thread
    drawing meanwhile also draws from the private streams, so it never gets a
    value of the user's streams twice (as it would if the user's state were
    merely saved and restored around the block). NumPy's state is read in
    its general form, so a global generator whose bit generator the user
    replaced (``np.random.set_bit_generator``) is kept too, without the
    warning the legacy form gives for it. Blocks of different threads take
    turns.
    """
    with _LOCK:
        # The private streams are made first, so that each user state is read
        # and replaced by two adjacent calls into C: a thread that draws
        # between them would get the value again after the block.
        private_python = random.Random().getstate()
        private_numpy = type(np.random.get_bit_generator())().state
        python_state = random.getstate()
        random.setstate(private_python)
        numpy_state = np.random.get_state(legacy=False)
        np.random.set_state(private_numpy)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)

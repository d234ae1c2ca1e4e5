"""Settings and helpers shared by the tests (fixtures live in ``conftest.py``)."""

import io
import os
import threading
import warnings
import zipfile

import numpy as np
import pytest

#: Apply to a module (``pytestmark = IGNORE_CONVERGENCE``) or a test whose
#: short fits stop at ``max_iter`` on purpose.
IGNORE_CONVERGENCE = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

#: Marks a test of the estimators' own logic, which is backend-independent:
#: it runs in the TensorFlow session, and the JAX session (a CI pass sized to
#: its budget) keeps the tests that exercise the backend (twins, compiled
#: programs, custom networks, processes).
TENSORFLOW_SESSION = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") == "jax",
    reason="backend-independent: runs in the TensorFlow session",
)

#: A small SGD fit of a few epochs: for tests of files, state and validation.
SMALL = dict(
    hidden_layer_sizes=(8,),
    solver="sgd",
    learning_rate_init=0.2,
    batch_size=50,
    max_iter=4,
    random_state=0,
)

#: A default-solver fit that learns the small digits well.
QUICK = dict(hidden_layer_sizes=(20,), max_iter=20, random_state=0)

#: A few Adam epochs: for custom networks.
QUICK_ADAM = dict(solver="adam", learning_rate_init=0.01, max_iter=5, random_state=0)


def read_members(source):
    """The members of a zip archive (a path or bytes) as ``{name: bytes}``."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with zipfile.ZipFile(source) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    """A zip archive holding ``members`` (``{name: bytes}``), as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def fit_quietly(estimator, *args, **kwargs):
    """``estimator.fit(*args, **kwargs)``, its ConvergenceWarning ignored."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


def assert_same_weights(ours, theirs, rtol, atol):
    """Two fitted estimators hold the same kernels and biases, to the tolerance."""
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def run_in_threads(function, arguments):
    """``[function(a) for a in arguments]``, each in its own thread, started at once."""
    results = [None] * len(arguments)
    barrier = threading.Barrier(len(arguments))

    def work(i):
        barrier.wait()
        results[i] = function(arguments[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def backend_name():
    """The backend Keras runs on (imports Keras)."""
    import keras

    return keras.backend.backend()


def compute_scope(dtype):
    """The backend's scope for computing in ``dtype`` (float64 on JAX needs it)."""
    from sk_keras_digits._backends import current

    return current().compute_scope(dtype)


def value_and_grad(function, values):
    """``function(values)`` and its gradients, on the backend Keras runs on.

    An independent reference for the training programs' gradients: the
    backend's own automatic differentiation, applied from outside.
    """
    if backend_name() == "jax":
        import jax

        return jax.value_and_grad(function)(list(values))
    import tensorflow as tf

    values = [tf.convert_to_tensor(v) for v in values]
    with tf.GradientTape() as tape:
        tape.watch(values)
        value = function(values)
    return value, tape.gradient(value, values)


def built(program):
    """Executables a training program compiled or read from the persistent cache.

    (On JAX a test session's cache folder may already hold a program that an
    earlier test compiled: it is then read back, not compiled.)
    """
    return program.compilations() + program.loaded()


def laid_out(shape, offset, order):
    """Distinct float64 values of ``shape`` in a chosen memory layout.

    ``order`` is ``"C"``, ``"F"`` or ``"strided"`` (every other element of a
    buffer); the values start ``offset`` elements into a buffer that starts on a
    64-byte boundary, so that offset 0 gives an aligned array (one a backend may
    take over without copying) and offsets 1 to 7 unaligned ones.
    """
    n = int(np.prod(shape))
    raw = np.empty((2 * n + offset) * 8 + 64, np.uint8)
    start = -raw.ctypes.data % 64
    base = raw[start : start + (2 * n + offset) * 8].view(np.float64)
    base[:] = np.arange(2 * n + offset, dtype=np.float64) * 0.5 - 3.25
    if order == "strided":
        return base[offset : offset + 2 * n : 2].reshape(shape)
    return np.asarray(base[offset : offset + n].reshape(shape), order=order)

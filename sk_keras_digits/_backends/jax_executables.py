"""The compiled executables of the JAX backend's jitted functions.

XLA compiles a jitted function once per argument signature. An
:class:`Executables` keeps each compiled executable in memory (the
:data:`MAX_EXECUTABLES` most recently used) and, for a program a description
pins down (the default network's), in the persistent compilation cache
(:mod:`sk_keras_digits._compile_cache`), keyed by that description, the
arguments' signature and :func:`_environment`: compiled once per machine.

Imported only by :mod:`sk_keras_digits._backends.jax`.
"""

import functools
import hashlib
import importlib.metadata
import pickle
import platform
from pathlib import Path

import jax
from jax.experimental import serialize_executable

from .. import _compile_cache
from .._cache import LRUCache
from ._imports import import_keras

#: Most compiled executables a jitted function keeps in memory (its shapes).
MAX_EXECUTABLES = 8


@functools.cache
def _environment():
    """What a compiled executable depends on besides its program and shapes.

    The versions of this package, Keras, JAX and jaxlib, the device, the CPU
    (XLA compiles for the host's instruction set) and a hash of this
    package's source: a persisted executable is used only where all match.
    """
    import jaxlib

    from .._version import __version__

    device = jax.devices()[0]
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo", "rb") as f:
            info = f.read(1 << 20)
        cpu += hashlib.sha256(
            b"".join(
                line
                for line in info.splitlines()
                if line.startswith((b"model name", b"flags"))
            )
        ).hexdigest()
    except OSError:
        cpu += platform.processor()
    source = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        source.update(path.relative_to(package).as_posix().encode())
        source.update(path.read_bytes())
    return repr(
        (
            __version__,
            _keras_version(),
            jax.__version__,
            jaxlib.__version__,
            device.platform,
            device.device_kind,
            device.client.platform_version,
            cpu,
            source.hexdigest(),
        )
    ).encode()


def _keras_version():
    """Keras' installed version, read without importing Keras."""
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:  # Keras from a source tree
        keras = import_keras()

        return keras.__version__


class Executables:
    """The compiled executables of one jitted function, by argument signature.

    Each distinct signature (the arguments' structure, shapes and dtypes, the
    static arguments and the x64 mode) is compiled once per process; the
    :data:`MAX_EXECUTABLES` most recently used are kept in memory. With a
    persistent ``identity`` (a description of everything the traced program
    depends on besides the arguments), an executable is also read from and
    written to the persistent compilation cache
    (:mod:`sk_keras_digits._compile_cache`), so it is compiled once per
    machine.

    Parameters
    ----------
    jitted : jax.stages.Wrapped
        The ``jax.jit`` function.
    identity : str or None
        None for a program that is never persisted (a user's network or
        Keras optimizer, whose code no description pins down).
    """

    def __init__(self, jitted, identity=None):
        self.jitted = jitted
        self.identity = identity
        self._compiled = LRUCache(MAX_EXECUTABLES)
        #: Executables compiled, and read from the persistent cache.
        self.compiled = 0
        self.loaded = 0

    def executable(self, *args, **static):
        """The compiled executable for arguments like ``args`` (built if new).

        It takes ``args`` (the static arguments are compiled in). A caller
        that runs it many times on arguments of one signature (``lbfgs``'
        evaluations) keeps it, skipping this lookup.
        """
        leaves, tree = jax.tree.flatten((args, {}))
        signature = (
            str(tree),
            tuple((tuple(v.shape), str(v.dtype)) for v in leaves),
            tuple(sorted(static.items())),
            bool(jax.config.jax_enable_x64),
        )
        return self._compiled.get(
            signature, lambda: self._build(signature, args, static)
        )

    def _build(self, signature, args, static):
        cache = None if self.identity is None else _compile_cache.active()
        key = None
        if cache is not None:
            key = repr((self.identity, signature)).encode() + b"\0" + _environment()
            payload = cache.get(key)
            if payload is not None:
                try:
                    serialized, in_tree, out_tree = pickle.loads(payload)
                    compiled = serialize_executable.deserialize_and_load(
                        serialized, in_tree, out_tree
                    )
                except Exception:
                    pass  # signed by us, yet unreadable here: compile again
                else:
                    self.loaded += 1
                    return compiled
        if jax.config.jax_disable_jit:
            raise RuntimeError(
                "jax.config.jax_disable_jit is True, but a fit and a prediction run "
                "as compiled programs: set it back with "
                "jax.config.update('jax_disable_jit', False)."
            )
        compiled = self.jitted.lower(*args, **static).compile()
        self.compiled += 1
        if cache is not None:
            try:
                payload = pickle.dumps(serialize_executable.serialize(compiled))
            except Exception:
                pass  # an executable that does not serialise stays in memory
            else:
                cache.put(key, payload)
        return compiled

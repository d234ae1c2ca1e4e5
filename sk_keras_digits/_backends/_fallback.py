"""The warning of a program that trains outside XLA.

A custom network may hold an operation XLA cannot compile: on TensorFlow an
operation without an XLA kernel (``tf.numpy_function``), on JAX a Python
read of a tensor's value (``np.asarray(x)``, ``if x > 0``), which JAX cannot
trace. Its program then trains without XLA (TensorFlow's graph loop; on JAX
op by op), and says so once.
"""

import warnings

#: Longest reason quoted in the warning, in characters.
MAX_REASON = 160


def first_line(error):
    """The first line of ``error``'s message (shortened), or its type's name."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    line = lines[0]
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def warn_outside_xla(error, instead, stacklevel):
    """Warn that a network's program runs ``instead`` of XLA, and why."""
    warnings.warn(
        f"XLA cannot compile this network ({first_line(error)}); it runs with "
        f"{instead} instead, which is slower.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )

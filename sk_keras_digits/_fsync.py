"""Making a rename or link in a folder durable: one place for both writers.

Every file written (:mod:`sk_keras_digits._atomic_file`) and the JAX
compilation cache (:mod:`sk_keras_digits._compile_cache`) rename or link a
finished file into place, then sync its folder so the new entry survives a
power cut. Standard library only: the cache imports this on a fit's start.
"""

import os


def fsync_folder(folder):
    """Sync ``folder`` (POSIX; best effort: any OSError is ignored)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder this user may write but not read
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

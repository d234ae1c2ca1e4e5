"""A model file's manifest: its format, the library versions, and opening a file.

Every model file, of an estimator or a pipeline, is a zip archive whose
``manifest.json`` names the format (:data:`FORMAT_NAME`) and its version
(:data:`FORMAT_VERSION`), the versions of the libraries that wrote it, and
what it holds (``"estimator"``). :func:`open_model_file` opens a file and
reads that manifest, bounded, before anything else.
"""

import functools
import importlib.metadata
import sys

import numpy as np

from .archive import open_zip
from .errors import Refused

#: Name of the file format, stored in every manifest.
FORMAT_NAME = "sk_keras_digits.model"

#: Version of the file format written by :func:`~sk_keras_digits.save`. It
#: changes whenever the layout of the file or of the fitted state changes.
FORMAT_VERSION = 2

#: The ``estimator`` of a pipeline's manifest.
PIPELINE = "sklearn.pipeline.Pipeline"

#: The keys every manifest starts with (:func:`header`).
HEADER_KEYS = ("format", "format_version", "estimator", "versions")

MANIFEST = "manifest.json"
#: Most bytes of ``manifest.json``.
MANIFEST_LIMIT = 16 * 2**20

_PICKLE_PROTOCOL_PREFIX = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"


def library_versions():
    """The versions of the libraries writing a file.

    Keras' is the loaded module's, else the installed one's: a fit whose
    programs come from the compilation cache never imports Keras.
    """
    import sklearn

    from .._version import __version__

    versions = {
        "sk_keras_digits": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    keras = keras_version()
    if keras is not None:
        versions["keras"] = keras
    return versions


def keras_version():
    """The version of Keras, read without importing it (None if not installed)."""
    version = getattr(sys.modules.get("keras"), "__version__", None)
    return version if isinstance(version, str) else _installed_keras()


@functools.cache
def _installed_keras():
    for distribution in ("keras", "keras-nightly"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def header(estimator):
    """The first entries of a format-:data:`FORMAT_VERSION` manifest."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": estimator,
        "versions": library_versions(),
    }


def open_model_file(file, budget):
    """The zip archive of a model file and its format-checked manifest.

    Parameters
    ----------
    file : binary file object
    budget : Budget
        Counts the manifest's bytes.

    Returns
    -------
    archive : zipfile.ZipFile
        Open; the caller closes it.
    manifest : dict
    """
    head = file.read(4)
    if not head:
        raise Refused("the file is empty (0 bytes).")
    if head != _ZIP_MAGIC:
        hint = ""
        if head.startswith(_PICKLE_PROTOCOL_PREFIX):
            hint = (
                " It looks like a pickle (joblib.dump or pickle.dump); read it "
                "with joblib.load only if you trust its source."
            )
        raise Refused(f"not a model file: it is not a zip archive.{hint}")
    file.seek(0)
    try:
        archive = open_zip(file, "the file")
    except Refused as exc:
        raise Refused(f"the zip archive is truncated or damaged: {exc}") from exc
    try:
        names = archive.namelist()
        if MANIFEST not in names:
            hint = ""
            if "config.json" in names and "model.weights.h5" in names:
                hint = (
                    " It looks like a Keras .keras file: open it with "
                    "keras.saving.load_model."
                )
            raise Refused(
                f"not a complete model file: member(s) ['{MANIFEST}'] missing "
                f"(found {names[:10]}).{hint}"
            )
        manifest = check_format(budget.read_json(archive, MANIFEST, MANIFEST_LIMIT))
    except BaseException:
        archive.close()
        raise
    return archive, manifest


def check_format(manifest):
    """Refuse a manifest of another format, or of a newer version of this one."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise Refused(
            f"not a model file: manifest.json declares format {found!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    version = manifest.get("format_version")
    if type(version) is not int or version < 1:
        raise Refused(f"manifest.json declares an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        from .._version import __version__

        versions = manifest.get("versions")
        writer = versions.get("sk_keras_digits") if type(versions) is dict else None
        raise Refused(
            f"it was written in format version {version} (by sk_keras_digits "
            f"{writer or '?'}), but sk_keras_digits {__version__} reads format "
            f"version {FORMAT_VERSION} at most. Upgrade sk_keras_digits to load it."
        )
    return manifest

"""Safe persistence of fitted estimators and pipelines: the model file.

Only four names leave the subpackage (re-exported by :mod:`sk_keras_digits`):
:func:`save`, :func:`load`, :class:`ModelFileError` and :class:`SavedNetwork`.
Its modules are layered bottom-up; each imports only modules listed before
it (names shared between them are public within the subpackage):

- :mod:`.errors`: :class:`Refused` (inside) and :class:`ModelFileError` (out);
- :mod:`.json_values`: strict JSON, non-finite floats, short descriptions;
- :mod:`.archive`: bounded reading of zip members and ``.npy`` arrays, the
  byte :class:`~.archive.Budget`, and the one zip writer;
- :mod:`.manifest`: the format, the library versions, opening a file;
- :mod:`.state_codec`: the fitted state as JSON and arrays;
- :mod:`.params_codec`: the parameters as JSON;
- :mod:`.invariants`: what a fit could have produced;
- :mod:`.network_config`, :mod:`.network_file`: ``model.keras`` and
  :class:`SavedNetwork`;
- :mod:`.old.format_1`: reading format-1 files;
- :mod:`.estimator_file`: a classifier's or a regressor's file;
- :mod:`.skops_schema`, :mod:`.pipeline_file`: a pipeline's file;
- :mod:`.api`: :func:`save` and :func:`load`.

The file is written by the package's one atomic writer,
:mod:`sk_keras_digits._atomic_file`, which the command line shares.
"""

from .api import DEFAULT_MAX_BYTES, load, save
from .errors import ModelFileError
from .manifest import FORMAT_NAME, FORMAT_VERSION
from .network_file import SavedNetwork

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "SavedNetwork",
    "load",
    "save",
]

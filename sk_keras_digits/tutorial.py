"""The tutorial's configuration and the pieces of its job, for scripts.

The Keras digits tutorial trains a 64-15-10 network on the first
:data:`N_TRAIN` of scikit-learn's 8x8 digits and tests it on the rest. This
module gives what the ``sk-keras-digits`` command runs, so that scripts (the
benchmarks among them) measure the same job instead of re-writing it:

* :data:`TUTORIAL_PARAMS`, :data:`N_TRAIN`, :data:`MODELS`: the configuration;
* :func:`load_split`: the tutorial's data;
* :func:`tutorial_classifier`: ``KerasDigitClassifier`` or ``MLPClassifier``
  in the tutorial's configuration;
* :func:`grid_search`: the search over ``hidden_layer_sizes`` in a
  ``Pipeline(MinMaxScaler, classifier)``;
* :class:`Table`: a table of results as aligned text or HTML;
* :func:`import_backend`: Keras, its backend and the training code, imported
  ahead of the first fit.

Importing it imports neither Keras nor a backend.
"""

from ._cli._job import grid_search, import_backend, load_split, tutorial_classifier
from ._cli._report import Table
from ._tutorial import MODELS, N_TRAIN, TUTORIAL_PARAMS

__all__ = [
    "MODELS",
    "N_TRAIN",
    "TUTORIAL_PARAMS",
    "Table",
    "grid_search",
    "import_backend",
    "load_split",
    "tutorial_classifier",
]

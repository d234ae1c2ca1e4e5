"""The command line: ``sk-keras-digits`` (also ``python -m sk_keras_digits``).

It runs the tutorial's main job on the 8x8 digits that ship with scikit-learn
(no download): the tutorial's 64-15-10 network as
:class:`~sk_keras_digits.KerasDigitClassifier` next to
:class:`~sklearn.neural_network.MLPClassifier` with the same settings, on the
tutorial's split; a grid search over ``hidden_layer_sizes`` for both, with
k-fold cross-validation inside a Pipeline; figures; and an HTML report.

Keras and its backend are imported only once the arguments are parsed and the
job starts, so ``--help`` and bad options answer at once; TensorFlow's C++
start-up messages are kept off the terminal.

Modules: ``_parser`` (options and their checks), ``_job`` (the fits, the grid
searches and :func:`~._job.run`), ``_tables``, ``_figures`` and ``_report``
(tables as text and HTML, ``report.html``), ``_files`` (each output file
written whole or not at all, by the package's one atomic writer), ``_main``
(:func:`main`).
"""

from ._main import main

__all__ = ["main"]

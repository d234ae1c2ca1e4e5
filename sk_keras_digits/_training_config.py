"""What a fit trains on, and how: records shared by the estimator and the loop.

They hold plain NumPy arrays, Python numbers and solver objects, and import no
backend, so the estimator builds them before anything backend-specific loads;
the compiled loop (:mod:`sk_keras_digits._training`) turns them into tensors.
"""

from typing import NamedTuple

import numpy as np


class TrainingData(NamedTuple):
    """Samples to train (or validate) on, as arrays of the compute dtype."""

    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray


class Hyper(NamedTuple):
    """The numbers of a training configuration; they enter the loop as tensors.

    Every field (those of ``solver`` too) enters as a float of the compute
    dtype, however the user spelled it.
    """

    alpha: float
    tol: float
    n_iter_no_change: float
    solver: tuple


class TrainingConfig(NamedTuple):
    """How to train, besides the state and the data.

    Attributes
    ----------
    solver : SGD, Adam or KerasOptimizer
        The solver object (its settings shape the compiled graph).
    hyper : Hyper
        The numbers: ``alpha``, ``tol``, ``n_iter_no_change`` and the solver's.
    batch_size : int
    shuffle : bool
    early_stopping : bool
        Whether epochs end by scoring a validation split.
    """

    solver: object
    hyper: Hyper
    batch_size: int
    shuffle: bool
    early_stopping: bool

    def program_key(self, network, state=None):
        """The settings that shape the compiled graph (everything else is input).

        A stateful solver (a Keras optimizer) builds variables shaped like the
        parameters, so their shapes (read from ``state``) are part of its key.
        """
        key = (network.trace_key, self.solver.key, self.shuffle, self.early_stopping)
        if self.solver.stateful:
            key += (tuple((p.shape, p.dtype.str) for p in state.weights.params),)
        return key

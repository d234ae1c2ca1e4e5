"""Regression targets: the user's numeric targets as the network's outputs and back.

A regressor's network has one output per target column, as
:class:`~sklearn.neural_network.MLPRegressor`'s: the identity under
``loss="squared_error"``, the exponential under ``loss="poisson"``. The fitted
encoding is the small record :class:`RegressionTargets`, the regressor's
counterpart of the classifier's
:class:`~sk_keras_digits._labels.LabelEncoding`; both offer ``encode``,
``decode``, ``n_outputs`` and ``out_activation``.
"""

from typing import NamedTuple

import numpy as np

from ._casting import cast_in_range
from ._losses import REGRESSION_ACTIVATIONS


class RegressionTargets(NamedTuple):
    """The fitted target encoding of a regressor.

    Attributes
    ----------
    n_outputs : int
        Number of target columns (1 for a 1-d ``y``).
    loss : {"squared_error", "poisson"}
        The loss the network was fitted with; it names the output activation.
    """

    n_outputs: int
    loss: str

    @classmethod
    def fit(cls, y, loss):
        """The encoding of targets ``y`` (1-d or 2-d, numeric) under ``loss``."""
        targets = cls(1 if y.ndim == 1 else int(y.shape[1]), loss)
        targets.check(y)
        return targets

    @property
    def out_activation(self):
        """The output activation, in MLPRegressor's names."""
        return REGRESSION_ACTIVATIONS[self.loss]

    def check(self, y):
        """Raise a ValueError unless ``y`` fits this encoding and its loss.

        The Poisson deviance is defined for non-negative targets only.
        """
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"y must hold numbers for a regressor; got dtype {y.dtype} (first "
                f"value {y.flat[0]!r}). Convert it explicitly (y.astype(float))."
                if y.size
                else f"y must hold numbers for a regressor; got dtype {y.dtype}."
            )
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if n_outputs != self.n_outputs:
            raise ValueError(
                f"y has {n_outputs} target column(s), but the estimator was "
                f"fitted on {self.n_outputs}: warm_start and partial_fit continue "
                "a fit on targets of the same width. Call fit with "
                "warm_start=False to start afresh."
            )
        if self.loss == "poisson" and y.size and np.min(y) < 0:
            raise ValueError(
                "loss='poisson' requires non-negative targets (counts or rates); "
                f"y has values down to {np.min(y):.6g}. Use loss='squared_error' "
                "for targets that can be negative."
            )

    def encode(self, y, dtype):
        """``y`` as a 2-d array of ``dtype``, one column per network output.

        ``dtype`` is X's, which the network computes in: a finite target beyond
        its range (float64 targets over 3.4e38 with float32 X) is refused.
        """
        Y = np.asarray(y).reshape(len(y), self.n_outputs)
        return cast_in_range(
            Y,
            dtype,
            "y",
            "the network computes in X's dtype",
            "Scale y (a TransformedTargetRegressor, say) or pass X as float64.",
        )

    def decode(self, outputs):
        """Predictions from the network's outputs: 1-d for a single target."""
        return outputs.ravel() if self.n_outputs == 1 else outputs

"""Learning-rate schedules as small objects, for every solver.

A schedule gives the learning rate of the next epoch (:meth:`Constant.after_epoch`)
and what happens when the ``n_iter_no_change`` rule fires
(:meth:`Constant.on_plateau`), as scikit-learn's ``SGDOptimizer`` does for
``learning_rate='constant'``, ``'invscaling'`` and ``'adaptive'``. Written with
``keras.ops``, imported when the training loop traces them.
"""

import math

from ._backends import import_keras
from ._objective import constant, dtype_of
from ._state import CONVERGED, LEARNING_RATE_TOO_SMALL


def _ops():
    keras = import_keras()

    return keras.ops


class Constant:
    """Keep the learning rate; stop when the ``n_iter_no_change`` rule fires."""

    key = "constant"
    #: The status of a fit this schedule stops.
    stop_status = CONVERGED

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        """The learning rate for the next epoch."""
        return learning_rate

    def on_plateau(self, learning_rate, hyper):
        """The rule fired: the new learning rate, and whether to go on."""
        return learning_rate, _ops().convert_to_tensor(False)

    def fitted_rate(self, learning_rate, samples_seen, hyper):
        """The rate after a fit as scikit-learn's ``SGDOptimizer`` holds it.

        A Python float computed as it computes it, from the fit's own rate
        (``learning_rate``, in the fit's dtype), the samples seen (``t_``) and
        the solver's numbers; plain Python, no backend.
        """
        return float(hyper.learning_rate_init)


class InvScaling(Constant):
    """``learning_rate_init / (t + 1) ** power_t``, ``t`` the samples seen."""

    key = "invscaling"

    def after_epoch(self, learning_rate, samples_seen, hyper, solver_state):
        ops = _ops()
        return hyper.learning_rate_init / ops.power(samples_seen + 1, hyper.power_t)

    def fitted_rate(self, learning_rate, samples_seen, hyper):
        return float(hyper.learning_rate_init) / (samples_seen + 1) ** hyper.power_t


class Adaptive(Constant):
    """Divide the learning rate by 5 each time the rule fires, down to 1e-6."""

    key = "adaptive"
    stop_status = LEARNING_RATE_TOO_SMALL

    def on_plateau(self, learning_rate, hyper):
        ops = _ops()
        go_on = ops.greater(learning_rate, constant(1e-6, dtype_of(learning_rate)))
        return ops.where(go_on, learning_rate / 5, learning_rate), go_on

    def fitted_rate(self, learning_rate, samples_seen, hyper):
        # The divisions by 5 the fit made, each made again in float64 (the
        # fit's float32 rate has lost the bits to compare).
        rate = float(hyper.learning_rate_init)
        for _ in range(round(math.log(rate / learning_rate, 5))):
            rate /= 5.0
        return rate


SCHEDULES = {s.key: s for s in (Constant, InvScaling, Adaptive)}

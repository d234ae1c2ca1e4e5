"""The order of the rows in each epoch, drawn on the host for the compiled loop.

MLPClassifier shuffles the training rows before each epoch. The compiled
training loops (:mod:`sk_keras_digits._backends`) take the orders of a call's
epochs as one input array instead of drawing them: a permutation drawn by
NumPy costs microseconds, where a sort of random keys inside an XLA program
costs a quarter of a millisecond per epoch on a small CPU, a tenth of the
tutorial's fit. Drawing them here also makes a shuffled fit the same on every
backend.

A fit's orders come from one :class:`EpochOrders`: epoch ``e`` (counted from
the fit's first epoch, whatever the chunks of epochs the driver calls the
program with) is the ``e``-th permutation that
``numpy.random.default_rng(seed)`` draws: a fit is reproducible from its
seed, in any process and on any backend. (One generator per fit: seeding one
per epoch cost 9 us an epoch, as much as the permutation of 800 rows.)

This module is backend-neutral: NumPy only.
"""

import numpy as np

#: Shortest per-call epoch buffer (curves and orders); lengths are powers of
#: two, so that calls of different lengths share a compiled program. 256
#: covers MLP's default ``max_iter`` (200): fits of up to 256 epochs, whatever
#: their ``max_iter`` (a grid search over it, ``partial_fit``'s single epochs,
#: scikit-learn's checks with ``max_iter=5``), share one program.
MIN_CAPACITY = 256
#: Most entries (epochs x rows) of a call's orders buffer before its length
#: drops the :data:`MIN_CAPACITY` floor (4 MiB of int32: up to 4,096 rows).
MAX_ORDER_ENTRIES = 1 << 20


def capacity(n_epochs, rows=0):
    """The length of a call's per-epoch buffers, for ``n_epochs`` epochs.

    A power of two >= ``n_epochs``; at least :data:`MIN_CAPACITY` unless
    the orders of ``rows`` rows would then exceed :data:`MAX_ORDER_ENTRIES`.
    """
    length = 1 << max(int(n_epochs) - 1, 0).bit_length()
    if MIN_CAPACITY * rows <= MAX_ORDER_ENTRIES:
        length = max(length, MIN_CAPACITY)
    return length


class EpochOrders:
    """The row orders of one fit's epochs, drawn in sequence.

    Parameters
    ----------
    seed : int
        The fit's shuffling seed (drawn from ``random_state``).
    n_rows : int
        Real rows: the first ``n_rows`` of each order are a permutation of
        them.
    rows : int
        Rows of the (padded) data: the padded rows keep their place after the
        real ones.
    """

    def __init__(self, seed, n_rows, rows):
        self._rng = np.random.default_rng(int(seed))
        self.n_rows = int(n_rows)
        self.rows = int(rows)
        #: Epochs drawn so far.
        self.drawn = 0

    def draw(self, n_epochs, length):
        """The orders of the next ``n_epochs`` epochs, as an int32 array.

        Parameters
        ----------
        n_epochs : int
            Epochs of the call.
        length : int
            Rows of the array (:func:`capacity`); those after ``n_epochs``
            are zeros, never read.

        Returns
        -------
        orders : ndarray of int32, shape (length, rows)
        """
        orders = np.zeros((length, self.rows), np.int32)
        orders[:n_epochs, self.n_rows :] = np.arange(self.n_rows, self.rows)
        for order in orders[:n_epochs]:
            order[: self.n_rows] = self._rng.permutation(self.n_rows)
        self.drawn += n_epochs
        return orders

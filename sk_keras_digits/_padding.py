"""Shape buckets: the padding that lets one compiled program serve many fits.

XLA compiles one program per input shape. A grid search fits the same network
on folds of slightly different sizes and with several hidden sizes; compiled
as they come, every fold size and every width would be a compile of its own
(about a second each). A fit of the default network is instead padded up to a
*bucket*: its rows (:func:`row_bucket`), its input features and its hidden
widths (:func:`padded_width`) are rounded up, so that the fits of a grid
search share a few programs. Large data (:data:`LARGE_DATA`) keep their rows
and features: only the hidden widths are padded.

The padding is exact, not approximate:

- padded **rows** weigh zero: they change no loss, gradient or score (the
  training loop never draws them into a batch of real rows either, see
  :mod:`sk_keras_digits._backends`);
- padded **input features** are zero columns: the first kernel's rows that
  read them receive a zero gradient;
- padded **hidden units** start with zero weights in and out, and their
  gradients are masked to zero (:attr:`WidthPadding.mask`): a padded unit's
  activation (0.5 for the logistic function) meets only zero outgoing
  weights, so it adds exact zeros to every sum, the L2 penalty of a zero is
  zero, and no solver moves a weight whose gradient and moments stay zero.

So a padded fit reaches the weights of the unpadded one (up to the order of
floating-point sums inside a matrix product, 1e-12 here), and
:meth:`WidthPadding.unpad_state` slices them back to the network's real
shapes. Only the default network is padded: a user's layers may mix rows
(batch normalisation) or draw per row (dropout), and a Keras optimizer's
variables are built on the parameters' real shapes.

This module is backend-neutral: NumPy only (slicing back also works on the
backends' tensors).
"""

import numpy as np

from ._state import Weights
from ._training_config import TrainingData

#: Fewest rows a padded fit's data get.
MIN_ROWS = 16
#: The buckets of narrow layers (input features and hidden units): every
#: width up to 16 shares one program, and every width from 17 to 64 another.
#: (A grid search over hidden sizes such as 5, 10, 15, 30 and 60 compiles two
#: programs; the tutorial's 15 units cost the same as 16.)
NARROW_WIDTHS = (16, 64)
#: Data of more values than this (rows x input features) are padded neither
#: in rows nor in input features, only in hidden widths: a padded copy of them
#: and the steps' work on padded features cost more than compiling for their
#: exact shape (about a second). MNIST's 55,000 x 784 training images (43
#: million values) took 0.6 s to copy into their row bucket here, and their
#: 784 -> 896 features added an eighth to every step; the digits (1,797 x 64)
#: are far below.
LARGE_DATA = 1 << 22
#: Above this, buckets grow by an eighth of the enclosing power of two (so the
#: padding is under a quarter of the size, and under 12.5% from 3/4 of a power
#: of two up), instead of doubling.
_FINE_ABOVE = 64


def bucket(n, minimum=1):
    """The padded size of ``n``: a power of two up to 64, then finer steps.

    Parameters
    ----------
    n : int
        A size (rows, features or units), >= 1.
    minimum : int, default=1
        The smallest bucket.

    Returns
    -------
    size : int
        ``>= max(n, minimum)``: the next power of two up to 64, above that the
        next multiple of an eighth of the enclosing power of two (so 1000 ->
        1024, 784 -> 896, 55000 -> 57344).

    Examples
    --------
    >>> [bucket(n) for n in (1, 5, 64, 65, 300, 1000)]
    [1, 8, 64, 80, 320, 1024]
    >>> bucket(15, minimum=32)
    32
    """
    n = max(int(n), int(minimum), 1)
    power = 1 << (n - 1).bit_length()
    if power <= _FINE_ABOVE:
        return power
    step = power // 8
    return -(-n // step) * step


def padded_width(n):
    """The padded width of a layer of ``n`` inputs or units.

    One of :data:`NARROW_WIDTHS` up to 64, else :func:`bucket`.

    Examples
    --------
    >>> [padded_width(n) for n in (5, 16, 17, 60, 100, 784)]
    [16, 16, 64, 64, 112, 896]
    """
    for width in NARROW_WIDTHS:
        if n <= width:
            return width
    return bucket(n)


def row_bucket(n):
    """The padded row count of ``n`` training rows: a power of two >= 16.

    Coarser than :func:`bucket`: a training program's work follows the real
    rows (its batches never read the padding), so padded rows cost only
    memory, and a power of two puts a grid search's folds (800 of 1000 rows)
    and its refit on the 1000 in one bucket.

    Examples
    --------
    >>> [row_bucket(n) for n in (1, 16, 17, 800, 1000, 55000)]
    [16, 16, 32, 1024, 1024, 65536]
    """
    return 1 << (max(int(n), MIN_ROWS) - 1).bit_length()


def pads_data(n_rows, n_features):
    """Whether a fit's data of ``n_rows`` x ``n_features`` are padded.

    Up to :data:`LARGE_DATA` values, in rows and input features.

    Examples
    --------
    >>> pads_data(1797, 64), pads_data(55_000, 784)
    (True, False)
    """
    return int(n_rows) * int(n_features) <= LARGE_DATA


def padded_rows(part, rows=None):
    """``part`` with rows of zeros (and zero weight) up to ``rows``.

    Parameters
    ----------
    part : TrainingData
        NumPy arrays.
    rows : int, optional
        The padded row count; default :func:`row_bucket` of the rows.
    """
    n = len(part.X)
    rows = row_bucket(n) if rows is None else rows
    if rows == n:
        return part
    return TrainingData(*(_pad(v, (rows, *v.shape[1:])) for v in part))


def pads_widths(network, solver):
    """Whether a fit of ``network`` with ``solver`` is padded in width.

    The default network with a built-in solver: a Keras optimizer is built on
    the parameters' real shapes.
    """
    return bool(network.rows_independent) and not solver.stateful


def _pad(array, shape):
    """``array`` in the top-left corner of zeros of ``shape`` (same dtype)."""
    array = np.asarray(array)
    if array.shape == tuple(shape):
        return array
    out = np.zeros(shape, array.dtype)
    out[tuple(slice(0, s) for s in array.shape)] = array
    return out


def _corner(array, shape):
    """The top-left corner of ``shape`` of an array or tensor."""
    if tuple(array.shape) == tuple(shape):
        return array
    return array[tuple(slice(0, s) for s in shape)]


class WidthPadding:
    """The padding of one fit's network widths: real and padded shapes.

    Parameters
    ----------
    layer_units : list of int
        The network's units per layer, input and output included. Every layer
        but the output is padded to its :func:`padded_width`; the outputs are
        the classes and stay as they are.
    inputs : bool, default=True
        Whether the input features are padded too (not for large data,
        :func:`pads_data`).

    Attributes
    ----------
    units, padded_units : list of int
    shapes, padded_shapes : list of tuple of int
        The parameters' shapes (kernel, bias, kernel, bias, ...).
    padded_size : int
        The number of scalars of the padded parameters.
    mask : ndarray of bool, shape (padded_size,)
        True for the real parameters in the flat padded vector: the gradient
        of every other entry is zeroed.
    """

    def __init__(self, layer_units, inputs=True):
        self.units = [int(u) for u in layer_units]
        self.padded_units = [padded_width(u) for u in self.units[:-1]]
        self.padded_units.append(self.units[-1])
        if not inputs:
            self.padded_units[0] = self.units[0]
        self.shapes = _param_shapes(self.units)
        self.padded_shapes = _param_shapes(self.padded_units)
        self.padded_size = sum(int(np.prod(s)) for s in self.padded_shapes)
        self.mask = np.concatenate(
            [
                _pad(np.ones(shape, bool), padded).ravel()
                for shape, padded in zip(self.shapes, self.padded_shapes, strict=True)
            ]
        )

    @property
    def pads(self):
        """Whether any width is padded."""
        return self.padded_units != self.units

    # -- weights -----------------------------------------------------------
    def pad_weights(self, weights):
        """``weights`` (NumPy) in the padded shapes, zeros around them."""
        params = tuple(
            _pad(p, s) for p, s in zip(weights.params, self.padded_shapes, strict=True)
        )
        return Weights(params, tuple(weights.buffers))

    def unpad_weights(self, weights):
        """The real corner of padded ``weights`` (NumPy arrays or tensors)."""
        params = tuple(
            _corner(p, s) for p, s in zip(weights.params, self.shapes, strict=True)
        )
        return Weights(params, tuple(weights.buffers))

    # -- flat vectors (a solver's moments) --------------------------------
    def pad_vector(self, vector):
        """A flat per-parameter vector in the padded layout."""
        out = np.zeros(self.padded_size, vector.dtype)
        out[self.mask] = vector
        return out

    def unpad_vector(self, vector):
        """A flat padded vector back in the real layout."""
        return np.asarray(vector)[self.mask]

    # -- a whole training state -------------------------------------------
    def pad_state(self, state):
        """A :class:`~sk_keras_digits._state.TrainingState` in padded shapes."""
        return _map_state(state, self.pad_weights, self.pad_vector)

    def unpad_state(self, state):
        """A padded training state (NumPy) back in the network's real shapes."""
        return _map_state(state, self.unpad_weights, self.unpad_vector)

    def pad_data(self, part):
        """``part``'s X with zero columns up to the padded input width."""
        if part is None:
            return None
        X = part.X
        return part._replace(X=_pad(X, (X.shape[0], self.padded_units[0])))


def _map_state(state, weights, vector):
    """``state`` with ``weights`` applied to its weights (and best weights) and
    ``vector`` to each flat per-parameter vector of its solver state."""
    progress = state.progress
    if progress.best_weights is not None:
        progress = progress._replace(best_weights=weights(progress.best_weights))
    solver = state.solver
    if solver is not None:
        solver = type(solver)(
            *(
                vector(v) if isinstance(v, np.ndarray) and v.ndim == 1 else v
                for v in solver
            )
        )
    return state._replace(
        weights=weights(state.weights), solver=solver, progress=progress
    )


def _param_shapes(units):
    shapes = []
    for fan_in, fan_out in zip(units[:-1], units[1:], strict=True):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes

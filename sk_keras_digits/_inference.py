"""Prediction: the network's outputs for X.

A fitted default (dense) network is a handful of matrices, so its prediction is
a few NumPy products, as in scikit-learn's MLPs: no backend call, no per-call
graph overhead, and sparse input is multiplied as it is. The activations are
the functions the Keras layers of ``model_`` apply; ``tests/test_inference.py``
checks that the results equal the Keras model's. A custom network predicts
through its compiled program (:mod:`sk_keras_digits._training`), imported only
then, in chunks of at most :data:`PREDICT_ROWS` rows (fewer where its
layers' outputs per row are large: :func:`chunk_rows`) padded to a power of two.
"""

import numpy as np
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot


def _softmax(z):
    """Softmax of each row of ``z``, in place.

    The rows' maxima and sums are taken over a transposed copy: NumPy reduces
    a short last axis (ten classes) several times slower than it adds whole
    rows (797 x 10: 36 us against 70 us for ``z.max(axis=1)`` and
    ``z.sum(axis=1)``).
    """
    columns = np.ascontiguousarray(z.T)
    z -= columns.max(axis=0)[:, np.newaxis]
    np.exp(z, out=z)
    np.copyto(columns, z.T)
    z /= columns.sum(axis=0)[:, np.newaxis]
    return z


#: Each activation of a fresh array, computed in place (as MLP's).
ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": lambda z: expit(z, out=z),
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0, out=z),
    "softmax": _softmax,
    "exp": lambda z: np.exp(z, out=z),
}


def dense_forward(coefs, intercepts, X, activation, out_activation):
    """Outputs of the dense network with these weights.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        Kernels and biases, layer by layer.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    activation : {"identity", "logistic", "tanh", "relu"}
    out_activation : {"softmax", "logistic", "identity", "exp"}

    Returns
    -------
    outputs : ndarray of shape (n_samples, n_outputs)
    """
    h = X
    last = len(coefs) - 1
    for i, (coef, intercept) in enumerate(zip(coefs, intercepts, strict=True)):
        h = np.asarray(h @ coef if i else safe_sparse_dot(h, coef))
        h += intercept  # a fresh product: the activations work in place
        h = ACTIVATIONS[out_activation if i == last else activation](h)
    return h


def network_outputs(X, weights, *, activation, out_activation, network=None):
    """Outputs of a fitted network.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    weights : Weights
        The fitted weights.
    activation : {"identity", "logistic", "tanh", "relu"}
        Hidden activation of the default network.
    out_activation : {"softmax", "logistic", "identity", "exp"}
    network : CustomNetwork, default=None
        A custom network; None for the default dense network.

    Returns
    -------
    outputs : ndarray of shape (n_samples, n_outputs)
    """
    if network is None:
        return dense_forward(
            weights.coefs, weights.intercepts, X, activation, out_activation
        )
    from ._network import aligned_weights
    from ._training import get_program

    weights = aligned_weights(network, weights)
    program = get_program(network)
    dtype = network.compute_dtype
    n_samples = X.shape[0]
    if n_samples == 0:
        return np.asarray(program.predict(weights, np.zeros((0, X.shape[1]), dtype)))
    outputs = None
    # A call holds its rows dense (a sparse X's too) and the layers' outputs.
    step = chunk_rows((X.shape[1] + network.values_per_row) * np.dtype(dtype).itemsize)
    for start in range(0, n_samples, step):
        part = X[start : start + step]
        if hasattr(part, "toarray"):
            part = part.toarray()
        part = np.asarray(part, dtype=dtype)
        rows = part.shape[0]
        size = min(_predict_rows(rows), step)
        if size > rows:  # the last real row repeated: values the network takes
            part = np.concatenate([part, np.repeat(part[-1:], size - rows, axis=0)])
        chunk = np.asarray(program.predict(weights, part))[:rows]
        if outputs is None:
            outputs = np.empty((n_samples, *chunk.shape[1:]), chunk.dtype)
        outputs[start : start + rows] = chunk
    return outputs


#: Most rows a custom network predicts in one compiled call: more are
#: predicted in chunks of this many, so that memory stays bounded whatever
#: the number of rows.
PREDICT_ROWS = 1024
#: Most bytes the layers' outputs of one call may hold together: a network
#: whose rows make large outputs predicts fewer rows per call.
PREDICT_BYTES = 256 * 2**20


def chunk_rows(row_bytes):
    """Rows per call for a network whose layers output ``row_bytes`` per row:
    the largest power of two up to :data:`PREDICT_ROWS` whose rows' outputs
    fit in :data:`PREDICT_BYTES`, or one row (a single row is predicted
    whatever its size: ``load`` bounds a file's by ``max_bytes``).

    Examples
    --------
    >>> from sk_keras_digits._inference import chunk_rows
    >>> chunk_rows(15 * 8), chunk_rows(2**20), chunk_rows(2**30)
    (1024, 256, 1)
    """
    fits = max(1, PREDICT_BYTES // max(int(row_bytes), 1))
    return min(PREDICT_ROWS, 1 << (fits.bit_length() - 1))


def _predict_rows(rows):
    """The rows of the call that predicts ``rows`` rows: the next power of two
    (at least 8), so that a backend compiling one program per shape compiles
    at most eight (8, 16, ..., 1024) for any number of rows."""
    return max(8, 1 << (rows - 1).bit_length())

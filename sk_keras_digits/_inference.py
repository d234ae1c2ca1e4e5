"""The fast predict path of the default dense network, in NumPy.

A fitted dense network is a handful of matrices, so prediction is a few NumPy
products, as in MLPClassifier: no TensorFlow call, no per-call graph overhead,
and sparse input is multiplied as it is. The activations are the functions the
Keras layers of ``model_`` apply; ``tests/test_inference.py`` checks that the
results equal the Keras model's.
"""

import numpy as np
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0, out=z),
    "softmax": _softmax,
}


def dense_forward(coefs, intercepts, X, activation, out_activation):
    """Output probabilities of the dense network with these weights.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        Kernels and biases, layer by layer.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    activation : {"identity", "logistic", "tanh", "relu"}
    out_activation : {"softmax", "logistic"}

    Returns
    -------
    proba : ndarray of shape (n_samples, n_outputs)
    """
    h = X
    last = len(coefs) - 1
    for i, (coef, intercept) in enumerate(zip(coefs, intercepts, strict=True)):
        h = safe_sparse_dot(h, coef) + intercept
        h = ACTIVATIONS[out_activation if i == last else activation](h)
    return np.asarray(h)

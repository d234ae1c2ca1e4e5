"""The training objective and the validation score, written once for every backend.

Functions of tensors written with ``keras.ops``: a backend module
(:mod:`sk_keras_digits._backends`) calls them while it traces its compiled
program, so they run on TensorFlow and on JAX alike. Importing this module
imports Keras only when a function runs.
"""

import numpy as np


def _ops():
    import keras

    return keras.ops


def dtype_of(tensor):
    """The NumPy dtype of a tensor of any backend."""
    import keras

    return np.dtype(keras.backend.standardize_dtype(tensor.dtype))


def constant(value, dtype):
    """``value`` as a tensor of ``dtype``, exactly.

    ``keras.ops`` functions given a Python float make it a tensor of Keras'
    default float type (float32) before promoting it: ``1e-6`` would become
    ``9.99999997e-07`` next to a float64 tensor, and ``1 - eps`` would round
    to 1. Every constant of these functions goes through here instead.
    """
    import keras

    return keras.ops.convert_to_tensor(value, np.dtype(dtype).name)


def batch_loss(network, params, proba, y, sample_weight, extra_losses, alpha):
    """MLPClassifier's loss: weighted log-loss plus the scaled L2 penalty.

    The probabilities are clipped to ``[eps, 1 - eps]`` as scikit-learn clips
    them; the clipping is straight-through for the gradient, so a saturated
    output still gets scikit-learn's ``proba - y`` error signal.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
        Its ``out_activation`` and ``penalized`` (the indices of the
        parameters under the L2 penalty) shape the loss.
    params : list of tensors
        The trainable parameters.
    proba : tensor of shape (n_samples, n_outputs)
        The network's outputs.
    y, sample_weight : tensors
        Indicator targets and per-sample weights (zero for none).
    extra_losses : list of tensors
        Losses the network's layers add (activity regularizers).
    alpha : scalar tensor
        The L2 penalty's strength.
    """
    ops = _ops()
    dtype = dtype_of(proba)
    eps = np.finfo(dtype).eps
    low, high = constant(eps, dtype), constant(1 - eps, dtype)
    p = proba + ops.stop_gradient(ops.clip(proba, low, high) - proba)
    if network.out_activation == "softmax":
        per_sample = -ops.sum(y * ops.log(p), axis=1)
    else:
        per_sample = -ops.sum(y * ops.log(p) + (1 - y) * ops.log(1 - p), axis=1)
    weight_sum = ops.sum(sample_weight)
    loss = ops.sum(sample_weight * per_sample) / weight_sum
    penalized = [ops.sum(ops.square(params[i])) for i in network.penalized]
    if penalized:
        loss = loss + 0.5 * alpha * sum(penalized[1:], penalized[0]) / weight_sum
    if extra_losses:
        extra = [ops.cast(term, dtype) for term in extra_losses]
        loss = loss + sum(extra[1:], extra[0])
    return loss


def validation_score(network, proba, y, sample_weight):
    """The weighted accuracy of ``proba`` on indicator targets ``y``.

    A sample counts as right when its predicted labels, decoded as
    ``LabelBinarizer`` decodes them (the most probable class for softmax
    outputs, every output above 0.5 otherwise), are exactly its labels.
    """
    ops = _ops()
    dtype = dtype_of(proba)
    if network.out_activation == "softmax":
        hits = ops.equal(ops.argmax(proba, axis=1), ops.argmax(y, axis=1))
    else:
        predicted = ops.cast(ops.greater(proba, constant(0.5, dtype)), dtype)
        hits = ops.all(ops.equal(predicted, y), axis=1)
    return ops.sum(sample_weight * ops.cast(hits, dtype)) / ops.sum(sample_weight)

"""The training objective and the validation score, written once for every backend.

Functions of tensors written with ``keras.ops``: a backend module
(:mod:`sk_keras_digits._backends`) calls them while it traces its compiled
program, so they run on TensorFlow and on JAX alike. Importing this module
imports Keras only when a function runs.
"""

import numpy as np

from ._backends import import_keras


def _ops():
    keras = import_keras()

    return keras.ops


def dtype_of(tensor):
    """The NumPy dtype of a tensor of any backend."""
    keras = import_keras()

    return np.dtype(keras.backend.standardize_dtype(tensor.dtype))


def constant(value, dtype):
    """``value`` as a tensor of ``dtype``, exactly.

    ``keras.ops`` functions given a Python float make it a tensor of Keras'
    default float type (float32) before promoting it: ``1e-6`` would become
    ``9.99999997e-07`` next to a float64 tensor, and ``1 - eps`` would round
    to 1. Every constant of these functions goes through here instead.
    """
    keras = import_keras()

    return keras.ops.convert_to_tensor(value, np.dtype(dtype).name)


def batch_loss(network, params, buffers, batch, alpha):
    """MLP's loss of a batch: the weighted loss of its samples plus the L2 penalty.

    Parameters
    ----------
    network : DenseNetwork or CustomNetwork
        Its ``sample_losses`` (each sample's loss, the network's new buffers
        and the losses its layers add) and ``penalized`` (the indices of the
        parameters under the L2 penalty) shape the loss.
    params : list of tensors
        The trainable parameters.
    buffers : list of tensors
        The network's non-trainable state.
    batch : TrainingData
        The batch's inputs, encoded targets and per-sample weights (zero for
        none), as tensors.
    alpha : scalar tensor
        The L2 penalty's strength.

    Returns
    -------
    loss : scalar tensor
    new_buffers : list of tensors
    """
    ops = _ops()
    per_sample, new_buffers, extra_losses = network.sample_losses(
        params, buffers, batch.X, batch.Y
    )
    dtype = dtype_of(per_sample)
    sample_weight = batch.sample_weight
    weight_sum = ops.sum(sample_weight)
    # A batch whose samples all weigh zero (a bootstrap's sample_weight, say)
    # has no loss and no gradient, its penalties included: its step changes
    # nothing but the solver's momentum. Any other batch: the same bits.
    weighed = weight_sum > 0
    weight_sum = ops.where(weighed, weight_sum, constant(1, dtype))
    loss = ops.sum(sample_weight * per_sample) / weight_sum
    penalized = [ops.sum(ops.square(params[i])) for i in network.penalized]
    if penalized:
        loss = loss + 0.5 * alpha * sum(penalized[1:], penalized[0]) / weight_sum
    if extra_losses:
        extra = [ops.cast(term, dtype) for term in extra_losses]
        loss = loss + sum(extra[1:], extra[0])
    return ops.where(weighed, loss, constant(0, dtype)), new_buffers


def validation_score(network, outputs, y, sample_weight):
    """The weighted validation score of ``outputs`` on encoded targets ``y``.

    The score of the network's loss: accuracy for a classifier's, R^2 for a
    regressor's (see :mod:`sk_keras_digits._losses`).
    """
    return network.loss.score(outputs, y, sample_weight)

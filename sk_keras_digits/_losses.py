"""The losses: each output activation with its canonical loss, as MLP's.

scikit-learn's multi-layer perceptrons pair each output activation with the
loss whose gradient at the output layer's pre-activation is ``outputs - y``
(the canonical link): softmax with the log-loss, the logistic function with
the binary log-loss, the identity with the squared error and the exponential
with the Poisson deviance. The output activation therefore names the loss,
and a loss object holds everything that follows from it:

- :meth:`Loss.per_sample`, the loss of each sample, a function of tensors
  written with ``keras.ops`` that every backend traces into its compiled loop,
  and :meth:`Loss.per_sample_of_logits`, the same of the output layer's
  pre-activation with MLP's error ``outputs - y`` as its gradient;
- :meth:`Loss.score`, the validation score of early stopping (accuracy for a
  classifier, R^2 for a regressor, as the estimators' ``score``);
- :meth:`Loss.output_problem`, what is wrong, if anything, with the outputs
  of a freshly built custom network (a forgotten output activation).

Importing this module imports no backend: Keras loads when a tensor function
runs.
"""

import numpy as np

from ._objective import _ops, constant, dtype_of


class Loss:
    """A loss and its output activation.

    Attributes
    ----------
    name : str
        scikit-learn's name of the loss.
    out_activation : str
        The output activation, in scikit-learn's names.
    score_name : str
        The validation score, as Keras logs name it (``val_<score_name>``).
    outputs : str
        What the network's outputs must be, for messages.
    """

    name = out_activation = score_name = outputs = ""

    def per_sample(self, outputs, y):
        """The loss of each sample, a tensor of shape (n_samples,).

        Its value is scikit-learn's loss of the sample. Differentiated
        through the output activation, its gradient at the output layer's
        pre-activation is the error scikit-learn's backpropagation starts
        from, ``outputs - y``, wherever the outputs are not saturated (a
        custom network's, whose model applies the activation itself); the
        default network's is exactly that everywhere
        (:meth:`per_sample_of_logits`).
        """
        raise NotImplementedError

    def per_sample_of_logits(self, logits, y, activation):
        """``per_sample(activation(logits), y)``, with MLP's gradient.

        Its gradient with respect to ``logits`` is exactly the error MLP
        backpropagates from its output layer, ``activation(logits) - y`` for
        each sample (times the incoming gradient of that sample's loss).
        Differentiated through the activation and the clipped logarithm
        instead, it vanishes where the outputs saturate: a sample whose right
        class gets a probability below the dtype's eps (clipped, or rounded
        to 0) would pass back ``probability / eps`` of its error, however
        wrong the prediction.

        Parameters
        ----------
        logits : tensor of shape (n_samples, n_outputs)
            The output layer's pre-activation.
        y : tensor of shape (n_samples, n_outputs)
            Encoded targets; no gradient flows to them.
        activation : callable
            The output activation, a function of tensors.
        """
        ops = _ops()

        @ops.custom_gradient
        def per_sample(logits):
            outputs = activation(logits)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return ops.expand_dims(upstream, 1) * (outputs - y)

            return self.per_sample(outputs, y), grad

        return per_sample(logits)

    def score(self, outputs, y, sample_weight):
        """The weighted validation score of ``outputs`` on encoded targets ``y``."""
        raise NotImplementedError

    def output_problem(self, values, tol):
        """What is wrong with a new network's finite ``values`` (None: nothing)."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}()"


def _clipped(proba):
    """``proba`` clipped to ``[eps, 1 - eps]``, straight-through for the gradient.

    scikit-learn clips probabilities before taking logarithms; passing the
    gradient through the clip keeps a finite error signal for a saturated
    output (scaled down by ``proba / eps`` below ``eps``: through the
    activation, only :meth:`Loss.per_sample_of_logits` passes back all of it).
    """
    ops = _ops()
    dtype = dtype_of(proba)
    eps = np.finfo(dtype).eps
    low, high = constant(eps, dtype), constant(1 - eps, dtype)
    return proba + ops.stop_gradient(ops.clip(proba, low, high) - proba)


def _finite_or_nan(outputs, score):
    """``score``, or NaN where ``outputs`` are not all finite.

    Outputs that are not finite (weights gone to NaN) predict nothing: the
    score is NaN, so early stopping never keeps those weights as the best.
    """
    ops = _ops()
    nan = constant(np.nan, dtype_of(outputs))
    return ops.where(ops.all(ops.isfinite(outputs)), score, nan)


def _accuracy(outputs, hits, sample_weight):
    ops = _ops()
    dtype = dtype_of(sample_weight)
    accuracy = ops.sum(sample_weight * ops.cast(hits, dtype)) / ops.sum(sample_weight)
    return _finite_or_nan(outputs, accuracy)


def _probability_problem(values, tol):
    if ((values < -tol) | (values > 1 + tol)).any():
        return f"values from {values.min():.4g} to {values.max():.4g}, outside [0, 1]"
    return None


class LogLoss(Loss):
    """Softmax outputs under the categorical log-loss (multiclass targets)."""

    name, out_activation, score_name = "log_loss", "softmax", "accuracy"
    outputs = "class probabilities whose rows sum to 1"

    def per_sample(self, outputs, y):
        ops = _ops()
        return -ops.sum(y * ops.log(_clipped(outputs)), axis=1)

    def score(self, outputs, y, sample_weight):
        ops = _ops()
        hits = ops.equal(ops.argmax(outputs, axis=1), ops.argmax(y, axis=1))
        return _accuracy(outputs, hits, sample_weight)

    def output_problem(self, values, tol):
        problem = _probability_problem(values, tol)
        if problem is None:
            sums = values.sum(axis=1)
            if (abs(sums - 1) > tol * values.shape[1]).any():
                worst = sums[np.argmax(abs(sums - 1))]
                problem = f"rows summing to {worst:.4g}, not 1"
        return problem


class BinaryLogLoss(Loss):
    """Logistic outputs under the binary log-loss (binary, multilabel targets).

    A sample counts as right in :meth:`score` when every output is on the
    side of 0.5 of its label, as ``LabelBinarizer`` decodes them.
    """

    name, out_activation, score_name = "log_loss", "logistic", "accuracy"
    outputs = "probabilities in [0, 1], one per output"

    def per_sample(self, outputs, y):
        ops = _ops()
        p = _clipped(outputs)
        return -ops.sum(y * ops.log(p) + (1 - y) * ops.log(1 - p), axis=1)

    def score(self, outputs, y, sample_weight):
        ops = _ops()
        dtype = dtype_of(outputs)
        predicted = ops.cast(ops.greater(outputs, constant(0.5, dtype)), dtype)
        hits = ops.all(ops.equal(predicted, y), axis=1)
        return _accuracy(outputs, hits, sample_weight)

    def output_problem(self, values, tol):
        problem = _probability_problem(values, tol)
        if problem is None and values.shape[1] == 1 and (values == 1).all():
            problem = "the constant 1 (softmax over a single output)"
        return problem


def _r2(outputs, y, sample_weight):
    """scikit-learn's ``r2_score``: weighted, averaged over the outputs.

    An output whose targets are constant (over the rows of positive weight)
    scores 1 when predicted exactly and 0 otherwise (``force_finite``);
    non-finite outputs score NaN, as MLPRegressor's validation scores them.
    """
    ops = _ops()
    dtype = dtype_of(outputs)
    zero, one = constant(0, dtype), constant(1, dtype)
    w = ops.expand_dims(sample_weight, 1)
    mean = ops.sum(w * y, axis=0) / ops.sum(sample_weight)
    residual = ops.sum(w * ops.square(y - outputs), axis=0)
    total = ops.sum(w * ops.square(y - mean), axis=0)
    # Constant among the weighted rows, exactly: a rounded mean would leave a
    # tiny total, and an R^2 of -1e30.
    weighted = ops.greater(w, zero)
    inf = constant(np.inf, dtype)
    highest = ops.max(ops.where(weighted, y, -inf), axis=0)
    lowest = ops.min(ops.where(weighted, y, inf), axis=0)
    constant_target = ops.logical_or(ops.equal(highest, lowest), ops.equal(total, zero))
    r2 = one - residual / ops.where(constant_target, one, total)
    exact = ops.where(ops.equal(residual, zero), one, zero)
    r2 = ops.where(constant_target, exact, r2)
    # Not ops.mean: Keras 3.15 on JAX averages float64 in float32.
    n_outputs = ops.cast(ops.shape(r2)[0], dtype)
    return _finite_or_nan(outputs, ops.sum(r2) / n_outputs)


class SquaredError(Loss):
    """Identity outputs under half the squared error (``loss="squared_error"``).

    As MLPRegressor's, the loss reported is the squared error averaged over
    the outputs, while the gradient is that of its sum over the outputs (its
    backpropagation starts from ``outputs - y``): they differ by the factor
    ``n_outputs`` for multi-output targets.
    """

    name, out_activation, score_name = "squared_error", "identity", "r2"
    outputs = "real values, one per target"

    def per_sample(self, outputs, y):
        ops = _ops()
        dtype = dtype_of(outputs)
        summed = constant(0.5, dtype) * ops.sum(ops.square(y - outputs), axis=1)
        n_outputs = ops.cast(ops.shape(outputs)[1], dtype)
        return summed + ops.stop_gradient(summed / n_outputs - summed)

    def score(self, outputs, y, sample_weight):
        return _r2(outputs, y, sample_weight)


class PoissonLoss(Loss):
    """Exponential outputs under half the Poisson deviance (``loss="poisson"``).

    Per sample, ``sum(y * log(y / outputs) - y + outputs)`` over the outputs
    (``y * log(y / outputs)`` is 0 where ``y`` is 0), as MLPRegressor's.
    """

    name, out_activation, score_name = "poisson", "exp", "r2"
    outputs = "positive values (means of Poisson targets), one per target"

    def per_sample(self, outputs, y):
        ops = _ops()
        dtype = dtype_of(outputs)
        zero, one = constant(0, dtype), constant(1, dtype)
        positive = ops.greater(y, zero)
        # log is taken only where y > 0, so an output of 0 for a target of 0
        # costs its value (0) and a well-defined gradient, never 0 * log(0).
        y_log_y = y * ops.log(ops.where(positive, y, one))
        y_log_mean = y * ops.log(ops.where(positive, outputs, one))
        return ops.sum(y_log_y - y_log_mean - y + outputs, axis=1)

    def score(self, outputs, y, sample_weight):
        return _r2(outputs, y, sample_weight)

    def output_problem(self, values, tol):
        if (values < 0).any():
            return f"negative values (down to {values.min():.4g})"
        return None


#: The loss of each output activation (scikit-learn's names).
LOSSES = {
    loss.out_activation: loss
    for loss in (LogLoss(), BinaryLogLoss(), SquaredError(), PoissonLoss())
}

#: The output activation of each regression loss (``loss`` parameter).
REGRESSION_ACTIVATIONS = {"squared_error": "identity", "poisson": "exp"}


def loss_for(out_activation):
    """The :class:`Loss` of networks with this output activation."""
    try:
        return LOSSES[out_activation]
    except KeyError:
        raise ValueError(
            f"No loss for the output activation {out_activation!r}; expected one "
            f"of {sorted(LOSSES)}."
        ) from None

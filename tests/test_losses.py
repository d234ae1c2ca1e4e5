"""The losses: scikit-learn's loss values and validation scores, on tensors.

Over generated outputs, targets and weights, each loss object's weighted mean
equals the loss scikit-learn's MLPs report, and its score equals
scikit-learn's ``accuracy_score`` or ``r2_score``; the gradients are checked
by the twin tests of the estimators (equal weights after training).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network._base import (
    binary_log_loss,
    log_loss,
    poisson_loss,
    squared_loss,
)

from sk_keras_digits._activations import KERAS_ACTIVATIONS
from sk_keras_digits._labels import LabelEncoding
from sk_keras_digits._losses import LOSSES, REGRESSION_ACTIVATIONS, loss_for
from tests._helpers import compute_scope, value_and_grad

#: Each generated case runs a few eager backend ops (slow on JAX): enough
#: cases to cover the shapes, weights and constant columns drawn.
FEW = settings(max_examples=8)


def _numpy(tensor):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _weighted_mean(loss, outputs, y, weights):
    with compute_scope("float64"):
        per_sample = _numpy(loss.per_sample(outputs, y))
    assert per_sample.shape == (len(y),)
    return float(np.sum(weights * per_sample) / np.sum(weights))


def _score(loss, outputs, y, weights):
    with compute_scope("float64"):
        return float(_numpy(loss.score(outputs, y, weights)))


@st.composite
def regression_case(draw, positive=False):
    n = draw(st.integers(2, 12))
    k = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    outputs = rng.normal(size=(n, k)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    y = rng.normal(size=(n, k))
    if positive:
        outputs = np.exp(outputs / max(1.0, abs(outputs).max()))
        y = np.floor(abs(y) * 3)
    if draw(st.booleans()):
        y[:, 0] = y[0, 0]  # a constant target column
    if not positive and draw(st.booleans()):
        outputs[:, 0] = y[:, 0]  # predicted exactly
    weights = rng.integers(0, 4, size=n).astype(float)
    weights[0] = 1.0 + weights[0]
    return outputs, y, weights


@FEW
@given(regression_case())
def test_squared_error_and_r2_are_scikit_learns(case):
    outputs, y, weights = case
    loss = loss_for("identity")
    expected = squared_loss(y, outputs, weights)
    np.testing.assert_allclose(
        _weighted_mean(loss, outputs, y, weights), expected, rtol=1e-12, atol=1e-300
    )
    score = _score(loss, outputs, y, weights)
    expected = r2_score(y, outputs, sample_weight=weights, multioutput="raw_values")
    # A constant target column scores 1 if predicted exactly, else 0, exactly
    # (scikit-learn's rounded weighted mean may leave a tiny variance).
    weighted = y[weights > 0]
    constant = weighted.max(axis=0) == weighted.min(axis=0)
    exact = (weights[:, None] * (y - outputs) ** 2).sum(axis=0) == 0
    expected = np.where(constant, exact.astype(float), expected).mean()
    np.testing.assert_allclose(score, expected, rtol=1e-9, atol=1e-12)


@FEW
@given(regression_case(positive=True))
def test_poisson_deviance_is_scikit_learns(case):
    outputs, y, weights = case
    loss = loss_for("exp")
    expected = poisson_loss(y, outputs, weights)
    np.testing.assert_allclose(
        _weighted_mean(loss, outputs, y, weights), expected, rtol=1e-10, atol=1e-12
    )


@FEW
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.booleans())
def test_log_losses_and_accuracy_are_scikit_learns(seed, n_classes, binary):
    rng = np.random.default_rng(seed)
    n = 20
    labels = rng.integers(0, 2 if binary else n_classes, size=n)
    labels[:2] = [0, 1]
    encoding = LabelEncoding.fit(labels)
    y = encoding.encode(labels, np.float64)
    logits = rng.normal(size=y.shape) * 3
    if binary:
        outputs = 1 / (1 + np.exp(-logits))
        expected = binary_log_loss(y, outputs)
    else:
        outputs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        expected = log_loss(y, outputs)
    loss = loss_for(encoding.out_activation)
    weights = np.ones(n)
    np.testing.assert_allclose(
        _weighted_mean(loss, outputs, y, weights), expected, rtol=1e-12
    )
    score = _score(loss, outputs, y, weights)
    assert score == pytest.approx(accuracy_score(labels, encoding.decode(outputs)))


@pytest.mark.parametrize("out_activation", sorted(LOSSES))
def test_non_finite_outputs_score_nan(out_activation):
    y = np.ones((4, 2))
    outputs = np.full((4, 2), 0.5)
    outputs[1, 0] = np.nan
    assert np.isnan(_score(loss_for(out_activation), outputs, y, np.ones(4)))


@pytest.mark.parametrize("out_activation", ["identity", "exp"])
@FEW
@given(case=regression_case(positive=True))
def test_the_gradient_is_outputs_minus_targets_at_the_pre_activation(
    out_activation, case
):
    """scikit-learn's backpropagation starts from ``outputs - y`` (summed over
    the outputs, weighted, divided by the weight sum): the canonical link."""
    import keras

    z, y, weights = case
    loss = loss_for(out_activation)
    activation = keras.activations.get(
        {"identity": "linear", "exp": "exponential"}[out_activation]
    )

    def mean_loss(values):
        (pre_activation,) = values
        per_sample = loss.per_sample(activation(pre_activation), y)
        return keras.ops.sum(weights * per_sample) / np.sum(weights)

    with compute_scope("float64"):
        _, (gradient,) = value_and_grad(mean_loss, [np.log(z)])
        outputs = _numpy(activation(np.log(z)))
    expected = (outputs - y) * weights[:, None] / weights.sum()
    np.testing.assert_allclose(_numpy(gradient), expected, rtol=1e-9, atol=1e-12)


@st.composite
def saturating_case(draw):
    """Pre-activations up to 1e3 (outputs rounded to 0 or 1), targets, weights."""
    out_activation = draw(st.sampled_from(sorted(LOSSES)))
    n, k = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    if out_activation == "softmax":
        k = max(k, 2)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 30.0, 1e3]))
    if out_activation == "exp":
        scale = min(scale, 30.0)  # exp(1e3) is infinite
    z = rng.normal(size=(n, k)) * scale
    if out_activation == "softmax":
        y = np.eye(k)[rng.integers(0, k, n)]
    elif out_activation == "logistic":
        y = rng.integers(0, 2, (n, k)).astype(float)
    elif out_activation == "exp":
        y = np.floor(rng.exponential(size=(n, k)) * 3)
    else:
        y = rng.normal(size=(n, k)) * scale
    weights = rng.uniform(0.1, 2, n)
    dtype = draw(st.sampled_from(["float64", "float32"]))
    return out_activation, z.astype(dtype), y.astype(dtype), weights.astype(dtype)


@settings(max_examples=24)
@given(case=saturating_case())
def test_the_gradient_of_the_logits_is_mlps_error_however_saturated(case):
    """The default network's loss passes MLP's ``outputs - y`` back from the
    output layer, where the outputs saturate too: a softmax that rounds the
    right class to probability 0, a logistic output at exactly 1. Through the
    activation and the clipped logarithm, those samples passed back almost
    nothing; its value is ``per_sample`` of the outputs, unchanged."""
    import keras

    out_activation, z, y, weights = case
    loss = loss_for(out_activation)
    activation = keras.activations.get(KERAS_ACTIVATIONS[out_activation])

    def mean_loss(values):
        (logits,) = values
        per_sample = loss.per_sample_of_logits(logits, y, activation)
        return keras.ops.sum(weights * per_sample) / np.sum(weights)

    with compute_scope(z.dtype.name):
        value, (gradient,) = value_and_grad(mean_loss, [z])
        outputs = _numpy(activation(z))
        per_sample = _numpy(loss.per_sample(outputs, y))
    expected = (outputs - y) * weights[:, None] / weights.sum()
    tol = 1e-5 if z.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(_numpy(gradient), expected, rtol=tol, atol=tol)
    assert _numpy(gradient).dtype == z.dtype
    expected_value = np.sum(weights * per_sample) / weights.sum()
    assert float(_numpy(value)) == pytest.approx(float(expected_value), rel=tol)


def test_each_regression_loss_names_its_output_activation():
    for name, activation in REGRESSION_ACTIVATIONS.items():
        assert loss_for(activation).name == name
    with pytest.raises(ValueError, match="No loss for the output activation 'tanh'"):
        loss_for("tanh")

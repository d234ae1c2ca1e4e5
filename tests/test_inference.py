"""The NumPy predict path gives the Keras model's numbers."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from sk_keras_digits._inference import dense_forward
from sk_keras_digits._network import DenseNetwork
from tests._helpers import backend_name, compute_scope


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize(
    "out_activation, n_outputs", [("softmax", 10), ("logistic", 3)]
)
def test_dense_forward_equals_the_keras_model(
    small_digits, activation, out_activation, n_outputs
):
    X, _ = small_digits
    network = DenseNetwork([64, 9, 7, n_outputs], activation, out_activation, "float64")
    weights = network.initial_weights(np.random.RandomState(0))
    params = weights.params
    model = network.build_model(weights)
    proba = dense_forward(params[::2], params[1::2], X, activation, out_activation)
    with compute_scope("float64"):
        expected = model.predict(X, verbose=0)
    # Keras 3.15's tanh layers compute float64 in float32 on JAX.
    keras_tanh = activation == "tanh" and backend_name() == "jax"
    rtol, atol = (1e-6, 1e-7) if keras_tanh else (1e-12, 1e-15)
    np.testing.assert_allclose(proba, expected, rtol=rtol, atol=atol)
    sparse = dense_forward(
        params[::2], params[1::2], sp.csr_matrix(X), activation, out_activation
    )
    np.testing.assert_allclose(sparse, proba, rtol=1e-12)


def test_importing_the_predict_path_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, sk_keras_digits._inference; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def custom_fit(small_digits):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from sk_keras_digits import KerasDigitClassifier
    from tests._networks import SmallDense

    X, y = small_digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KerasDigitClassifier(
            network=SmallDense(5), max_iter=2, random_state=0
        ).fit(X, y)


def recorded_calls(estimator, monkeypatch):
    """The rows of each call ``estimator``'s custom-network predictions make
    to their compiled program, as a list that fills as they run."""
    from sk_keras_digits._training import get_program

    program = get_program(estimator._get_network())  # the one predict uses
    predict = program.predict
    rows = []

    def recording(weights, part):
        rows.append(part.shape[0])
        return predict(weights, part)

    monkeypatch.setattr(program, "predict", recording)
    return rows


def test_a_custom_network_predicts_in_bounded_chunks(
    custom_fit, small_digits, monkeypatch
):
    """At most PREDICT_ROWS rows a call, padded to a power of two: memory is
    bounded, and a backend compiling per shape compiles a few programs."""
    from sk_keras_digits import _inference

    X, _ = small_digits
    shapes = recorded_calls(custom_fit, monkeypatch)
    big = np.tile(X, (9, 1))[:2500]
    proba = custom_fit.predict_proba(big)
    assert shapes == [_inference.PREDICT_ROWS, _inference.PREDICT_ROWS, 512]
    shapes.clear()
    # On JAX, Keras' BatchNormalization computes in float32 whatever its dtype
    # (its result_type maps float64 to float32 there), and XLA compiles the whole
    # network for each number of rows, fusing that float32 arithmetic
    # differently: a row's outputs then differ by float32 roundings (1e-7) from
    # one call size to another. TensorFlow runs each layer's own kernels.
    rtol = 1e-6 if backend_name() == "jax" else 1e-12
    for rows in (1, 7, 8, 9, 100):
        part = custom_fit.predict_proba(big[:rows])
        np.testing.assert_allclose(part, proba[:rows], rtol=rtol, atol=1e-15)
    assert shapes == [8, 8, 8, 16, 128]
    sparse = custom_fit.predict_proba(sp.csr_matrix(big))
    np.testing.assert_allclose(sparse, proba, rtol=rtol, atol=1e-15)


@given(row_bytes=st.integers(0, 2**70))
def test_chunk_rows_fit_predict_bytes(row_bytes):
    """A power of two up to PREDICT_ROWS, whose rows' outputs fit in
    PREDICT_BYTES (one row, whatever its size, if none fits)."""
    from sk_keras_digits._inference import PREDICT_BYTES, PREDICT_ROWS, chunk_rows

    rows = chunk_rows(row_bytes)
    assert 1 <= rows <= PREDICT_ROWS and rows & (rows - 1) == 0
    assert rows == 1 or rows * row_bytes <= PREDICT_BYTES
    assert rows == PREDICT_ROWS or 2 * rows * max(row_bytes, 1) > PREDICT_BYTES


def test_a_network_with_large_outputs_per_row_predicts_fewer_rows_a_call(
    small_digits, monkeypatch
):
    """The rows of a call shrink as the layers' outputs per row grow, so that
    a call holds at most PREDICT_BYTES of them; the predictions are the same."""
    from sk_keras_digits import KerasDigitClassifier, _inference
    from tests._networks import repeating_network

    X, y = small_digits
    est = KerasDigitClassifier(
        network=repeating_network, max_iter=2, random_state=0
    ).fit(X, y)
    network = est._get_network()
    assert network.values_per_row == 4 + 4 * 3 + 4 + 10
    expected = est.predict_proba(X[:13])
    shapes = recorded_calls(est, monkeypatch)
    values = X.shape[1] + network.values_per_row  # a row, and its outputs
    row_bytes = values * np.dtype(network.compute_dtype).itemsize
    # The last call is padded to the chunk's size (a power of two).
    for fits, calls in [(1, [1] * 13), (3, [2] * 7), (5, [4] * 4)]:
        budget = fits * row_bytes
        monkeypatch.setattr(_inference, "PREDICT_BYTES", budget)
        shapes.clear()
        proba = est.predict_proba(X[:13])
        assert shapes == calls
        np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-15)

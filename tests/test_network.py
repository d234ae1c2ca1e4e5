"""Network builders: MLPClassifier's initialisation, custom networks' keys."""

import keras
import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier

from sk_keras_digits._network import CustomNetwork, DenseNetwork


@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_initial_weights_are_mlpclassifiers(activation):
    network = DenseNetwork([64, 15, 10], activation, "softmax", "float64")
    params, buffers = network.initial_weights(np.random.RandomState(3))
    mlp = MLPClassifier(hidden_layer_sizes=(15,), activation=activation)
    mlp._random_state = np.random.RandomState(3)
    expected = []
    for fan_in, fan_out in [(64, 15), (15, 10)]:
        expected += list(mlp._init_coef(fan_in, fan_out, np.float64))
    assert buffers == ()
    for ours, theirs in zip(params, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_dense_model_layers_and_dtype():
    network = DenseNetwork([64, 15, 8, 1], "tanh", "logistic", "float32")
    weights = network.initial_weights(np.random.RandomState(0))
    model = network.build_model(weights)
    assert [layer.name for layer in model.layers[1:]] == [
        "hidden_1",
        "hidden_2",
        "output",
    ]
    assert [layer.activation.__name__ for layer in model.layers[1:]] == [
        "tanh",
        "tanh",
        "sigmoid",
    ]
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert network.penalized == [0, 2, 4]


def mlp_builder(n_features, n_outputs, output_activation, width=6):
    inputs = keras.Input(shape=(n_features,))
    h = keras.layers.Dense(width, activation="relu")(inputs)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
    return keras.Model(inputs, outputs)


def test_custom_networks_of_the_same_structure_share_a_trace_key():
    first = CustomNetwork(mlp_builder, 64, 10, "softmax", "float64")
    second = CustomNetwork(mlp_builder, 64, 10, "softmax", "float64")
    first.build(0)
    second.build(1)
    assert first.trace_key == second.trace_key
    wider = CustomNetwork(
        lambda *a: mlp_builder(*a, width=7), 64, 10, "softmax", "float64"
    )
    wider.build(0)
    assert wider.trace_key != first.trace_key
    assert first.penalized == [0, 2]


def test_custom_build_is_seeded_and_uses_the_data_dtype():
    a = CustomNetwork(mlp_builder, 64, 3, "softmax", "float64")
    b = CustomNetwork(mlp_builder, 64, 3, "softmax", "float64")
    c = CustomNetwork(mlp_builder, 64, 3, "softmax", "float64")
    a.build(5), b.build(5), c.build(6)
    np.testing.assert_array_equal(
        a.initial_weights().params[0], b.initial_weights().params[0]
    )
    assert not np.array_equal(
        a.initial_weights().params[0], c.initial_weights().params[0]
    )
    assert a.compute_dtype == "float64"

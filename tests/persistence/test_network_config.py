"""Tests for sk_keras_digits._persistence.network_config: configs checked unbuilt."""

import json

import keras
import numpy as np
import psutil
import pytest

from sk_keras_digits._network import DenseNetwork
from sk_keras_digits._persistence.errors import Refused
from sk_keras_digits._persistence.network_config import (
    MAX_LAYERS,
    check_config_bounds,
    check_dense_config,
    output_activation,
    variable_specs,
)
from tests._networks import dropout_network, unused_weight_network


def dense_config(units=(5, 3), activation="tanh", out="softmax", dtype="float64"):
    network = DenseNetwork([4, *units], activation, out, dtype)
    model = network.build_model(network.initial_weights(np.random.RandomState(0)))
    return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))


def test_check_dense_config():
    config = dense_config()
    check_dense_config(config, 4, [5, 3], "tanh", "softmax", "float64")
    for args, found in [
        ((4, [5, 3], "relu", "softmax", "float64"), "'tanh'"),
        ((4, [6, 3], "tanh", "softmax", "float64"), "5"),
        ((4, [5, 3], "tanh", "logistic", "float64"), "'softmax'"),
        ((4, [5, 3], "tanh", "softmax", "float32"), "'float64'"),
        ((3, [5, 3], "tanh", "softmax", "float64"), "4"),
    ]:
        with pytest.raises(Refused, match=f"describes the layers .*{found}"):
            check_dense_config(config, *args)
    config["config"]["layers"][1]["class_name"] = "Lambda"
    with pytest.raises(Refused, match="'Lambda'"):
        check_dense_config(config, 4, [5, 3], "tanh", "softmax", "float64")
    with pytest.raises(Refused, match="not the default network"):
        check_dense_config({"class_name": []}, 4, [5, 3], "tanh", "softmax", "float64")


def test_variable_specs_allocate_nothing():
    """A 2,000,000-unit network's variables are described, not allocated."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    config = keras.saving.serialize_keras_object(model)
    specs = variable_specs(config, None, True)
    trainable, non_trainable = specs.trainable, specs.non_trainable
    assert trainable == [
        ((64, 8), "float32"),
        ((8,), "float32"),
        ((8,), "float32"),
        ((8,), "float32"),
        ((8, 10), "float32"),
        ((10,), "float32"),
    ]
    assert [shape for shape, _ in non_trainable] == [(8,), (8,), (2,)]
    # Dense, BatchNormalization, Dropout, Dense (the input is the caller's).
    assert specs.values_per_row == 8 + 8 + 8 + 10
    huge = json.loads(json.dumps(config).replace('"units": 8,', '"units": 2000000,'))
    for layer in huge["config"]["layers"][1:]:
        layer.pop("build_config", None)
    process = psutil.Process()
    before = process.memory_info().rss
    specs = variable_specs(huge, None, True)
    trainable = specs.trainable
    assert specs.values_per_row == 3 * 2_000_000 + 10
    assert trainable[0] == ((64, 2_000_000), "float32")
    assert trainable[-2] == ((2_000_000, 10), "float32")
    # 168 million floats (670 MB) were described, not allocated.
    assert process.memory_info().rss - before < 50 * 2**20
    # ... and nothing initialises them later.
    with keras.StatelessScope():
        pass
    assert process.memory_info().rss - before < 50 * 2**20


def test_variable_specs_refuse_code():
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    config = keras.saving.serialize_keras_object(keras.Model(inputs, outputs))
    with pytest.raises(Refused, match="Lambda layer"):
        variable_specs(config, None, True)


def test_output_activation():
    assert output_activation(dense_config(out="logistic")) == "sigmoid"
    sequential = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.Activation("softmax")]
    )
    assert output_activation(keras.saving.serialize_keras_object(sequential)) == (
        "softmax"
    )
    assert output_activation({"config": 3}) is None


# -- bounds checked before Keras reads a configuration ---------------------------
def _numpy_value(dtype):
    return {"class_name": "__numpy__", "config": {"value": [0], "dtype": dtype}}


@pytest.mark.parametrize("dtype", ["(11585,11585)f8", "O", "object", "<U9", 3, None])
def test_config_bounds_refuse_values_of_other_dtypes(dtype):
    """A sub-array dtype makes a gigabyte of one JSON number as Keras reads it."""
    config = {"config": {"layers": [{"config": {"kwargs": _numpy_value(dtype)}}]}}
    with pytest.raises(Refused, match="holds a value of dtype"):
        check_config_bounds(config, 1000)
    check_config_bounds(_numpy_value("float32"), 1000)


@pytest.mark.parametrize("key", ["input_shape", "batch_shape", "shape"])
def test_config_bounds_refuse_shapes_beyond_max_elements(key):
    """A Normalization layer built for such an input allocates its width
    twice while the configuration is read, its variables deferred or not."""
    check_config_bounds({"build_config": {key: [None, 10, 100]}}, 1000)
    for shape in ([None, 10, 101], [[None, 3], [None, 1001]], [2000]):
        with pytest.raises(Refused, match=f"declares the {key}.*larger max_bytes"):
            check_config_bounds({"layers": [{"build_config": {key: shape}}]}, 1000)


def test_config_bounds_refuse_more_layers_than_max_layers():
    """Keras rebuilds a Sequential model per layer added: quadratic time."""
    inner = {"class_name": "Sequential", "config": {"layers": [{}] * 150}}
    check_config_bounds({"config": {"layers": [inner]}}, 1000)
    with pytest.raises(Refused, match=f"more than {MAX_LAYERS} layers"):
        check_config_bounds({"config": {"layers": [inner, inner]}}, 1000)


@pytest.mark.parametrize("network", [dropout_network, unused_weight_network])
def test_config_bounds_take_the_configurations_of_real_networks(network):
    model = network(64, 10, "softmax")
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    check_config_bounds(config, 64)

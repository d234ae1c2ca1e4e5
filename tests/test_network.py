"""Network builders: MLPClassifier's initialisation, custom networks' keys."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
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


# -- program keys: a network shares a program only if provably equivalent ---
def _key(builder):
    network = CustomNetwork(builder, 64, 10, "softmax", "float64")
    network.build(0)
    return network.trace_key


def _scaled_closure(scale):
    def activation(x):
        return keras.ops.tanh(x) * scale

    def build(n_features, n_outputs, output_activation):
        return keras.Sequential(
            [
                keras.Input((n_features,)),
                keras.layers.Dense(6, activation=activation),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )

    return build


def _scaled_lambda(scale):
    def build(n_features, n_outputs, output_activation):
        return keras.Sequential(
            [
                keras.Input((n_features,)),
                keras.layers.Dense(6, activation=lambda x: x * scale),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )

    return build


class _Scale(keras.layers.Layer):
    """A custom layer whose behaviour depends on a value its config leaves out."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale


@keras.saving.register_keras_serializable(package="test_network")
class _RegisteredScale(_Scale):
    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _custom_layer(layer_class):
    def for_scale(scale):
        def build(n_features, n_outputs, output_activation):
            return keras.Sequential(
                [
                    keras.Input((n_features,)),
                    layer_class(scale),
                    keras.layers.Dense(n_outputs, activation=output_activation),
                ]
            )

        return build

    return for_scale


def _lambda_layer(scale):
    def build(n_features, n_outputs, output_activation):
        inputs = keras.Input((n_features,))
        h = keras.layers.Lambda(lambda x: x * scale)(inputs)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
        return keras.Model(inputs, outputs)

    return build


def _custom_initializer(scale):
    class Init(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return keras.ops.ones(shape, dtype) * scale

    def build(n_features, n_outputs, output_activation):
        return keras.Sequential(
            [
                keras.Input((n_features,)),
                keras.layers.Dense(
                    n_outputs,
                    activation=output_activation,
                    kernel_initializer=Init(),
                ),
            ]
        )

    return build


@pytest.mark.parametrize(
    "family",
    [
        _scaled_closure,
        _scaled_lambda,
        _custom_layer(_Scale),
        _custom_layer(_RegisteredScale),
        _lambda_layer,
        _custom_initializer,
    ],
    ids=[
        "closure",
        "lambda",
        "custom-layer",
        "registered-custom-layer",
        "Lambda-layer",
        "custom-initializer",
    ],
)
def test_unprovable_networks_never_share_a_program_key(family):
    keys = [_key(family(scale)) for scale in (1.0, 0.0, 1.0)]
    # Not even the same parameter twice: nothing proves them equivalent.
    assert len(set(keys)) == 3


def test_keras_own_layers_and_activations_keep_sharing():
    def build(n_features, n_outputs, output_activation):
        return keras.Sequential(
            [
                keras.Input((n_features,)),
                keras.layers.Reshape((8, 8, 1)),
                keras.layers.Conv2D(2, 3, activation=keras.activations.relu),
                keras.layers.Flatten(),
                keras.layers.Dropout(0.1),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(
                    n_outputs,
                    activation=output_activation,
                    kernel_regularizer=keras.regularizers.L2(0.01),
                ),
            ]
        )

    assert _key(build) == _key(build)
    assert _key(build)[2][0] == "config"
    assert _key(mlp_builder) == _key(mlp_builder)


# -- the output contract -------------------------------------------------------
def _network(layers_after_input, n_outputs=10):
    def build(n_features, n_outputs_, output_activation):
        return keras.Sequential([keras.Input((n_features,)), *layers_after_input()])

    return CustomNetwork(
        build, 64, n_outputs, "softmax" if n_outputs > 1 else "logistic", "float64"
    )


@pytest.mark.parametrize(
    "layers, n_outputs, problem",
    [
        (lambda: [keras.layers.Dense(10)], 10, "outside [0, 1]"),
        (
            lambda: [
                keras.layers.Dense(5, activation="softmax"),
                keras.layers.Dense(10),
            ],
            10,
            "outside [0, 1]",
        ),
        (lambda: [keras.layers.Dense(10, activation="sigmoid")], 10, "summing to"),
        (lambda: [keras.layers.Dense(1)], 1, "outside [0, 1]"),
        (lambda: [keras.layers.Dense(1, activation="softmax")], 1, "constant 1"),
        (lambda: [keras.layers.Dense(3, activation="relu")], 3, "outside [0, 1]"),
    ],
)
def test_outputs_that_are_not_probabilities_are_refused(
    small_digits, layers, n_outputs, problem
):
    X, _ = small_digits
    network = _network(layers, n_outputs)
    network.build(0)
    with pytest.raises(ValueError, match="must output") as info:
        network.check_outputs(X)
    message = str(info.value)
    assert problem in message and "activation=" in message and "build" in message


@pytest.mark.parametrize("n_outputs, activation", [(10, "softmax"), (3, "sigmoid")])
def test_probabilities_of_the_right_kind_pass(small_digits, n_outputs, activation):
    X, _ = small_digits
    network = _network(
        lambda: [
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(n_outputs, activation=activation),
        ],
        n_outputs,
    )
    network.out_activation = "softmax" if activation == "softmax" else "logistic"
    network.build(0)
    network.check_outputs(X)


def test_a_network_without_trainable_weights_is_refused():
    network = _network(lambda: [keras.layers.Softmax()], 64)
    with pytest.raises(ValueError, match="no trainable weights") as info:
        network.build(0)
    assert "build" in str(info.value)


@pytest.mark.parametrize("data_dtype", ["float64", "float32"])
def test_a_layer_with_its_own_dtype_is_refused_naming_it(data_dtype, small_digits):
    """Variables train as one vector of X's dtype: a layer keeping its own
    dtype is refused before training, with what to change."""
    from sk_keras_digits import KerasDigitClassifier

    own = "float16" if data_dtype == "float32" else "float32"

    def network(n_in, n_out, activation):
        return keras.Sequential(
            [
                keras.Input((n_in,)),
                keras.layers.Dense(4, dtype=own, name="own"),
                keras.layers.Dense(n_out, activation=activation),
            ]
        )

    X, y = small_digits
    est = KerasDigitClassifier(network=network, max_iter=1)
    with pytest.raises(ValueError, match=rf"'[\w/]*own/kernel' in {own}, where X is"):
        est.fit(X.astype(data_dtype), y)


def test_a_network_for_inputs_of_a_range_fits(digits):
    """An Embedding of the digits' integer pixels refuses the scaled-up probe
    of the output check (on TensorFlow): the probe of X's own rows decides."""
    from sk_keras_digits import KerasDigitClassifier

    def embedding_network(n_in, n_out, activation):
        inputs = keras.Input((n_in,))
        hidden = keras.layers.Flatten()(keras.layers.Embedding(17, 2)(inputs))
        outputs = keras.layers.Dense(n_out, activation=activation)(hidden)
        return keras.Model(inputs, outputs)

    X, y = digits
    est = KerasDigitClassifier(network=embedding_network, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:200], y[:200])
    np.testing.assert_allclose(est.predict_proba(X[:5]).sum(axis=1), 1.0)


@pytest.fixture
def user_floatx():
    """Sets Keras' floatx (process-wide, the user's) and restores it."""
    before = keras.config.floatx()
    yield keras.config.set_floatx
    keras.config.set_floatx(before)


@pytest.mark.parametrize("floatx", ["float16", "float32", "float64"])
def test_a_custom_network_takes_x_in_its_dtype_whatever_floatx(
    floatx, user_floatx, small_digits
):
    """A keras.Input without a dtype takes X's dtype, not the user's floatx:
    the same fit and predictions whatever it is, set before the fit or
    between the fit and the first prediction; floatx is left as set."""
    from sk_keras_digits import KerasDigitClassifier

    def network(n_in, n_out, activation):
        inputs = keras.Input((n_in,))
        hidden = keras.layers.Dense(8, activation="relu")(inputs)
        return keras.Model(
            inputs, keras.layers.Dense(n_out, activation=activation)(hidden)
        )

    X, y = small_digits
    params = dict(network=network, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = KerasDigitClassifier(**params).fit(X, y)
        expected = plain.predict_proba(X)
        user_floatx(floatx)
        under = KerasDigitClassifier(**params).fit(X, y)
        switched = KerasDigitClassifier(**params)
        user_floatx("float32")
        switched.fit(X, y)
        user_floatx(floatx)
    assert under.model_.inputs[0].dtype == "float64"
    np.testing.assert_array_equal(under.predict_proba(X), expected)
    np.testing.assert_array_equal(switched.predict_proba(X), expected)
    assert keras.config.floatx() == floatx


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_network_whose_training_step_cannot_fit_in_memory_is_refused(
    small_digits, solver
):
    """Layers outputting 4 * 2**40 values per row: petabytes for any step, and
    for the first rows the fit probes its outputs on. Refused, with the
    sizes, before any is computed."""
    from functools import partial

    from sk_keras_digits import KerasDigitClassifier
    from tests._networks import repeating_network

    X, y = small_digits
    est = KerasDigitClassifier(
        network=partial(repeating_network, repeats=2**40), solver=solver
    )
    with pytest.raises(ValueError, match=r"^A training step of this network holds"):
        est.fit(X, y)
    network = CustomNetwork(repeating_network, 64, 10, "softmax", "float64")
    network.build(seed=0)
    assert network.values_per_row == 4 + 3 * 4 + 4 + 10
    network.check_training_memory(100, "", memory=4 * 2 * 100 * (64 + 30) * 8)
    with pytest.raises(ValueError, match=r"101 rows of 94 values .*\. Remedy\.$"):
        network.check_training_memory(101, "Remedy.", memory=4 * 2 * 100 * 94 * 8)

"""Custom networks for the tests, importable by name (``tests._networks``).

They live at module level, so that estimators using them pickle; the format-2
fixtures in ``tests/data/format_2`` were fitted with ``SmallDense``.
"""

from sk_keras_digits import NetworkBuilder


class SmallDense(NetworkBuilder):
    """One hidden Dense layer followed by batch normalisation."""

    def __init__(self, units=6):
        self.units = units

    def build(self, n_features_in, n_outputs, output_activation):
        import keras

        inputs = keras.Input((n_features_in,))
        hidden = keras.layers.Dense(self.units, activation="relu")(inputs)
        hidden = keras.layers.BatchNormalization()(hidden)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
        return keras.Model(inputs, outputs)


def dropout_network(n_features_in, n_outputs, output_activation):
    """A Dense layer and Dropout: a network with a training-time behaviour."""
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features_in,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(n_outputs, activation=output_activation),
        ]
    )


def unused_weight_network(n_features_in, n_outputs, output_activation):
    """A softmax layer with a trainable weight its output never reads."""
    import keras

    class WithUnusedWeight(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[-1], n_outputs), initializer="glorot_uniform"
            )
            self.unused = self.add_weight(shape=(3,), initializer="ones")

        def call(self, x):
            return keras.activations.get(output_activation)(x @ self.kernel)

    inputs = keras.Input((n_features_in,))
    return keras.Model(inputs, WithUnusedWeight()(inputs))


def repeating_network(n_features_in, n_outputs, output_activation, repeats=3):
    """A RepeatVector layer: outputs ``repeats`` times wider than its input,
    with no weight of its own (a file's ``n`` sets its outputs' size)."""
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features_in,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.RepeatVector(repeats),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(n_outputs, activation=output_activation),
        ]
    )

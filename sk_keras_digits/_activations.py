"""Activation names: MLPClassifier's spelling and Keras'.

The one table of the package, in a module that imports no backend, so that the
network builders, the model-file checks and the documentation agree.
"""

#: MLP's activation names -> Keras' names (hidden and output ones).
KERAS_ACTIVATIONS = {
    "identity": "linear",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
    "exp": "exponential",
}

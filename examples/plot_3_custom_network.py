"""
A custom Keras network: convolutions on the 8x8 images
======================================================

What Keras adds to MLPClassifier: any architecture. The ``network`` parameter
takes a :class:`~sk_keras_digits.NetworkBuilder` that builds a Keras model;
the estimator keeps everything else (solvers, ``alpha``, early stopping,
labels, ``random_state``, the scikit-learn API). Here a small convolutional
network sees each digit as the 8x8 image it is, rather than as 64 unrelated
numbers.
"""

# %%
# The builder
# -----------
# A :class:`~sk_keras_digits.NetworkBuilder` stores its hyper-parameters in
# ``__init__``, as a scikit-learn estimator does, and ``build`` receives the
# number of input features, the number of outputs and the activation the last
# layer must apply (``"softmax"`` for these ten classes), and returns an
# uncompiled ``keras.Model``. Define it at module level so that the estimator
# can be cloned and pickled.
import warnings

import keras
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sk_keras_digits import (
    KerasDigitClassifier,
    NetworkBuilder,
    plot_learning_curves,
    plot_predictions,
)


class SmallConv(NetworkBuilder):
    """Two convolutions, an optional dense layer, then the output layer."""

    def __init__(self, filters=16, kernel_size=3, dense_units=0):
        self.filters = filters
        self.kernel_size = kernel_size
        self.dense_units = dense_units

    def build(self, n_features_in, n_outputs, output_activation):
        side = int(n_features_in**0.5)
        conv = dict(padding="same", activation="relu")
        layers = [
            keras.Input((n_features_in,)),
            keras.layers.Reshape((side, side, 1)),
            keras.layers.Conv2D(self.filters, self.kernel_size, **conv),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(2 * self.filters, self.kernel_size, **conv),
            keras.layers.Flatten(),
        ]
        if self.dense_units:
            layers.append(keras.layers.Dense(self.dense_units, activation="relu"))
        layers.append(keras.layers.Dense(n_outputs, activation=output_activation))
        return keras.Sequential(layers)


# %%
# Its parameters are the estimator's, as ``network__<name>``: ``set_params``,
# :func:`~sklearn.base.clone` and grid searches reach them by name (see
# :ref:`sphx_glr_auto_examples_plot_5_network_search.py`).
clf = KerasDigitClassifier(network=SmallConv(filters=8))
print(clf)
print({k: v for k, v in clf.get_params().items() if k.startswith("network__")})

# %%
# Training it
# -----------
# Pixels scaled to [0, 1] and float32, so that the network computes in
# float32, Keras' usual precision (it follows the dtype of ``X``). Adam, with early
# stopping on 10% of the training digits: training stops once the validation
# accuracy has not improved for 10 epochs, and the best weights are kept.
X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]

settings = dict(
    solver="adam",
    learning_rate_init=0.01,
    batch_size=50,
    max_iter=60,
    early_stopping=True,
    random_state=0,
)
warnings.filterwarnings("ignore", category=ConvergenceWarning)
conv = KerasDigitClassifier(network=SmallConv(filters=16), **settings)
conv.fit(X_train, y_train)
print(f"stopped after {conv.n_iter_} epochs")
conv.model_.summary()

# %%
# Against the tutorial's dense network, trained with the same settings:
dense = KerasDigitClassifier(
    hidden_layer_sizes=(15,), activation="logistic", **settings
).fit(X_train, y_train)
for name, clf in [("convolutional", conv), ("dense 64-15-10", dense)]:
    n_weights = sum(w.size for w in clf.coefs_ + clf.intercepts_)
    print(
        f"{name:>15}: test accuracy {clf.score(X_test, y_test):.3f} "
        f"with {n_weights} weights"
    )

# %%
# With ``early_stopping=True`` the learning curves include the validation
# accuracy, the best epoch starred:
fig = plot_learning_curves({"convolutional": conv, "dense 64-15-10": dense})

# %%
# The digits the convolutional network still gets wrong:
wrong = conv.predict(X_test) != y_test
fig = plot_predictions(conv, X_test[wrong], y_test[wrong], max_images=16)

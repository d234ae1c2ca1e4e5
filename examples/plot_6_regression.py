"""
Regression: KerasDigitRegressor against MLPRegressor
====================================================

:class:`~sk_keras_digits.KerasDigitRegressor` is to
:class:`~sklearn.neural_network.MLPRegressor` what
:class:`~sk_keras_digits.KerasDigitClassifier` is to MLPClassifier: the same
parameters, defaults and fitted attributes and, without shuffling, the same
weights, with a Keras network underneath. Here both predict a measure of
diabetes progression one year on from ten measurements of 442 patients
(scikit-learn's bundled diabetes data), then a custom Keras network joins
them.
"""

# %%
# The data
# --------
# Ten features (age, sex, body mass index, blood pressure and six blood
# serum measurements) and a numeric target between 25 and 346. A quarter of
# the patients are held out for testing.
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_keras_digits import KerasDigitRegressor, NetworkBuilder

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
print(X_train.shape, X_test.shape, f"y in [{y.min():.0f}, {y.max():.0f}]")

# %%
# The same settings for both
# --------------------------
# A network of 10 ReLU units, trained with SGD in mini-batches of 32 for at
# most 100 epochs, without shuffling. Neural networks train best on inputs
# and targets of unit scale, so each estimator is the last step of a
# :class:`~sklearn.pipeline.Pipeline` that standardises ``X``, wrapped in a
# :class:`~sklearn.compose.TransformedTargetRegressor` that standardises ``y``
# (and turns the predictions back into the target's units). The first fit of
# KerasDigitRegressor in a process compiles its training program; the fit
# times compare a second fit with MLPRegressor's.
settings = dict(
    hidden_layer_sizes=(10,),
    solver="sgd",
    learning_rate_init=0.01,
    batch_size=32,
    alpha=1.0,
    max_iter=100,
    shuffle=False,
    random_state=0,
)


def scaled(regressor):
    """``regressor`` on standardised inputs and targets."""
    return TransformedTargetRegressor(
        make_pipeline(StandardScaler(), regressor), transformer=StandardScaler()
    )


def timed_fit(model):
    start = time.perf_counter()
    model.fit(X_train, y_train)
    return time.perf_counter() - start


keras_reg = scaled(KerasDigitRegressor(**settings))
mlp_reg = scaled(MLPRegressor(**settings))
first = timed_fit(keras_reg)  # compiles the training program, once per process
seconds = {
    "KerasDigitRegressor": timed_fit(keras_reg),  # the second fit: compiled
    "MLPRegressor": timed_fit(mlp_reg),
}
for name, model in [("KerasDigitRegressor", keras_reg), ("MLPRegressor", mlp_reg)]:
    print(
        f"{name:>19}: test R^2 {model.score(X_test, y_test):.3f}, "
        f"fit {seconds[name]:.3f} s"
    )
print(f"(KerasDigitRegressor's first fit in this process, compiling: {first:.1f} s)")

# %%
# The twin
# --------
# Both start from the same weights (drawn as MLPRegressor draws them from
# ``random_state``) and, without shuffling, see the same mini-batches in the
# same order: they end with the same weights, loss curve and number of
# epochs, to rounding. ``regressor_[-1]`` is each pipeline's fitted
# regressor.
ours, theirs = keras_reg.regressor_[-1], mlp_reg.regressor_[-1]
print(f"epochs: {ours.n_iter_} and {theirs.n_iter_}")
weights = zip(
    ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
)
print(f"largest weight difference: {max(np.abs(a - b).max() for a, b in weights):.1e}")
loss_difference = np.abs(np.subtract(ours.loss_curve_, theirs.loss_curve_)).max()
print(f"largest loss difference: {loss_difference:.1e}")
ours.model_.summary()


# %%
# A custom network
# ----------------
# ``network`` takes any Keras architecture as a
# :class:`~sk_keras_digits.NetworkBuilder`. For a regressor, ``build``
# receives the number of targets as ``n_outputs`` and the activation the last
# layer must apply: ``"linear"`` for ``loss="squared_error"``,
# ``"exponential"`` for ``loss="poisson"``. This one has two hidden layers
# with dropout between them; its parameters are the estimator's, as
# ``network__units`` and ``network__dropout``.
class TwoLayers(NetworkBuilder):
    """Two ReLU layers with dropout after each, then the output layer."""

    def __init__(self, units=32, dropout=0.2):
        self.units = units
        self.dropout = dropout

    def build(self, n_features_in, n_outputs, output_activation):
        layers = [keras.Input((n_features_in,))]
        for _ in range(2):
            layers.append(keras.layers.Dense(self.units, activation="relu"))
            layers.append(keras.layers.Dropout(self.dropout))
        layers.append(keras.layers.Dense(n_outputs, activation=output_activation))
        return keras.Sequential(layers)


# %%
# Adam (at its default learning rate, 0.001) with early stopping: 10% of the
# training patients are set aside, and training stops once their R^2 has not
# improved for 10 epochs, keeping the weights of the best epoch.
custom = KerasDigitRegressor(
    network=TwoLayers(units=64, dropout=0.2),
    solver="adam",
    batch_size=32,
    alpha=1.0,
    early_stopping=True,
    random_state=0,
)
custom_reg = scaled(custom)
custom_seconds = timed_fit(custom_reg)  # its first fit: compiles its program
fitted = custom_reg.regressor_[-1]
print(fitted)
print(
    f"stopped after {fitted.n_iter_} epochs, best validation R^2 "
    f"{fitted.best_validation_score_:.3f}; test R^2 "
    f"{custom_reg.score(X_test, y_test):.3f} (fit {custom_seconds:.1f} s, "
    "compiling included)"
)

# %%
# Its training loss (on the standardised targets) and its validation R^2 per
# epoch, the best epoch starred; ``history_`` holds the same numbers as
# ``loss`` and ``val_r2``, in Keras' form:
fig, (loss_ax, r2_ax) = plt.subplots(1, 2, figsize=(10, 4))
epochs = np.arange(1, fitted.n_iter_ + 1)
loss_ax.plot(epochs, fitted.history_["loss"])
loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")
r2_ax.plot(epochs, fitted.history_["val_r2"])
best = int(np.argmax(fitted.validation_scores_))
r2_ax.plot(epochs[best], fitted.validation_scores_[best], "*", markersize=12)
r2_ax.set(xlabel="epoch", ylabel="validation R^2", title="Validation R^2")
for ax in (loss_ax, r2_ax):
    ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# Predicted against true
# ----------------------
# On the test patients: left, the twins (their predictions coincide); right,
# the custom network. Points on the diagonal are exact predictions.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
panels = [
    [
        ("KerasDigitRegressor", keras_reg, dict(marker="o", alpha=0.6)),
        ("MLPRegressor", mlp_reg, dict(marker="+", color="k", s=40)),
    ],
    [("TwoLayers network", custom_reg, dict(marker="o", color="C2", alpha=0.6))],
]
for ax, models in zip(axes, panels, strict=True):
    for name, model, style in models:
        score = model.score(X_test, y_test)
        ax.scatter(
            y_test, model.predict(X_test), label=f"{name} (R^2 {score:.3f})", **style
        )
    ax.plot([y.min(), y.max()], [y.min(), y.max()], color="grey", linestyle="--")
    ax.set(xlabel="true progression", ylabel="predicted progression")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
fig.tight_layout()

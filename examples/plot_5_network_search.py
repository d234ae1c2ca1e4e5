"""
Grid search over the architecture and the optimizer
===================================================

A :class:`~sk_keras_digits.NetworkBuilder`'s parameters are parameters of the
estimator, named ``network__<name>``, just as a Gaussian process' kernel
parameters are ``kernel__<name>``. So one
:class:`~sklearn.model_selection.GridSearchCV` searches the architecture of a
small convolutional network together with the optimizer that trains it: a
solver name, or a Keras optimizer object.
"""

# %%
# The builder
# -----------
# ``__init__`` stores the architecture's hyper-parameters; ``build`` makes the
# Keras model from them. Every parameter of ``__init__`` can be searched.
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sk_keras_digits import KerasDigitClassifier, NetworkBuilder


class SmallConv(NetworkBuilder):
    """A convolution, max pooling, a dense layer, then the output layer."""

    def __init__(self, filters=8, kernel_size=3, dense_units=32):
        self.filters = filters
        self.kernel_size = kernel_size
        self.dense_units = dense_units

    def build(self, n_features_in, n_outputs, output_activation):
        side = int(n_features_in**0.5)
        return keras.Sequential(
            [
                keras.Input((n_features_in,)),
                keras.layers.Reshape((side, side, 1)),
                keras.layers.Conv2D(
                    self.filters, self.kernel_size, padding="same", activation="relu"
                ),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(self.dense_units, activation="relu"),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )


X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
X_train, y_train, X_test, y_test = X[:600], y[:600], X[1000:], y[1000:]

clf = KerasDigitClassifier(
    network=SmallConv(),
    solver="adam",
    learning_rate_init=0.01,
    batch_size=50,
    max_iter=10,
    random_state=0,
)
print(clf)
# A budget of 10 epochs, not convergence.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# The search
# ----------
# Two widths of the convolution, each trained by three optimizers: Adam by
# name (its learning rate is ``learning_rate_init``), and two Keras optimizer
# objects that carry their own settings.
grid = {
    "network__filters": [4, 16],
    "solver": [
        "adam",
        keras.optimizers.RMSprop(learning_rate=3e-3),
        keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=1e-2),
    ],
}
search = GridSearchCV(clf, grid, cv=3, error_score="raise").fit(X_train, y_train)


# %%
# The results
# -----------
# Mean accuracy over the three folds, one cell per candidate:
def solver_name(solver):
    if isinstance(solver, str):
        return solver
    rate = solver.get_config()["learning_rate"]
    return f"{type(solver).__name__}({rate:g})"


filters = grid["network__filters"]
solvers = [solver_name(s) for s in grid["solver"]]
scores = np.full((len(filters), len(solvers)), np.nan)
for params, score in zip(
    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
):
    row = filters.index(params["network__filters"])
    scores[row, solvers.index(solver_name(params["solver"]))] = score

fig, ax = plt.subplots(figsize=(6, 3.5))
image = ax.imshow(scores, cmap="viridis", vmin=np.nanmin(scores), vmax=1)
for (i, j), score in np.ndenumerate(scores):
    ax.text(j, i, f"{score:.3f}", ha="center", va="center", color="white")
ax.set_xticks(range(len(solvers)), solvers)
ax.set_yticks(range(len(filters)), filters)
ax.set_xlabel("solver")
ax.set_ylabel("network__filters")
ax.set_title("Mean accuracy, 3-fold CV")
fig.colorbar(image, ax=ax)
fig.tight_layout()

# %%
# The search refits the best candidate on all its training digits; its
# builder is a copy with the best parameters set:
print(search.best_estimator_.network)
print(
    f"best: {search.best_params_['network__filters']} filters, "
    f"{solver_name(search.best_params_['solver'])}, "
    f"CV accuracy {search.best_score_:.3f}, "
    f"test accuracy {search.score(X_test, y_test):.3f}"
)

"""
The tutorial, with the estimator
================================

The tutorial trains a 64-15-10 network (64 pixels in, 15 logistic hidden
units, 10 softmax outputs) with stochastic gradient descent on the first 1000
of scikit-learn's 8x8 digits and tests it on the other 797. Here the network
is a :class:`~sk_keras_digits.KerasDigitClassifier`: the tutorial's settings
become estimator parameters, with the names
:class:`~sklearn.neural_network.MLPClassifier` gives them, and the same
settings train scikit-learn's own network next to it.
"""

# %%
# The data and the tutorial's split
# ---------------------------------
# 1797 images of 8x8 pixels with values 0-16, flattened to 64 features. The
# tutorial trains on the first 1000 and tests on the rest, unscaled.
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sk_keras_digits import (
    KerasDigitClassifier,
    plot_learning_curves,
    plot_predictions,
)

X, y = load_digits(return_X_y=True)
X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
print(X_train.shape, X_test.shape)

# %%
# The tutorial's network as an estimator
# --------------------------------------
# Learning rate 0.1 with momentum 0.9, mini-batches of 100, a small L2
# penalty and 50 epochs. The tutorial stops after 50 epochs whether or not the
# loss has settled, so the ConvergenceWarning that both estimators give for it
# is silenced here.
tutorial = dict(
    hidden_layer_sizes=(15,),
    activation="logistic",
    solver="sgd",
    learning_rate_init=0.1,
    momentum=0.9,
    alpha=1e-4,
    batch_size=100,
    max_iter=50,
    random_state=0,
)
warnings.filterwarnings("ignore", category=ConvergenceWarning)

keras_clf = KerasDigitClassifier(**tutorial).fit(X_train, y_train)
mlp_clf = MLPClassifier(**tutorial).fit(X_train, y_train)
print(f"KerasDigitClassifier test accuracy: {keras_clf.score(X_test, y_test):.3f}")
print(f"MLPClassifier test accuracy:        {mlp_clf.score(X_test, y_test):.3f}")

# %%
# Both start from the same weights (drawn as MLPClassifier draws them from
# ``random_state``) and minimise the same loss with the same update rule; only
# the order of the mini-batches differs, so the accuracies are close rather
# than equal. The fitted network is a Keras model:
keras_clf.model_.summary()

# %%
# Its weights are also exposed as MLPClassifier exposes them:
print([coef.shape for coef in keras_clf.coefs_])
print([bias.shape for bias in keras_clf.intercepts_])

# %%
# Predictions, with their probabilities
# -------------------------------------
# The tutorial's ``plot_prediction`` showed one digit and its class
# probabilities; :func:`~sk_keras_digits.plot_predictions` shows many. Wrong
# predictions are red, with the probability the network gave the true label;
# the true label's bar is green.
fig = plot_predictions(keras_clf, X_test, y_test, max_images=24)

# %%
# The mistakes alone:
wrong = keras_clf.predict(X_test) != y_test
print(f"{wrong.sum()} of {len(y_test)} test digits misclassified")
fig = plot_predictions(keras_clf, X_test[wrong], y_test[wrong], max_images=16)

# %%
# Training progress
# -----------------
# ``loss_curve_`` holds the loss after every epoch, for both estimators.
fig = plot_learning_curves(
    {"KerasDigitClassifier": keras_clf, "MLPClassifier": mlp_clf}
)

# %%
# ``verbose=True`` prints the same lines as MLPClassifier while training:
KerasDigitClassifier(**{**tutorial, "max_iter": 3, "verbose": True}).fit(
    X_train, y_train
)

"""
Grid search over the hidden layer size
======================================

A :class:`~sk_keras_digits.KerasDigitClassifier` is a scikit-learn estimator,
so it goes into a :class:`~sklearn.pipeline.Pipeline` and a
:class:`~sklearn.model_selection.GridSearchCV` unchanged. Here both it and
:class:`~sklearn.neural_network.MLPClassifier` search the size of the
tutorial network's hidden layer with 5-fold cross-validation on the training
digits, after scaling the pixels to [0, 1].
"""

# %%
import warnings

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_keras_digits import KerasDigitClassifier, plot_grid_search

X, y = load_digits(return_X_y=True)
X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]

tutorial = dict(
    activation="logistic",
    solver="sgd",
    learning_rate_init=0.1,
    momentum=0.9,
    alpha=1e-4,
    batch_size=100,
    max_iter=50,
    random_state=0,
)
# 50 epochs is the tutorial's budget, not convergence.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# The same search for both estimators
# -----------------------------------
# Pipeline parameters are addressed as ``<step>__<parameter>``. Every
# candidate of the Keras search reuses one compiled training loop: the loop is
# traced for the network's depth, not its widths.
grid = {"clf__hidden_layer_sizes": [(5,), (10,), (15,), (30,), (60,)]}
searches = {}
for name, clf in [
    ("KerasDigitClassifier", KerasDigitClassifier(**tutorial)),
    ("MLPClassifier", MLPClassifier(**tutorial)),
]:
    pipe = Pipeline([("scale", MinMaxScaler()), ("clf", clf)])
    searches[name] = GridSearchCV(pipe, grid, cv=5).fit(X_train, y_train)

# %%
# The results
# -----------
# ``cv_results_`` of both searches side by side: mean and standard deviation
# of the accuracy over the five folds, and the mean fit time.
table = pd.DataFrame(
    {
        (name, column): search.cv_results_[column]
        for name, search in searches.items()
        for column in ["mean_test_score", "std_test_score", "mean_fit_time"]
    },
    index=[size[0] for size in grid["clf__hidden_layer_sizes"]],
).rename_axis("hidden units")
table.round(3)

# %%
ax = plot_grid_search(searches)

# %%
# Each search refits its best pipeline on all the training digits:
for name, search in searches.items():
    print(
        f"{name}: best {search.best_params_['clf__hidden_layer_sizes']}, "
        f"CV accuracy {search.best_score_:.3f}, "
        f"test accuracy {search.score(X_test, y_test):.3f}"
    )

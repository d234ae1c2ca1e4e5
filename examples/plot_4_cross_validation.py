"""
Cross-validation: KerasDigitClassifier against MLPClassifier
============================================================

Are the two implementations of the tutorial's network equally accurate? Both
are scored on the same ten stratified folds of all 1797 digits, and the
accuracies are compared fold by fold. Each fold trains the same network from
the same initial weights; what differs is the order of the mini-batches and
the floating-point arithmetic (the Keras backend's kernels against NumPy's).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_keras_digits import KerasDigitClassifier

X, y = load_digits(return_X_y=True)
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

cv = StratifiedKFold(n_splits=10, shuffle=True, random_state=0)
results = {
    name: cross_validate(make_pipeline(MinMaxScaler(), clf), X, y, cv=cv)
    for name, clf in [
        ("KerasDigitClassifier", KerasDigitClassifier(**tutorial)),
        ("MLPClassifier", MLPClassifier(**tutorial)),
    ]
}
for name, result in results.items():
    scores, times = result["test_score"], result["fit_time"]
    print(
        f"{name:>20}: accuracy {scores.mean():.3f} ± {scores.std(ddof=1):.3f}, "
        f"fit {np.median(times):.3f} s (median)"
    )

# %%
# Fold by fold
# ------------
# Left, each fold's two accuracies joined by a line; right, the difference
# per fold. A difference centred on zero, within the spread across folds,
# means the two estimators are interchangeable on this task.
keras_scores = results["KerasDigitClassifier"]["test_score"]
mlp_scores = results["MLPClassifier"]["test_score"]
difference = keras_scores - mlp_scores

fig, (ax_pairs, ax_diff) = plt.subplots(
    1, 2, figsize=(10, 4), layout="constrained", width_ratios=[2, 1]
)
for a, b in zip(keras_scores, mlp_scores, strict=True):
    ax_pairs.plot([0, 1], [a, b], color="0.6", marker="o", zorder=1)
ax_pairs.boxplot([keras_scores, mlp_scores], positions=[0, 1], widths=0.3)
ax_pairs.set_xticks([0, 1], ["KerasDigitClassifier", "MLPClassifier"])
ax_pairs.set_ylabel("test accuracy per fold")
ax_pairs.set_title("10-fold cross-validation")
ax_diff.axhline(0, color="black", linewidth=1)
# Spread sideways so that folds with the same difference stay visible.
ax_diff.plot(np.linspace(-0.15, 0.15, len(difference)), difference, "o", alpha=0.7)
ax_diff.errorbar(
    0.25, difference.mean(), yerr=difference.std(ddof=1), fmt="s", capsize=4
)
ax_diff.set_xlim(-0.5, 0.75)
ax_diff.set_xticks([])
ax_diff.set_ylabel("Keras accuracy - MLP accuracy")
ax_diff.set_title(
    f"difference: {difference.mean():+.4f} ± {difference.std(ddof=1):.4f}"
)
plt.show()

# %%
# Fit times
# ---------
# After the first fit of the process (which traces the compiled training
# loop), a KerasDigitClassifier fit costs about as much as an MLPClassifier
# fit on this small problem.
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.boxplot([results[name]["fit_time"] for name in results])
ax.set_xticks([1, 2], list(results))
ax.set_ylabel("fit time per fold (s)")
plt.show()

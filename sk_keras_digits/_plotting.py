"""Plot helpers for notebooks: predictions, learning curves, grid searches.

Each helper works with :class:`~sk_keras_digits.KerasDigitClassifier`,
:class:`~sklearn.neural_network.MLPClassifier` and a
:class:`~sklearn.pipeline.Pipeline` ending in either, draws into the Figure or
Axes it is given (or a new pyplot one) and returns it. matplotlib is imported
when a helper is called, never at ``import sk_keras_digits``; without a display
(no ``DISPLAY`` or ``WAYLAND_DISPLAY``) matplotlib selects its non-interactive
Agg backend by itself, so the helpers also run in scripts, CI and headless
servers.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import is_classifier, is_regressor
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

#: Colours of correct and wrong predictions (matplotlib's tab:green and tab:red).
CORRECT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _new_figure(fig, figsize):
    """``fig`` cleared of nothing, or a new pyplot figure of ``figsize``."""
    if fig is None:
        return _pyplot().figure(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(
            f"fig must be a matplotlib Figure (or None), got {type(fig).__name__}. "
            "Pass plt.figure() or matplotlib.figure.Figure()."
        )
    if fig.axes:
        raise ValueError(
            f"fig must be an empty Figure; got one with {len(fig.axes)} Axes. "
            "Pass a new Figure (plt.figure() or matplotlib.figure.Figure())."
        )
    return fig


def _best(scores):
    """Index of the highest score, NaN ignored (a diverged epoch, a failed
    candidate); None when no score is a number."""
    scores = np.asarray(scores, dtype=float)
    if np.isnan(scores).all():
        return None
    return int(np.nanargmax(scores))


def _check_axes(ax):
    if ax is None:
        return
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes (or None), got {type(ax).__name__}."
        )


def _new_axes(ax, figsize):
    _check_axes(ax)
    if ax is None:
        _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _final_estimator(estimator):
    """The last step of a Pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _named(objects, what):
    """``{name: object}`` from one object, a list of them or a dict."""
    if isinstance(objects, dict):
        if not objects:
            raise ValueError(f"{what} must not be empty; got an empty dict.")
        return {str(name): obj for name, obj in objects.items()}
    if isinstance(objects, (list, tuple)):
        if not objects:
            raise ValueError(f"{what} must not be empty; got an empty {type(objects)}.")
    else:
        objects = [objects]
    named = {}
    for obj in objects:
        name = type(_final_estimator(getattr(obj, "estimator", obj))).__name__
        if name in named:
            name = f"{name} #{sum(n.startswith(name) for n in named) + 1}"
        named[name] = obj
    return named


# ------------------------------------------------------------------ predictions
def plot_predictions(
    estimator,
    X,
    y=None,
    *,
    max_images=32,
    n_cols=8,
    image_shape=None,
    show_proba=True,
    fig=None,
):
    """Plot a grid of digits with their predicted (and true) labels.

    The tutorial's ``plot_prediction`` for many digits at once: each panel
    shows one image of ``X`` titled with the predicted label and its
    probability, and, when ``y`` is given, the true label (in green when the
    prediction is right, red when it is wrong, with the probability the model
    gave the true label). With ``show_proba=True`` a bar chart of all class
    probabilities sits under each image, the predicted class' bar coloured.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
        A :class:`~sk_keras_digits.KerasDigitClassifier`,
        :class:`~sklearn.neural_network.MLPClassifier` or a Pipeline ending in
        one. It is applied to ``X`` as given.
    X : array-like of shape (n_samples, n_features)
        The images, flattened row by row (the digits' 64 pixels).
    y : array-like of shape (n_samples,), default=None
        True labels; when given, they are shown and wrong predictions marked.
    max_images : int, default=32
        Most images drawn: the first ``max_images`` rows of ``X``.
    n_cols : int, default=8
        Panels per row.
    image_shape : tuple of (int, int), default=None
        Shape of one image; None takes the square root of ``n_features``.
    show_proba : bool, default=True
        Whether to draw the class probabilities under each image.
    fig : matplotlib.figure.Figure, default=None
        An empty figure to draw into; None creates a pyplot figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: one image Axes per digit (labelled ``"digit <i>"``), each
        followed by its probability Axes (``"proba <i>"``) when
        ``show_proba``.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : Errors summed over classes.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neural_network import MLPClassifier
    >>> from sk_keras_digits import plot_predictions
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> clf = MLPClassifier((15,), learning_rate_init=0.01, random_state=0)
    >>> clf = clf.fit(X[:500], y[:500])
    >>> fig = plot_predictions(clf, X[500:504], y[500:504], n_cols=4, fig=Figure())
    >>> [ax.get_label() for ax in fig.axes[:2]]
    ['digit 0', 'proba 0']
    """
    check_is_fitted(estimator)
    _check_positive_int(max_images, "max_images")
    _check_positive_int(n_cols, "n_cols")
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    if len(X.shape) != 2:
        raise ValueError(
            f"X must be 2-dimensional (n_samples, n_features); got shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError("X must hold at least one image; got 0 rows.")
    image_shape = _image_shape(image_shape, X.shape[1])
    n = min(max_images, X.shape[0])
    # The estimator gets X's rows as given (a DataFrame keeps its columns'
    # names, a sparse matrix its format); the images are a dense copy.
    X = _safe_indexing(X, np.arange(n))
    pixels = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                f"y must hold one label per image (1-dimensional); got shape "
                f"{y.shape}. Multilabel targets cannot be shown as one label."
            )
        if y.shape[0] < n:
            raise ValueError(
                f"y has {y.shape[0]} labels for the {n} images drawn; expected one "
                "label per row of X."
            )
        y = y[:n]
    proba = np.asarray(estimator.predict_proba(X))
    classes = np.asarray(estimator.classes_)
    predicted = classes[proba.argmax(axis=1)]
    index = {label: i for i, label in enumerate(classes.tolist())}

    n_cols = min(n_cols, n)
    n_rows = math.ceil(n / n_cols)
    fig = _new_figure(fig, predictions_figsize(n, n_cols, show_proba))
    if show_proba:
        grid = fig.add_gridspec(2 * n_rows, n_cols, height_ratios=[1, 0.45] * n_rows)
    else:
        grid = fig.add_gridspec(n_rows, n_cols)
    n_wrong = 0
    for i in range(n):
        row, col = divmod(i, n_cols)
        ax = fig.add_subplot(grid[2 * row if show_proba else row, col])
        ax.set_label(f"digit {i}")
        ax.imshow(
            pixels[i].reshape(image_shape), cmap="gray_r", interpolation="nearest"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        p_pred = proba[i].max()
        title = f"pred {predicted[i]} ({p_pred:.2f})"
        color = "black"
        if y is not None:
            wrong = predicted[i] != y[i]
            n_wrong += bool(wrong)
            color = WRONG_COLOR if wrong else CORRECT_COLOR
            true_index = index.get(y[i].item() if hasattr(y[i], "item") else y[i])
            p_true = "" if true_index is None else f" ({proba[i, true_index]:.2f})"
            title = f"true {y[i]}{p_true if wrong else ''}\n{title}"
            for spine in ax.spines.values():
                spine.set_color(color)
                spine.set_linewidth(2 if wrong else 1)
        ax.set_title(title, fontsize=8, color=color)
        if show_proba:
            bar_ax = fig.add_subplot(grid[2 * row + 1, col])
            bar_ax.set_label(f"proba {i}")
            colors = ["0.7"] * len(classes)
            colors[int(proba[i].argmax())] = color if y is not None else "tab:blue"
            if y is not None and wrong and true_index is not None:
                colors[true_index] = CORRECT_COLOR
            bar_ax.bar(np.arange(len(classes)), proba[i], color=colors, width=0.8)
            bar_ax.set_ylim(0, 1)
            bar_ax.set_xticks(np.arange(len(classes)))
            bar_ax.set_xticklabels([str(c) for c in classes], fontsize=5)
            bar_ax.tick_params(axis="x", length=0, pad=1)
            bar_ax.set_yticks([])
    if y is not None:
        fig.suptitle(f"{n - n_wrong} of {n} predictions correct")
    return fig


def predictions_figsize(n_images, n_cols=8, show_proba=True):
    """The size (width, height) in inches :func:`plot_predictions` gives a new
    figure of ``n_images`` panels in rows of ``n_cols``."""
    n_cols = min(n_cols, n_images)
    n_rows = math.ceil(n_images / n_cols)
    return 1.25 * n_cols, (2.1 if show_proba else 1.55) * n_rows + 0.4


def _check_positive_int(value, name):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def _image_shape(image_shape, n_features):
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"X has {n_features} features, not a square number: pass "
                "image_shape=(height, width)."
            )
        return side, side
    image_shape = tuple(image_shape)
    if len(image_shape) != 2 or math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} does not match X's {n_features} "
            "features; expected (height, width) with height * width == "
            f"{n_features}."
        )
    return image_shape


# -------------------------------------------------------------- learning curves
def plot_learning_curves(estimators, *, fig=None):
    """Plot training loss, and the validation score, against the epoch.

    One line per estimator in each panel. The left panel shows ``loss_curve_``
    (with the final ``loss_`` of each model in the legend); a right panel,
    ``validation_scores_`` with the best epoch marked, is added when at least
    one estimator was fitted with ``early_stopping=True``: accuracy for
    classifiers, R^2 for regressors.

    Parameters
    ----------
    estimators : estimator, list of estimators or dict of str to estimator
        Fitted :class:`~sk_keras_digits.KerasDigitClassifier`,
        :class:`~sk_keras_digits.KerasDigitRegressor`,
        :class:`~sklearn.neural_network.MLPClassifier` or
        :class:`~sklearn.neural_network.MLPRegressor` objects (or Pipelines
        ending in one) that have a ``loss_curve_``. A dict's keys name the
        lines; otherwise the class names do.
    fig : matplotlib.figure.Figure, default=None
        An empty figure to draw into; None creates a pyplot figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure, with Axes ``"loss"`` and, with early stopping,
        ``"validation"``.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against the number
        of training samples, rather than epochs.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.neural_network import MLPClassifier
    >>> from sk_keras_digits import plot_learning_curves
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> clf = MLPClassifier((15,), learning_rate_init=0.01, random_state=0)
    >>> clf = clf.fit(X[:500], y[:500])
    >>> fig = plot_learning_curves({"MLP": clf}, fig=Figure())
    >>> [ax.get_label() for ax in fig.axes]
    ['loss']
    """
    named = _named(estimators, "estimators")
    curves = {}
    scores_named = set()
    for name, estimator in named.items():
        final = _final_estimator(estimator)
        check_is_fitted(final)
        loss = getattr(final, "loss_curve_", None)
        if loss is None:
            raise ValueError(
                f"estimators[{name!r}] ({type(final).__name__}) has no loss_curve_; "
                "expected a network fitted with solver='sgd' or 'adam' (and, for "
                "KerasDigitClassifier, 'lbfgs')."
            )
        scores = getattr(final, "validation_scores_", None)
        if scores is not None:
            scores_named.add("R^2" if is_regressor(final) else "accuracy")
        curves[name] = (list(loss), scores)
    with_validation = any(scores is not None for _, scores in curves.values())
    fig = _new_figure(fig, (10 if with_validation else 6, 4))
    axes = fig.subplots(1, 2 if with_validation else 1, squeeze=False)[0]
    loss_ax = axes[0]
    loss_ax.set_label("loss")
    for name, (loss, _) in curves.items():
        epochs = np.arange(1, len(loss) + 1)
        loss_ax.plot(epochs, loss, label=f"{name} (final {loss[-1]:.4f})")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("Training loss")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    if with_validation:
        val_ax = axes[1]
        val_ax.set_label("validation")
        for name, (_, scores) in curves.items():
            if scores is None:
                continue
            epochs = np.arange(1, len(scores) + 1)
            (line,) = val_ax.plot(epochs, scores, label=name)
            best = _best(scores)
            if best is None:
                continue
            val_ax.plot(
                epochs[best],
                scores[best],
                marker="*",
                markersize=12,
                color=line.get_color(),
                linestyle="none",
                label=f"{name} best: {scores[best]:.3f} (epoch {best + 1})",
            )
        val_ax.set_xlabel("epoch")
        score = " or ".join(sorted(scores_named))
        val_ax.set_ylabel(f"validation {score}")
        val_ax.set_title(f"Validation {score} (early stopping)")
        val_ax.legend()
        val_ax.grid(alpha=0.3)
    return fig


# ------------------------------------------------------------------ grid search
def plot_grid_search(searches, *, param=None, ax=None):
    """Plot cross-validated scores against one searched parameter.

    Each search gives a line of mean test scores with error bars of one
    standard deviation across folds, its best candidate starred. Candidates
    that also differ in other parameters give one line per combination.
    Values such as ``hidden_layer_sizes=(15,)`` are placed at 15; other
    non-numeric values are spaced evenly. With several lines, each is shifted
    sideways by about 1% of the x range so that their error bars stay visible.

    Parameters
    ----------
    searches : search, list of searches or dict of str to search
        Fitted :class:`~sklearn.model_selection.GridSearchCV` or
        :class:`~sklearn.model_selection.RandomizedSearchCV` objects (anything
        with ``cv_results_``). A dict's keys name the lines; otherwise the
        class names of the searched estimators do.
    param : str, default=None
        The parameter on the x-axis, as in ``cv_results_`` without the
        ``param_`` prefix (e.g. ``"clf__hidden_layer_sizes"``). None takes the
        only parameter that varies.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; None creates a pyplot figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn into.

    See Also
    --------
    sklearn.model_selection.ValidationCurveDisplay : Scores against one
        parameter, computed rather than read from a search.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neural_network import MLPClassifier
    >>> from sk_keras_digits import plot_grid_search
    >>> X, y = load_digits(return_X_y=True)
    >>> search = GridSearchCV(
    ...     MLPClassifier(learning_rate_init=0.05, random_state=0),
    ...     {"hidden_layer_sizes": [(5,), (15,)]}, cv=3,
    ... ).fit(X[:300] / 16, y[:300])
    >>> ax = plot_grid_search(search, ax=Figure().subplots())
    >>> ax.get_xlabel()
    'hidden_layer_sizes'
    """
    _check_axes(ax)
    named = _named(searches, "searches")
    results = {}
    for name, search in named.items():
        cv_results = getattr(search, "cv_results_", None)
        if cv_results is None:
            raise ValueError(
                f"searches[{name!r}] ({type(search).__name__}) has no cv_results_; "
                "expected a fitted GridSearchCV or RandomizedSearchCV."
            )
        results[name] = (search, cv_results)
    param = _searched_param(results, param)
    ax = _new_axes(ax, (6, 4))
    numeric = all(
        _as_number(v) is not None
        for _, cv_results in results.values()
        for v in cv_results[f"param_{param}"]
    )
    categories = {}
    if not numeric:
        for _, cv_results in results.values():
            for v in cv_results[f"param_{param}"]:
                categories.setdefault(repr(v), len(categories))
    lines = []
    score_name = None
    for name, (search, cv_results) in results.items():
        score_key, score_name = _score_key(search, cv_results)
        values = list(cv_results[f"param_{param}"])
        means = np.asarray(cv_results[score_key], dtype=float)
        stds = np.asarray(cv_results[score_key.replace("mean_", "std_")], dtype=float)
        groups = {}
        for i, candidate in enumerate(cv_results["params"]):
            others = tuple(
                (k, repr(v)) for k, v in sorted(candidate.items()) if k != param
            )
            groups.setdefault(others, []).append(i)
        varying = _varying_keys(groups)
        for others, indices in groups.items():
            x = np.array(
                [
                    _as_number(values[i]) if numeric else categories[repr(values[i])]
                    for i in indices
                ],
                dtype=float,
            )
            order = np.argsort(x, kind="stable")
            indices = np.asarray(indices)[order]
            extra = [f"{_short(k)}={v}" for k, v in others if k in varying]
            label = f"{name}, {', '.join(extra)}" if extra else name
            lines.append((label, x[order], means[indices], stds[indices]))
    # Lines side by side, shifted by a little of the x range so that error bars
    # at the same value do not hide each other.
    all_x = np.concatenate([x for _, x, _, _ in lines])
    span = np.ptp(all_x) or 1.0
    step = (0.012 if numeric else 0.06) * span
    for k, (label, x, mean, std) in enumerate(lines):
        x = x + (k - (len(lines) - 1) / 2) * step
        container = ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label)
        best = _best(mean)
        if best is None:
            continue
        ax.plot(
            x[best],
            mean[best],
            marker="*",
            markersize=14,
            color=container.lines[0].get_color(),
            linestyle="none",
        )
    if not numeric:
        ax.set_xticks(list(categories.values()))
        ax.set_xticklabels(list(categories))
    ax.set_xlabel(_short(param))
    n_splits = {getattr(s, "n_splits_", None) for s, _ in results.values()}
    folds = f", {n_splits.pop()}-fold CV" if len(n_splits) == 1 else ""
    ax.set_ylabel(f"mean {score_name} ± sd{folds}")
    ax.set_title(f"Grid search over {_short(param)}")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def _searched_param(results, param):
    names = set()
    varying = set()
    for _, cv_results in results.values():
        candidates = cv_results["params"]
        for key in {k for c in candidates for k in c}:
            names.add(key)
            if len({repr(c.get(key)) for c in candidates}) > 1:
                varying.add(key)
    if param is not None:
        if param not in names:
            raise ValueError(
                f"param={param!r} is not a searched parameter; expected one of "
                f"{sorted(names)}."
            )
        return param
    if len(varying) == 1:
        return varying.pop()
    if not varying and len(names) == 1:
        return names.pop()
    raise ValueError(
        f"The searches vary {sorted(varying) or sorted(names)}: pass param= to "
        "choose the one on the x-axis."
    )


def _score_key(search, cv_results):
    if "mean_test_score" in cv_results:
        scoring = getattr(search, "scoring", None)
        if isinstance(scoring, str):
            return "mean_test_score", scoring
        if scoring is None and is_classifier(getattr(search, "estimator", None)):
            return "mean_test_score", "accuracy"
        return "mean_test_score", "score"
    refit = getattr(search, "refit", None)
    if isinstance(refit, str) and f"mean_test_{refit}" in cv_results:
        return f"mean_test_{refit}", refit
    metrics = sorted(k[len("mean_test_") :] for k in cv_results if "mean_test_" in k)
    raise ValueError(
        f"The search scored several metrics {metrics} and refit={refit!r} names "
        "none of them; refit with refit='<metric>' to choose the one to plot."
    )


def _varying_keys(groups):
    keys = {}
    for others in groups:
        for k, v in others:
            keys.setdefault(k, set()).add(v)
    return {k for k, v in keys.items() if len(v) > 1}


def _short(param):
    """``"clf__hidden_layer_sizes"`` -> ``"hidden_layer_sizes"``."""
    return param.rsplit("__", 1)[-1]


def _as_number(value):
    """A value's position on a numeric axis, or None."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (Real, np.number)) and not isinstance(value, bool):
        return float(value)
    return None

"""Tests for the plot helpers: what each one draws, rendered to PNG."""

import os
import subprocess
import sys
import textwrap
import warnings

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sk_keras_digits import (
    KerasDigitClassifier,
    plot_grid_search,
    plot_learning_curves,
    plot_predictions,
)
from sk_keras_digits._plotting import CORRECT_COLOR, WRONG_COLOR

QUICK = dict(
    hidden_layer_sizes=(10,),
    activation="logistic",
    solver="sgd",
    learning_rate_init=0.1,
    batch_size=100,
    max_iter=15,
    random_state=0,
)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def fitted(small_digits):
    """A KerasDigitClassifier and an MLPClassifier fitted on 300 digits."""
    X, y = small_digits
    return {
        "keras": _fit(KerasDigitClassifier(**QUICK), X, y),
        "mlp": _fit(MLPClassifier(**QUICK), X, y),
    }


def _render(fig, tmp_path, name="figure.png", dpi=50):
    """Save ``fig`` as PNG and return the image read back."""
    path = tmp_path / name
    fig.savefig(path, dpi=dpi)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    width, height = fig.get_size_inches() * dpi
    assert image.shape[:2] == (round(height), round(width))
    # Something was drawn: the image is not a single colour.
    assert image[..., :3].std() > 0.05
    return image


# ------------------------------------------------------------------ predictions
@pytest.mark.parametrize("model", ["keras", "mlp"])
def test_plot_predictions_draws_images_titles_and_probabilities(
    fitted, small_digits, model, tmp_path
):
    clf = fitted[model]
    X, y = small_digits
    X_show, y_show = X[:12], y[:12].copy()
    y_show[0] = (clf.predict(X_show[:1])[0] + 1) % 10  # one certain mistake
    fig = plot_predictions(clf, X_show, y_show, n_cols=4, fig=Figure())
    _render(fig, tmp_path)

    proba = clf.predict_proba(X_show)
    predicted = clf.predict(X_show)
    axes = fig.axes
    assert len(axes) == 24
    assert [ax.get_label() for ax in axes[:4]] == [
        "digit 0",
        "proba 0",
        "digit 1",
        "proba 1",
    ]
    n_correct = int((predicted == y_show).sum())
    assert fig.get_suptitle() == f"{n_correct} of 12 predictions correct"
    for i in range(12):
        image_ax, bar_ax = axes[2 * i], axes[2 * i + 1]
        (image,) = image_ax.get_images()
        np.testing.assert_array_equal(image.get_array(), X_show[i].reshape(8, 8))
        title = image_ax.get_title()
        assert f"pred {predicted[i]} ({proba[i].max():.2f})" in title
        assert title.startswith(f"true {y_show[i]}")
        wrong = predicted[i] != y_show[i]
        expected_color = WRONG_COLOR if wrong else CORRECT_COLOR
        assert to_rgba(image_ax.title.get_color()) == to_rgba(expected_color)
        heights = [bar.get_height() for bar in bar_ax.patches]
        np.testing.assert_allclose(heights, proba[i])
        tick_labels = [t.get_text() for t in bar_ax.get_xticklabels()]
        assert tick_labels == [str(c) for c in clf.classes_]
        if wrong:
            # The probability of the true class is in the title, its bar green.
            assert f"({proba[i, y_show[i]]:.2f})" in title.splitlines()[0]
            true_bar = bar_ax.patches[y_show[i]]
            assert to_rgba(true_bar.get_facecolor()) == to_rgba(CORRECT_COLOR)
    assert axes[0].get_title().startswith(f"true {y_show[0]} (")


def test_plot_predictions_without_labels_or_bars(fitted, small_digits, tmp_path):
    clf = fitted["mlp"]
    X, _ = small_digits
    fig = plot_predictions(clf, X[:5], show_proba=False, n_cols=3, fig=Figure())
    _render(fig, tmp_path)
    assert [ax.get_label() for ax in fig.axes] == [f"digit {i}" for i in range(5)]
    assert fig.get_suptitle() == ""
    predicted = clf.predict(X[:5])
    for ax, label in zip(fig.axes, predicted, strict=True):
        assert ax.get_title().startswith(f"pred {label} (")
        assert "true" not in ax.get_title()
    # 5 panels in rows of 3: two rows.
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert rows == {0, 1}


def test_plot_predictions_pipeline_string_labels_and_max_images(small_digits, tmp_path):
    X, y = small_digits
    names = np.array(["zero", "one", "two", "three", "four"] * 2)
    labels = names[y]
    pipe = Pipeline([("scale", MinMaxScaler()), ("clf", MLPClassifier(**QUICK))])
    _fit(pipe, X * 16, labels)
    fig = plot_predictions(pipe, X * 16, labels, max_images=6, fig=Figure())
    _render(fig, tmp_path)
    assert len(fig.axes) == 12
    predicted = pipe.predict(X[:6] * 16)
    for i in range(6):
        title = fig.axes[2 * i].get_title()
        assert title.startswith(f"true {labels[i]}")
        assert f"pred {predicted[i]}" in title
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == sorted(set(labels))


def test_plot_predictions_image_shape(fitted, small_digits):
    X, y = small_digits
    clf = _fit(MLPClassifier(**QUICK), X[:, :48], y)
    fig = plot_predictions(clf, X[:2, :48], image_shape=(6, 8), fig=Figure())
    (image,) = fig.axes[0].get_images()
    assert image.get_array().shape == (6, 8)
    with pytest.raises(ValueError, match=r"48 features, not a square number"):
        plot_predictions(clf, X[:2, :48], fig=Figure())
    with pytest.raises(ValueError, match=r"image_shape=\(7, 7\) does not match"):
        plot_predictions(clf, X[:2, :48], image_shape=(7, 7), fig=Figure())


def test_plot_predictions_errors(fitted, small_digits):
    clf = fitted["mlp"]
    X, y = small_digits
    with pytest.raises(ValueError, match="max_images must be a positive integer"):
        plot_predictions(clf, X[:3], max_images=0, fig=Figure())
    with pytest.raises(ValueError, match="y has 2 labels for the 3 images"):
        plot_predictions(clf, X[:3], y[:2], fig=Figure())
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        plot_predictions(clf, X[0], fig=Figure())
    busy = Figure()
    busy.subplots()
    with pytest.raises(ValueError, match="fig must be an empty Figure; got one"):
        plot_predictions(clf, X[:3], fig=busy)
    with pytest.raises(Exception, match="not fitted"):
        plot_predictions(MLPClassifier(), X[:3], fig=Figure())


def test_plot_predictions_new_pyplot_figure(fitted, small_digits):
    import matplotlib.pyplot as plt

    X, _ = small_digits
    fig = plot_predictions(fitted["mlp"], X[:16])
    try:
        assert fig.number in plt.get_fignums()
        width, height = fig.get_size_inches()
        assert width > height > 0  # 8 columns, 2 rows
    finally:
        plt.close(fig)


# -------------------------------------------------------------- learning curves
def test_plot_learning_curves_loss_of_both_models(fitted, tmp_path):
    fig = plot_learning_curves(
        {"Keras": fitted["keras"], "MLP": fitted["mlp"]}, fig=Figure()
    )
    _render(fig, tmp_path)
    (ax,) = fig.axes
    assert ax.get_label() == "loss"
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "training loss"
    lines = ax.get_lines()
    assert len(lines) == 2
    for line, model in zip(lines, ["keras", "mlp"], strict=True):
        curve = fitted[model].loss_curve_
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(curve) + 1))
        np.testing.assert_allclose(line.get_ydata(), curve)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        f"Keras (final {fitted['keras'].loss_:.4f})",
        f"MLP (final {fitted['mlp'].loss_:.4f})",
    ]


def test_plot_learning_curves_validation_panel(small_digits, tmp_path):
    X, y = small_digits
    params = {**QUICK, "early_stopping": True, "max_iter": 25}
    keras_clf = _fit(KerasDigitClassifier(**params), X, y)
    mlp = _fit(Pipeline([("clf", MLPClassifier(**params))]), X, y)
    fig = plot_learning_curves([keras_clf, mlp], fig=Figure())
    _render(fig, tmp_path)
    assert [ax.get_label() for ax in fig.axes] == ["loss", "validation"]
    val_ax = fig.axes[1]
    assert val_ax.get_ylabel() == "validation accuracy"
    curves = [keras_clf.validation_scores_, mlp[-1].validation_scores_]
    lines = val_ax.get_lines()
    assert len(lines) == 4  # a curve and a best-epoch star per model
    for k, scores in enumerate(curves):
        curve, star = lines[2 * k], lines[2 * k + 1]
        np.testing.assert_allclose(curve.get_ydata(), scores)
        best = int(np.argmax(scores))
        assert star.get_marker() == "*"
        assert star.get_xdata()[0] == best + 1
        assert star.get_ydata()[0] == pytest.approx(scores[best])
    legend = [t.get_text() for t in val_ax.get_legend().get_texts()]
    assert legend[0] == "KerasDigitClassifier"
    assert legend[2] == "MLPClassifier"


def test_plot_learning_curves_names_duplicates(fitted):
    fig = plot_learning_curves([fitted["mlp"], fitted["mlp"]], fig=Figure())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [t.split(" (")[0] for t in legend] == ["MLPClassifier", "MLPClassifier #2"]


def test_plot_learning_curves_errors(small_digits):
    X, y = small_digits
    lbfgs = _fit(MLPClassifier((5,), solver="lbfgs", max_iter=5), X, y)
    with pytest.raises(ValueError, match=r"estimators\['MLPClassifier'\].*no loss_"):
        plot_learning_curves(lbfgs, fig=Figure())
    with pytest.raises(ValueError, match="estimators must not be empty"):
        plot_learning_curves({}, fig=Figure())


# ------------------------------------------------------------------ grid search
@pytest.fixture(scope="module")
def searches(small_digits):
    X, y = small_digits
    grid = {"clf__hidden_layer_sizes": [(5,), (20,), (10,)]}
    result = {}
    for name, clf in [
        ("Keras", KerasDigitClassifier(**QUICK)),
        ("MLP", MLPClassifier(**QUICK)),
    ]:
        pipe = Pipeline([("scale", MinMaxScaler()), ("clf", clf)])
        result[name] = _fit(GridSearchCV(pipe, grid, cv=2), X, y)
    return result


def test_plot_grid_search_scores_against_hidden_size(searches, tmp_path):
    fig = Figure()
    ax = plot_grid_search(searches, ax=fig.subplots())
    _render(fig, tmp_path)
    assert ax.get_xlabel() == "hidden_layer_sizes"
    assert ax.get_ylabel() == "mean accuracy ± sd, 2-fold CV"
    assert ax.get_title() == "Grid search over hidden_layer_sizes"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Keras", "MLP"]
    assert len(ax.containers) == 2
    x_positions = []
    for container, search in zip(ax.containers, searches.values(), strict=True):
        results = search.cv_results_
        order = np.argsort([p[0] for p in results["param_clf__hidden_layer_sizes"]])
        data_line = container.lines[0]
        x = np.asarray(data_line.get_xdata())
        # The lines are shifted apart by 1.2% of the x range (15), no more.
        np.testing.assert_allclose(x, [5, 10, 20], atol=0.2)
        x_positions.append(x)
        np.testing.assert_allclose(
            data_line.get_ydata(), results["mean_test_score"][order]
        )
        # Error bars: mean +- std, drawn as one vertical segment per value.
        segments = container.lines[2][0].get_segments()
        spans = [seg[1, 1] - seg[0, 1] for seg in segments]
        np.testing.assert_allclose(spans, 2 * results["std_test_score"][order])
    assert not np.allclose(x_positions[0], x_positions[1])
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2
    for star, search in zip(stars, searches.values(), strict=True):
        assert star.get_ydata()[0] == pytest.approx(search.best_score_)


def test_plot_grid_search_categorical_and_several_params(small_digits):
    X, y = small_digits
    search = _fit(
        GridSearchCV(
            MLPClassifier(**QUICK),
            {"activation": ["relu", "tanh"], "alpha": [1e-4, 1e-1]},
            cv=2,
        ),
        X,
        y,
    )
    with pytest.raises(ValueError, match=r"vary \['activation', 'alpha'\]: pass"):
        plot_grid_search(search, ax=Figure().subplots())
    with pytest.raises(ValueError, match="param='beta' is not a searched"):
        plot_grid_search(search, param="beta", ax=Figure().subplots())
    ax = plot_grid_search(search, param="activation", ax=Figure().subplots())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["'relu'", "'tanh'"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "MLPClassifier, alpha=0.0001",
        "MLPClassifier, alpha=0.1",
    ]
    means = search.cv_results_["mean_test_score"]
    alphas = search.cv_results_["param_alpha"]
    for container, alpha in zip(ax.containers, [1e-4, 1e-1], strict=True):
        expected = [
            m
            for m, a, act in zip(
                means, alphas, search.cv_results_["param_activation"], strict=True
            )
            if a == alpha
        ]
        np.testing.assert_allclose(container.lines[0].get_ydata(), expected)


def test_plot_grid_search_errors(fitted):
    with pytest.raises(ValueError, match=r"searches\['MLPClassifier'\].*no cv_res"):
        plot_grid_search(fitted["mlp"], ax=Figure().subplots())
    with pytest.raises(ValueError, match="searches must not be empty"):
        plot_grid_search([], ax=Figure().subplots())


# ------------------------------------------------------------------ matplotlib
def test_matplotlib_lazy_and_agg_without_display(tmp_path):
    """The package does not import matplotlib; headless plots use Agg."""
    code = textwrap.dedent(
        """
        import sys
        import sk_keras_digits
        assert "matplotlib" not in sys.modules, "imported at package import"
        from sklearn.datasets import load_digits
        from sklearn.neural_network import MLPClassifier
        X, y = load_digits(return_X_y=True)
        clf = MLPClassifier((5,), max_iter=5).fit(X[:100], y[:100])
        fig = sk_keras_digits.plot_predictions(clf, X[:4], y[:4])
        import matplotlib
        print(matplotlib.get_backend().lower())
        fig.savefig(sys.argv[1])
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "agg"
    assert (tmp_path / "p.png").stat().st_size > 1000


# ------------------------------------------------------------ inputs as given
def test_plot_predictions_gives_the_estimator_x_as_given(small_digits):
    """A DataFrame keeps its column names (a ColumnTransformer selects by
    them), a sparse matrix its format; the images are a dense copy."""
    import pandas as pd
    import scipy.sparse
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    X, y = small_digits
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    by_name = ColumnTransformer([("scale", MinMaxScaler(), list(frame.columns))])
    pipe = _fit(make_pipeline(by_name, KerasDigitClassifier(**QUICK)), frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        fig = plot_predictions(pipe, frame.iloc[:4], y[:4], fig=Figure())
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_array_equal(image, X[0].reshape(8, 8))
    clf = _fit(KerasDigitClassifier(**QUICK), X, y)
    sparse = scipy.sparse.csr_matrix(X[:4])
    fig = plot_predictions(clf, sparse, y[:4], fig=Figure())
    assert (
        fig.axes[0].get_title()
        == plot_predictions(clf, X[:4], y[:4], fig=Figure()).axes[0].get_title()
    )


def test_plot_predictions_refuses_multilabel_y_and_a_non_figure(fitted, small_digits):
    X, y = small_digits
    clf = fitted["keras"]
    with pytest.raises(ValueError, match="y must hold one label per image"):
        plot_predictions(clf, X[:3], np.eye(10)[y[:3]], fig=Figure())
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        plot_predictions(clf, X[:3], fig=Figure().subplots())
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        search = GridSearchCV(MLPClassifier(max_iter=5), {"alpha": [1e-4]}, cv=2)
        plot_grid_search(search, ax=Figure())


def test_nan_scores_never_get_the_best_star(small_digits):
    """A diverged epoch or a failed candidate (NaN) is not the best."""
    X, y = small_digits
    search = GridSearchCV(
        KerasDigitClassifier(**{**QUICK, "max_iter": 3}),
        {"alpha": [-1.0, 1e-4, 1e-2]},
        cv=2,
        error_score=np.nan,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert np.isnan(means[0]) and not np.isnan(means[1:]).any()
    ax = plot_grid_search(search, ax=Figure().subplots())
    star = [line for line in ax.get_lines() if line.get_marker() == "*"][0]
    assert star.get_ydata()[0] == pytest.approx(np.nanmax(means))

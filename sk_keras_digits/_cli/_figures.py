"""The command line's figures, drawn without pyplot and saved as PNG files.

:data:`FIGURES` names each file the job saves, with its caption in the report.
Each is written whole or not at all (:func:`._files.write_output`).
"""

from functools import partial

from ._files import write_output

#: The files the job saves into the output folder, with their captions.
FIGURES = {
    "predictions.png": "Test digits with true and predicted labels, and the "
    "KerasDigitClassifier's class probabilities under each.",
    "mistakes.png": "Test digits the KerasDigitClassifier gets wrong, with the "
    "probability it gave the true label.",
    "loss_curves.png": "Training loss per epoch of the tutorial network, "
    "KerasDigitClassifier and MLPClassifier (seed 0).",
    "grid_search.png": "Cross-validated accuracy against the hidden layer size "
    "(mean ± one standard deviation over folds).",
    "confusion_matrix.png": "Confusion matrices on the test digits (seed 0).",
}


def save_figures(tutorial, searches, split, settings, bar):
    """Draw the figures on figures not managed by pyplot and save them."""
    import numpy as np
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    from .._plotting import (
        plot_grid_search,
        plot_learning_curves,
        plot_predictions,
        predictions_figsize,
    )

    _, _, X_test, y_test = split
    keras_clf = tutorial["KerasDigitClassifier"][0]["model"]
    mlp_clf = tutorial["MLPClassifier"][0]["model"]
    out = settings.out
    saved = []

    def save(fig, name):
        write_output(out / name, partial(fig.savefig, format="png", dpi=100))
        saved.append(out / name)
        bar.update()

    def digits_figure(n):
        size = predictions_figsize(min(n, settings.images))
        return Figure(figsize=size, layout="constrained")

    fig = digits_figure(len(y_test))
    plot_predictions(keras_clf, X_test, y_test, max_images=settings.images, fig=fig)
    save(fig, "predictions.png")

    wrong = np.flatnonzero(keras_clf.predict(X_test) != y_test)
    fig = digits_figure(max(len(wrong), 1))
    if len(wrong):
        plot_predictions(
            keras_clf, X_test[wrong], y_test[wrong], max_images=settings.images, fig=fig
        )
        fig.suptitle(
            f"{len(wrong)} of {len(y_test)} test digits misclassified"
            + (
                f" (first {settings.images} shown)"
                if len(wrong) > settings.images
                else ""
            )
        )
    else:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "No test digit misclassified", ha="center", va="center")
        ax.set_axis_off()
    save(fig, "mistakes.png")

    save(
        plot_learning_curves(
            {"KerasDigitClassifier": keras_clf, "MLPClassifier": mlp_clf},
            fig=Figure(figsize=(7, 4.5), layout="constrained"),
        ),
        "loss_curves.png",
    )

    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = plot_grid_search(searches, ax=fig.subplots())
    ax.set_ylabel(f"mean accuracy ± sd, {settings.cv}-fold CV")
    save(fig, "grid_search.png")

    fig = Figure(figsize=(11, 5), layout="constrained")
    for ax, (name, clf) in zip(
        fig.subplots(1, 2),
        [("KerasDigitClassifier", keras_clf), ("MLPClassifier", mlp_clf)],
        strict=True,
    ):
        ConfusionMatrixDisplay.from_predictions(
            y_test, clf.predict(X_test), ax=ax, colorbar=False
        )
        ax.set_title(f"{name}: accuracy {clf.score(X_test, y_test):.3f}")
    save(fig, "confusion_matrix.png")
    return saved

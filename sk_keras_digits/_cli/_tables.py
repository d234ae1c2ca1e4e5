"""The command line's tables: the tutorial fits, the grid, the best sizes.

Each function turns results of :mod:`._job` into a :class:`._report.Table`,
printed on the terminal and shown in the HTML report.
"""

from .._tutorial import MODELS, N_TRAIN, TUTORIAL_PARAMS
from ._report import Table


def _mean_sd(values, digits=3):
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def tutorial_table(tutorial, split, settings):
    import numpy as np

    n_test = split[2].shape[0]
    rows = []
    for name, fits in tutorial.items():
        accuracy = [f["accuracy"] for f in fits]
        seconds = [f["seconds"] for f in fits]
        rows.append(
            [
                name,
                _mean_sd(accuracy),
                f"{min(accuracy):.3f}-{max(accuracy):.3f}",
                f"{np.median(seconds):.3f}",
                f"{seconds[0]:.3f}",
            ]
        )
    seeds = settings.seeds
    return Table(
        title=(
            f"Tutorial: 64-15-10 network on the first {N_TRAIN} digits, tested on "
            f"the other {n_test} ({seeds} seed{'s' if seeds > 1 else ''})"
        ),
        header=[
            "model",
            "test accuracy" + (" (mean ± sd)" if seeds > 1 else ""),
            "min-max",
            "fit time (s, median)",
            "first fit (s)",
        ],
        rows=rows,
        notes=[
            "Settings: " + ", ".join(f"{k}={v!r}" for k, v in TUTORIAL_PARAMS.items()),
            "KerasDigitClassifier's first fit in a process includes compiling "
            "its training loop; later fits of the same shapes reuse it.",
        ],
    )


def grid_table(searches, settings):

    results = {name: s.cv_results_ for name, s in searches.items()}
    rows = []
    for i, h in enumerate(settings.hidden_sizes):
        row = [str(h)]
        for name in MODELS:
            r = results[name]
            row.append(f"{r['mean_test_score'][i]:.3f} ± {r['std_test_score'][i]:.3f}")
        for name in MODELS:
            row.append(f"{results[name]['mean_fit_time'][i]:.3f}")
        rows.append(row)
    walls = ", ".join(f"{n} {s.wall_seconds_:.1f} s" for n, s in searches.items())
    return Table(
        title=(
            f"Grid search over hidden_layer_sizes: {settings.cv}-fold CV accuracy "
            f"in Pipeline(MinMaxScaler, classifier) on the {N_TRAIN} training digits"
        ),
        header=[
            "hidden size",
            "Keras CV accuracy",
            "MLP CV accuracy",
            "Keras fit (s)",
            "MLP fit (s)",
        ],
        rows=rows,
        notes=[
            "Accuracy: mean ± sd over folds; fit: mean time per fold.",
            f"Search wall time (all fits and the refit): {walls}.",
        ],
    )


def best_table(searches, split):

    _, _, X_test, y_test = split
    rows = []
    for name, search in searches.items():
        best = search.best_params_["clf__hidden_layer_sizes"]
        rows.append(
            [
                name,
                str(best[0]),
                f"{search.best_score_:.3f}",
                f"{search.best_estimator_.score(X_test, y_test):.3f}",
            ]
        )
    return Table(
        title="Best hidden size of each search, refit on the training digits",
        header=["model", "hidden size", "CV accuracy", "test accuracy"],
        rows=rows,
    )

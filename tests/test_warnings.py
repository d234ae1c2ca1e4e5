"""Warnings name the caller's line, wherever in the package they are raised."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from sk_keras_digits import KerasDigitClassifier


@pytest.mark.parametrize(
    "params, method, category",
    [
        (dict(batch_size=1000, max_iter=2), "fit", UserWarning),
        (dict(max_iter=2), "fit", ConvergenceWarning),
        (dict(solver="lbfgs", max_iter=2), "fit", ConvergenceWarning),
        (dict(batch_size=1000), "partial_fit", UserWarning),
    ],
)
def test_warnings_point_at_the_callers_line(small_digits, params, method, category):
    X, y = small_digits
    est = KerasDigitClassifier(random_state=0, **params)
    kwargs = {"classes": np.unique(y)} if method == "partial_fit" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(est, method)(X, y, **kwargs)
    ours = [w for w in caught if issubclass(w.category, category)]
    assert ours, [str(w.message) for w in caught]
    assert {w.filename for w in ours} == {__file__}


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="lbfgs", max_iter=3),  # the iteration limit
        dict(solver="lbfgs", max_iter=200, max_fun=5),  # the evaluation limit
        dict(solver="sgd", max_iter=2),
        dict(solver="adam", max_iter=2, early_stopping=True),
    ],
)
def test_convergence_warnings_read_as_mlpclassifiers(small_digits, params):
    """A filter or a log search written for MLPClassifier's ConvergenceWarning
    finds ours: the same text, word for word."""
    X, y = small_digits
    texts = []
    for estimator in (KerasDigitClassifier, MLPClassifier):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator(hidden_layer_sizes=(8,), random_state=0, **params).fit(X, y)
        texts.append(
            [str(w.message) for w in caught if w.category is ConvergenceWarning]
        )
    ours, theirs = texts
    assert theirs, "MLPClassifier warned of nothing: pick settings that stop short"
    assert ours == theirs

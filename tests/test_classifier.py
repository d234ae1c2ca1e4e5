"""KerasDigitClassifier: MLPClassifier's twin, on Keras."""

import inspect
import os
import pickle
import random
import subprocess
import sys
import textwrap
import warnings
from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError

from sk_keras_digits import KerasDigitClassifier
from tests._helpers import (
    QUICK,
    TENSORFLOW_SESSION,
    assert_same_weights,
    compute_scope,
    fit_quietly,
)


def fit_twins(params, X, y):
    """Ours and MLPClassifier, fitted with the same ``params``."""
    ours = fit_quietly(KerasDigitClassifier(**params), X, y)
    return ours, fit_quietly(MLPClassifier(**params), X, y)


def conv_net(n_features, n_outputs, output_activation):
    """A small convolutional network on the 8x8 digit images."""
    import keras

    inputs = keras.Input(shape=(n_features,))
    h = keras.layers.Reshape((8, 8, 1))(inputs)
    h = keras.layers.Conv2D(8, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(0.1)(h)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
    return keras.Model(inputs, outputs)


# -- the MLPClassifier twin --------------------------------------------------


@TENSORFLOW_SESSION
def test_class_is_a_classifier_with_mixin_first():
    from sklearn.base import BaseEstimator, ClassifierMixin, is_classifier

    mro = KerasDigitClassifier.__mro__
    assert mro.index(ClassifierMixin) < mro.index(BaseEstimator)
    assert is_classifier(KerasDigitClassifier())


@TENSORFLOW_SESSION
def test_parameters_are_mlpclassifiers_with_the_same_defaults():
    ours = KerasDigitClassifier().get_params()
    theirs = MLPClassifier().get_params()
    assert set(ours) - set(theirs) == {"network", "callbacks", "class_weight"}
    assert {k: ours[k] for k in theirs} == theirs
    # Same signature shape: two positional parameters, the rest keyword-only.
    ours_sig = inspect.signature(KerasDigitClassifier)
    theirs_sig = inspect.signature(MLPClassifier)
    assert [p.kind for p in ours_sig.parameters.values()][:2] == [
        p.kind for p in theirs_sig.parameters.values()
    ][:2]


@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", learning_rate_init=0.1),
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5),
        dict(
            solver="sgd",
            learning_rate="adaptive",
            max_iter=300,
            tol=1e-2,
            n_iter_no_change=3,
        ),
        dict(solver="sgd", nesterovs_momentum=False, activation="tanh"),
        dict(solver="adam", activation="identity"),
        dict(solver="adam", hidden_layer_sizes=(12, 7)),
        dict(solver="lbfgs"),
    ],
    ids=["sgd", "invscaling", "adaptive", "momentum", "adam", "deep", "lbfgs"],
)
def test_trains_exactly_as_mlpclassifier_without_shuffling(small_digits, settings):
    """Same init, loss, gradients, solvers and stopping rules as MLPClassifier.

    Without shuffling the batches are the same too, so both estimators must
    reach the same weights, to rounding.
    """
    X, y = small_digits
    params = dict(
        hidden_layer_sizes=(20,),
        shuffle=False,
        random_state=0,
        max_iter=30,
        batch_size=50,
    )
    params.update(settings)
    ours, theirs = fit_twins(params, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-9)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert ours.t_ == theirs.t_
    np.testing.assert_allclose(
        ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize(
    "settings",
    [
        dict(activation="relu", learning_rate_init=0.01),
        dict(activation="identity", learning_rate_init=0.001),
        dict(solver="lbfgs", activation="relu", max_iter=15),
    ],
    ids=["relu", "identity", "lbfgs"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_trains_as_mlpclassifier_where_the_outputs_saturate(
    small_digits, settings, binary
):
    """Raw pixels times 10: confident outputs, many of them wrong, whose right
    class gets a probability below eps or rounded to 0 (logistic outputs at
    exactly 0 or 1). MLPClassifier backpropagates ``outputs - y`` from them,
    as from any sample; so must the twin, whose gradient went through the
    clipped logarithm and passed back almost nothing (weights 100% apart)."""
    X, y = small_digits
    X = X * 16 * 10  # small_digits is scaled to [0, 1]
    if binary:
        y = (y > 4).astype(int)
    params = dict(
        hidden_layer_sizes=(20,),
        solver="sgd",
        momentum=0.0,
        shuffle=False,
        random_state=0,
        max_iter=5,
        batch_size=50,
        tol=0.0,
    )
    params.update(settings)
    ours, theirs = fit_twins(params, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-9)


@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_early_stopping_matches_mlpclassifier(target, small_digits):
    """The same validation split (stratified for one output only), same weights."""
    X, y = small_digits
    if target == "binary":
        y = (y > 4).astype(int)
    params = dict(
        hidden_layer_sizes=(20,),
        shuffle=False,
        random_state=0,
        max_iter=60,
        early_stopping=True,
        solver="sgd",
        learning_rate_init=0.05,
    )
    ours, theirs = fit_twins(params, X, y)
    assert ours.validation_scores_ == pytest.approx(theirs.validation_scores_)
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    validation_fraction=st.sampled_from([0.1, 0.2, 0.34, 0.5, 0.8]),
)
def test_early_stopping_refuses_what_mlpclassifier_refuses(
    small_digits, counts, validation_fraction
):
    """Classes too small for the split (a single sample, fewer validation
    samples than classes): MLPClassifier's error, in ours; else both fit."""
    X = small_digits[0][: sum(counts)]
    y = np.repeat(np.arange(len(counts)), counts)
    params = dict(
        hidden_layer_sizes=(4,),
        max_iter=2,
        early_stopping=True,
        validation_fraction=validation_fraction,
        random_state=0,
    )
    outcomes = []
    for estimator in (MLPClassifier(**params), KerasDigitClassifier(**params)):
        try:
            fit_quietly(estimator, X, y)
            outcomes.append(None)
        except ValueError as exc:
            outcomes.append(str(exc))
    theirs, ours = outcomes
    assert (theirs is None) == (ours is None), outcomes
    if theirs is not None:
        assert ours.startswith(theirs) or theirs in ours, outcomes
        assert "early_stopping" in ours


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", shuffle=False),
        dict(solver="adam", shuffle=False, early_stopping=True),
        dict(solver="lbfgs"),
    ],
)
def test_a_random_state_instance_is_advanced_as_mlpclassifier_advances_it(
    params, small_digits
):
    """Without shuffling, each fit draws from a shared RandomState what
    MLPClassifier draws, so a sequence of fits stays its twin."""
    X, y = small_digits
    params = dict(params, hidden_layer_sizes=(6,), max_iter=3)
    ours_rng, their_rng = np.random.RandomState(1), np.random.RandomState(1)
    for _ in range(2):
        ours = fit_quietly(KerasDigitClassifier(random_state=ours_rng, **params), X, y)
        theirs = fit_quietly(MLPClassifier(random_state=their_rng, **params), X, y)
        assert ours_rng.get_state()[2] == their_rng.get_state()[2]
        np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], atol=1e-9)


def test_tutorial_configuration_accuracy(tutorial_split, tutorial_params):
    """The tutorial's net on the tutorial's split: >= 0.88, within 2 points of MLP."""
    X_train, y_train, X_test, y_test = tutorial_split
    ours, theirs = [], []
    for seed in range(5):
        est = KerasDigitClassifier(random_state=seed, **tutorial_params)
        ours.append(fit_quietly(est, X_train, y_train).score(X_test, y_test))
        mlp = MLPClassifier(random_state=seed, **tutorial_params)
        theirs.append(fit_quietly(mlp, X_train, y_train).score(X_test, y_test))
    assert np.mean(ours) >= 0.88
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02
    assert est.coefs_[0].shape == (64, 15) and est.coefs_[1].shape == (15, 10)
    assert est.n_layers_ == 3 and est.n_outputs_ == 10
    assert est.out_activation_ == "softmax"


# -- in scikit-learn's machinery ---------------------------------------------


@TENSORFLOW_SESSION
def test_grid_search_over_hidden_size_in_a_pipeline(small_digits):
    X, y = small_digits
    pipe = make_pipeline(
        MinMaxScaler(),
        KerasDigitClassifier(solver="sgd", learning_rate_init=0.1, **QUICK),
    )
    grid = GridSearchCV(
        pipe,
        {"kerasdigitclassifier__hidden_layer_sizes": [(5,), (20,), (10, 10)]},
        cv=3,
    )
    fit_quietly(grid, X, y)
    assert set(grid.cv_results_["mean_test_score"].round(6)) != {0.0}
    assert grid.best_params_["kerasdigitclassifier__hidden_layer_sizes"] in [
        (5,),
        (20,),
        (10, 10),
    ]
    assert grid.best_score_ > 0.7
    assert grid.predict(X[:5]).shape == (5,)


@TENSORFLOW_SESSION
def test_cross_val_score(small_digits):
    X, y = small_digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(
            KerasDigitClassifier(solver="sgd", learning_rate_init=0.1, **QUICK),
            X,
            y,
            cv=3,
        )
    assert scores.shape == (3,)
    assert scores.mean() > 0.75


@TENSORFLOW_SESSION
def test_clone_and_get_params_do_not_import_tensorflow():
    code = textwrap.dedent(
        """
        import sys
        from sklearn.base import clone
        import sk_keras_digits
        est = clone(sk_keras_digits.KerasDigitClassifier(hidden_layer_sizes=(3,)))
        est.get_params(); est.set_params(alpha=0.1)
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -- targets -----------------------------------------------------------------


@TENSORFLOW_SESSION
@pytest.mark.parametrize(
    "labels",
    [
        np.array(["zero", "one", "two", "three", "four"] * 2),
        np.array([3, 10, 42, -7, 100] * 2),
    ],
    ids=["strings", "non-contiguous-ints"],
)
def test_predict_returns_the_users_labels_and_dtype(small_digits, labels):
    X, y = small_digits
    mask = y < 5
    X, y = X[mask], labels[y[mask]]
    est = fit_quietly(KerasDigitClassifier(solver="lbfgs", **QUICK), X, y)
    pred = est.predict(X)
    assert pred.dtype == y.dtype
    assert set(pred) <= set(y)
    assert list(est.classes_) == sorted(set(y))
    assert est.score(X, y) > 0.8
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], pred)


@TENSORFLOW_SESSION
def test_binary_targets_use_one_logistic_output(small_digits):
    X, y = small_digits
    y = np.where(y % 2, "odd", "even")
    est = fit_quietly(KerasDigitClassifier(solver="lbfgs", **QUICK), X, y)
    assert est.n_outputs_ == 1 and est.out_activation_ == "logistic"
    assert est.coefs_[-1].shape == (20, 1)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(est.predict(X)) == {"even", "odd"}
    assert est.score(X, y) > 0.85


@TENSORFLOW_SESSION
def test_multilabel_indicator_targets(small_digits):
    X, y = small_digits
    Y = np.column_stack([y % 2 == 0, y > 4, y == 3]).astype(int)
    est = fit_quietly(KerasDigitClassifier(solver="lbfgs", **QUICK), X, Y)
    assert est.n_outputs_ == 3 and est.out_activation_ == "logistic"
    pred = est.predict(X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    assert (pred == Y).mean() > 0.85
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape and ((proba >= 0) & (proba <= 1)).all()


# -- methods and input kinds ------------------------------------------------


@TENSORFLOW_SESSION
def test_partial_fit_learns_over_calls_and_checks_classes(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(solver="sgd", learning_rate_init=0.1, **QUICK)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X[:50], y[:50])
    classes = np.arange(10)
    est.partial_fit(X[:50], y[:50], classes=classes)
    first = est.score(X, y)
    t_after_first = est.t_
    for _ in range(15):
        est.partial_fit(X, y)
    assert est.t_ == t_after_first + 15 * len(X)
    assert est.n_iter_ == 1
    assert len(est.loss_curve_) == 16
    assert est.score(X, y) > max(first, 0.8)
    np.testing.assert_array_equal(est.classes_, classes)
    with pytest.raises(ValueError, match="not in classes_"):
        est.partial_fit(X[:3], np.array([1, 2, 11]))


@TENSORFLOW_SESSION
def test_partial_fit_is_unavailable_for_lbfgs_and_refuses_early_stopping(
    small_digits,
):
    X, y = small_digits
    assert not hasattr(KerasDigitClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match="solver='lbfgs' is not stochastic"):
        _ = KerasDigitClassifier(solver="lbfgs").partial_fit
    # As MLPClassifier: the method exists and says why it cannot run.
    est = KerasDigitClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="does not support early_stopping=True"):
        est.partial_fit(X, y, classes=np.unique(y))
    assert not hasattr(est, "classes_")


@TENSORFLOW_SESSION
def test_a_single_class_fits_and_predicts_it_as_mlpclassifier(small_digits):
    X, _ = small_digits
    y = np.full(len(X), "seven")
    for params in (dict(), dict(early_stopping=True, validation_fraction=0.2)):
        est = KerasDigitClassifier(max_iter=20, random_state=0, **params).fit(X, y)
        mlp = MLPClassifier(max_iter=20, random_state=0, **params).fit(X, y)
        assert est.classes_.tolist() == mlp.classes_.tolist() == ["seven"]
        assert est.n_outputs_ == mlp.n_outputs_ == 1
        assert est.out_activation_ == mlp.out_activation_ == "logistic"
        np.testing.assert_array_equal(est.predict(X), y)
        proba = est.predict_proba(X)
        assert proba.shape == mlp.predict_proba(X).shape == (len(X), 2)
        assert (proba[:, 0] > 0.5).all()
        assert est.score(X, y) == 1.0


@TENSORFLOW_SESSION
def test_class_weight_balanced_equals_balanced_sample_weights(small_digits):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = small_digits
    keep = (y != 3) | (np.arange(len(y)) % 4 == 0)  # make class 3 rare
    X, y = X[keep], y[keep]
    base = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    for dtype in (np.float64, np.float32):
        weighted = KerasDigitClassifier(class_weight="balanced", **base).fit(
            X.astype(dtype), y
        )
        explicit = KerasDigitClassifier(**base).fit(
            X.astype(dtype), y, sample_weight=compute_sample_weight("balanced", y)
        )
        for a, b in zip(weighted.coefs_, explicit.coefs_, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6 if dtype is np.float32 else 0)
    plain = KerasDigitClassifier(**base).fit(X, y)
    assert not np.array_equal(plain.coefs_[0], weighted.coefs_[0].astype(np.float64))


@TENSORFLOW_SESSION
def test_class_weight_dict_multiplies_sample_weight(small_digits):
    X, y = small_digits
    base = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    sw = np.linspace(0.5, 2, len(y))
    a = KerasDigitClassifier(class_weight={3: 5.0, 7: 0.5}, **base).fit(
        X, y, sample_weight=sw
    )
    factor = np.where(y == 3, 5.0, np.where(y == 7, 0.5, 1.0))
    b = KerasDigitClassifier(**base).fit(X, y, sample_weight=sw * factor)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


@TENSORFLOW_SESSION
@pytest.mark.parametrize(
    "class_weight, target, method, match",
    [
        ({3: 2.0, 42: 1.0}, "multiclass", "fit", r"keys \[42\] that are not classes"),
        ("balanced", "multilabel", "fit", "not supported for multilabel"),
        ("heavy", "multiclass", "fit", "'class_weight' parameter"),
        (
            {3: -1.0},
            "multiclass",
            "fit",
            r"finite non-negative numbers; got \{3: -1.0\}",
        ),
        ({3: np.nan}, "multiclass", "fit", "finite non-negative numbers"),
        ({3: np.inf}, "multiclass", "partial_fit", "finite non-negative numbers"),
        ({3: "x"}, "multiclass", "fit", "finite non-negative numbers"),
        ({3: True}, "multiclass", "fit", "finite non-negative numbers"),
        (dict.fromkeys(range(10), 0), "multiclass", "fit", "every sample a weight"),
        (dict.fromkeys(range(10), 0.0), "multiclass", "partial_fit", "weight of 0"),
    ],
)
def test_class_weight_errors(small_digits, class_weight, target, method, match):
    X, y = small_digits
    if target == "multilabel":
        y = np.stack([y % 2, y > 4], axis=1).astype(int)
    est = KerasDigitClassifier(class_weight=class_weight, max_iter=2)
    kwargs = {"classes": np.unique(y)} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(X, y, **kwargs)


@TENSORFLOW_SESSION
def test_balanced_class_weight_offers_no_partial_fit(small_digits):
    """One call's labels are not the class frequencies: as for ``lbfgs``,
    ``partial_fit`` is not available (scikit-learn's checks then skip it)."""
    X, y = small_digits
    est = KerasDigitClassifier(class_weight="balanced", max_iter=2)
    assert not hasattr(est, "partial_fit")
    with pytest.raises(
        AttributeError, match="no attribute 'partial_fit': class_weight='balanced'"
    ):
        est.partial_fit(X, y, classes=np.unique(y))
    method = est.set_params(class_weight=None).partial_fit  # fetched before
    est.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="'balanced' is not supported for partial"):
        method(X, y, classes=np.unique(y))
    assert not hasattr(est, "n_iter_")


@TENSORFLOW_SESSION
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_balanced_class_weight_counts_a_weight_of_k_as_k_samples(seed, small_digits):
    """With sample weights, the class frequencies that 'balanced' evens out
    count a sample of weight k as k samples (where scikit-learn supports it)."""
    from sk_keras_digits._classifier import _WEIGHTED_BALANCE

    if not _WEIGHTED_BALANCE:
        pytest.skip("this scikit-learn's compute_class_weight takes no weights")
    X, y = small_digits
    X, y = X[:80], y[:80]
    weights = np.random.RandomState(seed).randint(0, 4, len(X))
    params = dict(solver="adam", hidden_layer_sizes=(6,), random_state=0, max_iter=5)
    params.update(class_weight="balanced")
    weighted = fit_quietly(KerasDigitClassifier(**params), X, y, sample_weight=weights)
    repeated = fit_quietly(
        KerasDigitClassifier(**params), X.repeat(weights, axis=0), y.repeat(weights)
    )
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6, atol=1e-8
    )


def test_lbfgs_converges_and_records_its_curve(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(solver="lbfgs", hidden_layer_sizes=(20,), random_state=0)
    est.fit(X, y)
    assert est.score(X, y) > 0.95
    assert est.n_iter_ == len(est.loss_curve_)
    assert est.loss_ == pytest.approx(est.loss_curve_[-1])
    assert est.validation_scores_ is None
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        clone(est).set_params(max_iter=2).fit(X, y)


def test_early_stopping_keeps_the_best_validation_weights(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(
        solver="sgd",
        learning_rate_init=0.1,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=5,
        hidden_layer_sizes=(20,),
        max_iter=500,
        random_state=0,
    ).fit(X, y)
    scores = est.validation_scores_
    assert est.n_iter_ < 500
    assert len(scores) == est.n_iter_ == len(est.history_["val_accuracy"])
    assert est.best_validation_score_ == max(scores)
    assert est.best_loss_ is None
    # Stopped n_iter_no_change + 1 epochs after the last improvement by tol.
    best = int(np.argmax(scores))
    assert est.n_iter_ - 1 - best >= 5


@TENSORFLOW_SESSION
def test_convergence_warning_at_max_iter(small_digits):
    X, y = small_digits
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        KerasDigitClassifier(max_iter=3, hidden_layer_sizes=(5,)).fit(X, y)


@TENSORFLOW_SESSION
def test_tol_stops_training_before_max_iter(small_digits):
    X, y = small_digits
    params = dict(QUICK, tol=0.5, n_iter_no_change=2, max_iter=100)
    est = KerasDigitClassifier(**params).fit(X, y)
    # The first epoch improves on an infinite best loss; then n_iter_no_change
    # + 1 epochs without a tol improvement stop training, as in MLPClassifier.
    assert est.n_iter_ == 4
    assert MLPClassifier(**params).fit(X, y).n_iter_ == 4


@TENSORFLOW_SESSION
def test_sparse_input_gives_the_dense_result(small_digits):
    X, y = small_digits
    dense = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    for container in (sp.csr_matrix, sp.csc_matrix):
        sparse = fit_quietly(KerasDigitClassifier(**QUICK), container(X), y)
        np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-10)
        np.testing.assert_allclose(
            sparse.predict_proba(container(X)), dense.predict_proba(X), rtol=1e-10
        )


@TENSORFLOW_SESSION
def test_pandas_dataframe_keeps_feature_names(small_digits):
    pd = pytest.importorskip("pandas")
    X, y = small_digits
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(64)])
    est = fit_quietly(KerasDigitClassifier(**QUICK), frame, pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, frame.columns)
    assert est.predict(frame).shape == (len(frame),)
    renamed = frame.rename(columns={"pixel_0": "something_else"})
    with pytest.raises(ValueError, match="feature names"):
        est.predict(renamed)


@TENSORFLOW_SESSION
def test_sample_weight_of_k_acts_as_k_copies(small_digits):
    X, y = small_digits
    X, y = X[:60], y[:60]
    weights = np.random.RandomState(0).randint(0, 4, len(X))
    # Full batches (batch_size="auto" covers both data sets), so every step
    # sees the same gradient whether a sample is weighted or repeated.
    params = dict(solver="adam", hidden_layer_sizes=(10,), random_state=0, max_iter=30)
    weighted = fit_quietly(KerasDigitClassifier(**params), X, y, sample_weight=weights)
    repeated = fit_quietly(
        KerasDigitClassifier(**params), X.repeat(weights, axis=0), y.repeat(weights)
    )
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6, atol=1e-8
    )
    with pytest.raises(ValueError, match="(?i)negative"):
        KerasDigitClassifier(**params).fit(X, y, sample_weight=-np.ones(len(X)))


def test_float32_input_trains_in_float32(small_digits):
    X, y = small_digits
    est = fit_quietly(KerasDigitClassifier(**QUICK), X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32
    est64 = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    assert est64.coefs_[0].dtype == np.float64


def test_warm_start_continues_from_the_previous_weights(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(warm_start=True, solver="sgd", **QUICK)
    fit_quietly(est, X, y)
    first_curve = list(est.loss_curve_)
    fit_quietly(est, X, y)
    assert len(est.loss_curve_) == 2 * len(first_curve)
    assert est.loss_curve_[: len(first_curve)] == first_curve
    assert est.loss_curve_[len(first_curve)] < first_curve[0]
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X[y < 5], y[y < 5])


@TENSORFLOW_SESSION
def test_invalid_parameters_raise_at_fit(small_digits):
    X, y = small_digits
    for params in (
        dict(solver="newton"),
        dict(alpha=-1.0),
        dict(momentum=1.5),
        dict(batch_size=0),
        dict(network="dense"),
    ):
        with pytest.raises(InvalidParameterError, match=next(iter(params))):
            KerasDigitClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        KerasDigitClassifier(hidden_layer_sizes=(10, 0)).fit(X, y)


# -- what Keras adds ---------------------------------------------------------


def test_model_is_the_trained_keras_network(small_digits):
    import keras

    X, y = small_digits
    est = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    model = est.model_
    assert isinstance(model, keras.Model)
    assert [layer.name for layer in model.layers[1:]] == ["hidden_1", "output"]
    for keras_weight, ours in zip(
        model.get_weights(),
        [est.coefs_[0], est.intercepts_[0], est.coefs_[1], est.intercepts_[1]],
        strict=True,
    ):
        np.testing.assert_array_equal(keras_weight, ours)
    with compute_scope("float64"):  # JAX computes float64 only in its scope
        predicted = model.predict(X, verbose=0)
    np.testing.assert_allclose(predicted, est.predict_proba(X), rtol=1e-12)
    assert est.history_["loss"] == est.loss_curve_
    assert len(est.history_["learning_rate"]) == est.n_iter_


def test_custom_convolutional_network(tutorial_split):
    X_train, y_train, X_test, y_test = tutorial_split
    est = KerasDigitClassifier(
        network=conv_net,
        solver="adam",
        learning_rate_init=0.01,
        max_iter=15,
        random_state=0,
    )
    fit_quietly(est, X_train / 16, y_train)
    assert est.score(X_test / 16, y_test) > 0.85
    layer_types = [type(layer).__name__ for layer in est.model_.layers]
    assert "Conv2D" in layer_types and "Dropout" in layer_types
    assert est.coefs_[0].shape == (3, 3, 1, 8)  # the convolution kernel
    with compute_scope("float64"):
        predicted = est.model_.predict(X_test / 16, verbose=0)
    np.testing.assert_allclose(
        predicted,
        est.predict_proba(X_test / 16),
        rtol=1e-6,
        atol=1e-9,
    )
    again = fit_quietly(clone(est), X_train / 16, y_train)
    np.testing.assert_array_equal(
        again.predict_proba(X_test / 16), est.predict_proba(X_test / 16)
    )


def test_custom_network_must_return_a_model_of_the_right_width(small_digits):
    import keras

    X, y = small_digits

    def not_a_model(n_features, n_outputs, output_activation):
        return "a model"

    def too_narrow(n_features, n_outputs, output_activation):
        inputs = keras.Input((n_features,))
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))

    with pytest.raises(TypeError, match="keras.Model"):
        KerasDigitClassifier(network=not_a_model).fit(X, y)
    with pytest.raises(ValueError, match=r"\(n_samples, 10\)"):
        KerasDigitClassifier(network=too_narrow).fit(X, y)


def test_int_random_state_is_bit_reproducible_and_none_is_not(small_digits):
    X, y = small_digits
    a = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    b = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)
    free = dict(QUICK, random_state=None)
    c = fit_quietly(KerasDigitClassifier(**free), X, y)
    d = fit_quietly(KerasDigitClassifier(**free), X, y)
    assert not np.array_equal(c.coefs_[0], d.coefs_[0])


def _global_random_states():
    """The global state a user owns: RNGs, Keras' and the backend's settings."""
    import keras
    from keras.src.backend.common import global_state

    generator = global_state.get_global_attribute("global_seed_generator")
    common = (
        pickle.dumps(np.random.get_state()),
        pickle.dumps(random.getstate()),
        None if generator is None else np.asarray(generator.state.value).tobytes(),
        keras.config.floatx(),
        str(keras.config.dtype_policy().name),
    )
    if keras.backend.backend() == "jax":
        import jax

        names = (
            "jax_enable_x64",
            "jax_default_matmul_precision",
            "jax_default_prng_impl",
            "jax_numpy_dtype_promotion",
            "jax_debug_nans",
            "jax_disable_jit",
        )
        return common + tuple(getattr(jax.config, name) for name in names)
    import tensorflow as tf
    from tensorflow.python.framework import random_seed

    return common + (
        random_seed.get_seed(None),  # TensorFlow's global seed
        tf.config.threading.get_inter_op_parallelism_threads(),
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.functions_run_eagerly(),
    )


@pytest.mark.parametrize("random_state", [0, None])
def test_fit_touches_no_global_random_state(small_digits, random_state):
    X, y = small_digits
    params = dict(QUICK, random_state=random_state, early_stopping=True)
    fit_quietly(KerasDigitClassifier(**params), X, y)  # warm up lazy imports
    before = _global_random_states()
    fit_quietly(KerasDigitClassifier(**params), X, y)
    fit_quietly(
        KerasDigitClassifier(network=conv_net, max_iter=2, random_state=random_state),
        X,
        y,
    )
    assert _global_random_states() == before


_PREDICT_IN_FRESH_PROCESS = """
import os, pickle, sys, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from sklearn.datasets import load_digits
from sk_keras_digits import KerasDigitClassifier
X, y = load_digits(return_X_y=True)
warnings.simplefilter("ignore")
est = KerasDigitClassifier(hidden_layer_sizes=(15,), solver="sgd", max_iter=10,
                           random_state=7).fit(X[:300], y[:300])
sys.stdout.buffer.write(pickle.dumps((est.coefs_, est.predict_proba(X[300:400]))))
"""


def test_same_random_state_gives_identical_results_in_two_processes():
    runs = [
        pickle.loads(
            subprocess.run(
                [sys.executable, "-c", _PREDICT_IN_FRESH_PROCESS],
                capture_output=True,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    (coefs_a, proba_a), (coefs_b, proba_b) = runs
    for a, b in zip(coefs_a, coefs_b, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(proba_a, proba_b)


@TENSORFLOW_SESSION
def test_pickle_round_trip_into_a_fresh_process(tmp_path, small_digits):
    X, y = small_digits
    dense = fit_quietly(KerasDigitClassifier(**QUICK), X, y)
    custom = fit_quietly(
        KerasDigitClassifier(network=partial(conv_net), max_iter=2, random_state=0),
        X,
        y,
    )
    path = tmp_path / "models.pkl"
    path.write_bytes(pickle.dumps((dense, custom)))
    code = textwrap.dedent(
        f"""
        import os, pickle, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        dense, custom = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        out = [dense.predict_proba(X), "tensorflow" in sys.modules]
        out.append(custom.predict_proba(X))
        sys.stdout.buffer.write(pickle.dumps(out))
        """
    )
    np.save(tmp_path / "X.npy", X)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True
    )
    dense_proba, tensorflow_loaded, custom_proba = pickle.loads(result.stdout)
    np.testing.assert_array_equal(dense_proba, dense.predict_proba(X))
    assert not tensorflow_loaded  # the dense network predicts with NumPy alone
    np.testing.assert_allclose(custom_proba, custom.predict_proba(X), rtol=1e-6)


@TENSORFLOW_SESSION
def test_class_weight_zeroing_only_the_classes_of_y_is_refused(small_digits):
    """Zero weights for just the classes present in a call, not for every class."""
    X, y = small_digits
    ones_and_twos = np.isin(y, [1, 2])
    class_weight = {1: 0, 2: 0.0, 3: 1.0}
    with pytest.raises(ValueError, match=r"class_weight=.* every sample a weight"):
        KerasDigitClassifier(class_weight={1: 0, 2: 0.0}).fit(
            X[ones_and_twos], y[ones_and_twos]
        )
    est = KerasDigitClassifier(class_weight=class_weight, max_iter=2, random_state=0)
    est.partial_fit(X, y, classes=np.unique(y))
    before = est.coefs_[0].copy()
    with pytest.raises(ValueError, match="every sample a weight of 0"):
        est.partial_fit(X[ones_and_twos], y[ones_and_twos])
    np.testing.assert_array_equal(est.coefs_[0], before)  # nothing lost

"""The bad-input catalogue: every bad input gets a clear error, and nothing is lost.

Each case checks that the error names the problem and that an estimator that
was fitted before the failed call keeps its model exactly: the same fitted
attributes (the very same objects) and the same probabilities.
"""

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor
from tests._helpers import IGNORE_CONVERGENCE, SMALL

pytestmark = IGNORE_CONVERGENCE


# Training that diverges: SGD whose L2 step overshoots (learning_rate_init *
# alpha / batch_size = 10), in float32 on unscaled digits.
DIVERGING = dict(alpha=1.0, learning_rate_init=1e3, batch_size=100, max_iter=50)


def wrong_output_network(n_features_in, n_outputs, output_activation):
    import keras

    inputs = keras.Input((n_features_in,))
    outputs = keras.layers.Dense(n_outputs + 1, activation=output_activation)(inputs)
    return keras.Model(inputs, outputs)


def not_a_model_network(n_features_in, n_outputs, output_activation):
    return "not a model"


@pytest.fixture(scope="module")
def data(small_digits):
    X, y = small_digits
    return X[:200], y[:200]


@pytest.fixture
def fitted(data):
    return KerasDigitClassifier(**SMALL).fit(*data)


@pytest.fixture(scope="module")
def fitted_once(data):
    return KerasDigitClassifier(**SMALL).fit(*data)


def fitted_state(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") or k[0] == "_"}


class KeepsModel:
    """Check that a failing call leaves a fitted estimator exactly as it was."""

    def __init__(self, est, X):
        self.est, self.X = est, X
        self.state = fitted_state(est)
        self.params = est.get_params()
        self.proba = est.predict_proba(X)

    def check(self):
        self.est.set_params(**self.params)
        state = fitted_state(self.est)
        assert state.keys() == self.state.keys()
        assert all(state[k] is self.state[k] for k in state)
        proba = self.est.predict_proba(self.X)
        assert np.array_equal(proba, self.proba)


def bad_fit_inputs(X, y):
    """(X, y, fit keyword arguments) for each bad input, with the expected error."""
    nan_X = X.copy()
    nan_X[3, 5] = np.nan
    inf_X = X.copy()
    inf_X[7, 2] = np.inf
    nan_y = y.astype(float)
    nan_y[4] = np.nan
    strings_X = X.astype(object)
    strings_X[0, 0] = "dark"
    mixed_y = y.astype(object)
    mixed_y[y >= 5] = "big"  # numbers and strings
    n = len(y)
    return {
        "nan_X": (nan_X, y, {}, "Input X contains NaN"),
        "inf_X": (inf_X, y, {}, "Input X contains infinity"),
        "nan_y": (X, nan_y, {}, "Input y contains NaN"),
        "empty_X": (X[:0], y[:0], {}, r"0 sample\(s\) \(shape=\(0, 64\)\)"),
        "3d_X": (X.reshape(n, 8, 8), y, {}, "dim 3"),
        "1d_X": (X[:, 0], y, {}, "Expected 2D array, got 1D array"),
        "strings_X": (strings_X, y, {}, "could not convert string to float: 'dark'"),
        "complex_X": (X + 1j, y, {}, "Complex data not supported"),
        "length_mismatch": (
            X,
            y[:-1],
            {},
            rf"inconsistent numbers of samples: \[{n}, {n - 1}\]",
        ),
        "continuous_y": (X, y + 0.5, {}, "Unknown label type"),
        "mixed_label_types": (X, mixed_y, {}, "(?i)mix"),
        "negative_sample_weight": (
            X,
            y,
            {"sample_weight": -np.ones(n)},
            "Negative values in data passed to `sample_weight`",
        ),
        "zero_sample_weight": (
            X,
            y,
            {"sample_weight": np.zeros(n)},
            "at least one non-zero",
        ),
        "sample_weight_length": (
            X,
            y,
            {"sample_weight": np.ones(5)},
            rf"sample_weight.shape == \(5,\), expected \({n},\)",
        ),
        "nan_sample_weight": (
            X,
            y,
            {"sample_weight": np.full(n, np.nan)},
            "sample_weight contains NaN",
        ),
    }


CASES = list(bad_fit_inputs(np.zeros((10, 64)), np.arange(10)))


@pytest.mark.parametrize("case", CASES)
def test_bad_fit_input(case, data, fitted):
    X_bad, y_bad, kwargs, match = bad_fit_inputs(*data)[case]
    fresh = KerasDigitClassifier(**SMALL)
    with pytest.raises(ValueError, match=match):
        fresh.fit(X_bad, y_bad, **kwargs)
    assert vars(fresh).keys() == KerasDigitClassifier(**SMALL).__dict__.keys()
    with pytest.raises(NotFittedError):
        fresh.predict(data[0])
    keeps = KeepsModel(fitted, data[0])
    with pytest.raises(ValueError, match=match):
        fitted.fit(X_bad, y_bad, **kwargs)
    keeps.check()


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(learning_rate_init=-1), "'learning_rate_init' parameter"),
        (dict(hidden_layer_sizes=(8, 0)), r"hidden_layer_sizes .*\(8, 0\)"),
        (dict(hidden_layer_sizes=(8.5,)), r"hidden_layer_sizes .*\(8.5,\)"),
        (dict(solver="newton"), "'solver' parameter .* Got 'newton'"),
        (dict(activation="softmax"), "'activation' parameter .* Got 'softmax'"),
        (dict(batch_size=0), "'batch_size' parameter .* Got 0"),
        (dict(momentum=2), "'momentum' parameter .* Got 2"),
        (dict(validation_fraction=1.0), "'validation_fraction' parameter"),
        (dict(max_iter=0), "'max_iter' parameter .* Got 0"),
        (dict(alpha=-1.0), "'alpha' parameter .* Got -1.0"),
        (dict(n_iter_no_change=0), "'n_iter_no_change' parameter"),
        (dict(random_state="seed"), "'random_state' parameter"),
        (dict(network="dense"), "'network' parameter .* must be a callable"),
        (dict(callbacks="History"), "'callbacks' parameter"),
        (
            dict(early_stopping=True, validation_fraction=0.0),
            "validation_fraction",
        ),
        (dict(network=wrong_output_network), r"must output shape \(n_samples, 10\)"),
    ],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, dict) else "",
)
def test_invalid_parameters(params, match, data, fitted):
    X, y = data
    with pytest.raises(ValueError, match=match):
        KerasDigitClassifier(**{**SMALL, **params}).fit(X, y)
    keeps = KeepsModel(fitted, X)
    fitted.set_params(**params)
    with pytest.raises(ValueError, match=match):
        fitted.fit(X, y)
    keeps.check()


def test_network_returning_no_model(data, fitted):
    keeps = KeepsModel(fitted, data[0])
    fitted.set_params(network=not_a_model_network)
    with pytest.raises(TypeError, match="network must return a keras.Model, got str"):
        fitted.fit(*data)
    keeps.check()


def test_warm_start_with_new_classes(data, fitted):
    X, y = data
    keeps = KeepsModel(fitted, X)
    fitted.set_params(warm_start=True)
    with pytest.raises(ValueError, match="warm_start can only be used where `y`"):
        fitted.fit(X[y < 5], y[y < 5])
    keeps.check()


# -- partial_fit ---------------------------------------------------------------
def test_partial_fit_labels_outside_classes(data):
    X, y = data
    with pytest.raises(ValueError, match=r"y has labels \[5, 6, 7, 8, 9\] not in"):
        KerasDigitClassifier(**SMALL).partial_fit(X, y, classes=np.arange(5))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        KerasDigitClassifier(**SMALL).partial_fit(X, y)
    est = KerasDigitClassifier(**SMALL).partial_fit(X, y, classes=np.arange(10))
    keeps = KeepsModel(est, X)
    with pytest.raises(ValueError, match=r"y has labels \[11\] not in classes_"):
        est.partial_fit(X, np.where(y == 3, 11, y))
    keeps.check()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.partial_fit(np.full_like(X, np.nan), y)
    keeps.check()


def test_partial_fit_unavailable():
    est = KerasDigitClassifier(**{**SMALL, "solver": "lbfgs"})
    with pytest.raises(
        AttributeError,
        match="has no attribute 'partial_fit': .* only available for stochastic",
    ):
        est.partial_fit  # noqa: B018
    assert not hasattr(est, "partial_fit")


# -- predict -------------------------------------------------------------------
def test_predict_wrong_width(data, fitted):
    X, _ = data
    keeps = KeepsModel(fitted, X)
    for method in (fitted.predict, fitted.predict_proba, fitted.predict_log_proba):
        with pytest.raises(ValueError, match="X has 10 features, but .* expecting 64"):
            method(X[:, :10])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(np.full_like(X, np.nan))
    keeps.check()


@settings(max_examples=10, deadline=None)
@given(as_list=st.booleans(), kind=st.sampled_from(["U", "S"]))
def test_predict_refuses_strings_as_mlpclassifier(as_list, kind, data, fitted_once):
    """Strings are not converted silently (MLPClassifier's dtype="numeric");
    numbers in other dtypes (object, int) predict as floats."""
    X, _ = data
    text = X[:5].astype(kind)
    with pytest.raises(ValueError, match="not compatible with arrays of bytes/str"):
        fitted_once.predict(text.tolist() if as_list else text)
    expected = fitted_once.predict_proba(X[:5])
    np.testing.assert_array_equal(
        fitted_once.predict_proba(X[:5].astype(object)), expected
    )
    assert fitted_once.predict_proba((X[:5] * 16).astype(int)).dtype == np.float64


def test_predict_renamed_pandas_columns(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])
    est = KerasDigitClassifier(**SMALL).fit(frame, y)
    keeps = KeepsModel(est, frame)
    renamed = frame.rename(columns={"pixel_0": "pixel_zero"})
    with pytest.raises(ValueError, match="(?s)feature names should match.*pixel_zero"):
        est.predict(renamed)
    est.set_params(warm_start=True)
    with pytest.raises(ValueError, match="(?s)unseen at fit time.*pixel_zero"):
        est.fit(renamed, y)
    keeps.check()


def test_predict_before_fit(data):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        KerasDigitClassifier().predict(data[0])


# -- divergence ----------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [{}, {"shuffle": False, "nesterovs_momentum": False}],
    ids=["plain", "no_shuffle"],
)
def test_divergence_raises_and_keeps_the_model(extra, data):
    X, y = data
    X32 = (X * 16).astype(np.float32)
    fresh = KerasDigitClassifier(**{**SMALL, **DIVERGING, **extra})
    with pytest.raises(ValueError, match="Training diverged.*learning_rate_init"):
        fresh.fit(X32, y)
    assert not hasattr(fresh, "coefs_")
    est = KerasDigitClassifier(**{**SMALL, **extra}).fit(X32, y)
    keeps = KeepsModel(est, X32)
    est.set_params(**DIVERGING)
    with pytest.raises(ValueError, match="Training diverged"):
        est.fit(X32, y)
    keeps.check()
    assert np.isfinite(est.predict_proba(X32)).all()


def test_divergence_with_early_stopping_keeps_the_best_validated_weights(data):
    """As MLP: a diverging fit with early stopping keeps its best weights.

    The epochs whose outputs are not finite score NaN, never the best; a fit
    that diverges before any finite validation score raises as without early
    stopping.
    """
    X, y = data
    X32 = (X * 16).astype(np.float32)
    params = {**SMALL, **DIVERGING, "early_stopping": True}
    est = KerasDigitClassifier(**{**params, "learning_rate_init": 300.0})
    with pytest.warns(ConvergenceWarning, match="Training diverged.*Kept the weights"):
        est.fit(X32, y)
    assert np.isnan(est.validation_scores_[-1])
    assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    assert np.isfinite(est.predict_proba(X32)).all()
    first_epoch = KerasDigitClassifier(**{**params, "learning_rate_init": 1e15})
    with pytest.raises(ValueError, match="Training diverged"):
        first_epoch.fit(X32, y)


def test_divergence_with_callbacks(data):
    """The per-epoch path (callbacks run after every epoch) also stops."""
    import keras

    X, y = data
    X32 = (X * 16).astype(np.float32)
    seen = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(logs["loss"])
    )
    est = KerasDigitClassifier(**{**SMALL, **DIVERGING, "callbacks": [callback]})
    with pytest.raises(ValueError, match="Training diverged"):
        est.fit(X32, y)
    assert not hasattr(est, "coefs_")
    assert 0 < len(seen) < DIVERGING["max_iter"]


def test_partial_fit_divergence_keeps_the_model(data):
    X, y = data
    X32 = (X * 16).astype(np.float32)
    est = KerasDigitClassifier(**{**SMALL, **DIVERGING})
    est.partial_fit(X32, y, classes=np.arange(10))
    keeps = KeepsModel(est, X32)
    with pytest.raises(ValueError, match="Training diverged"):
        for _ in range(DIVERGING["max_iter"]):
            est.partial_fit(X32, y)
            keeps = KeepsModel(est, X32)  # the last good state
    keeps.check()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "identity", "tanh", "logistic"])
def test_probabilities_are_never_silently_nan(activation, dtype, data):
    """Extreme (finite) inputs: finite probabilities, or a clear error."""
    X, y = data
    X = X.astype(dtype)
    est = KerasDigitClassifier(**{**SMALL, "activation": activation}).fit(X, y)
    big = np.finfo(dtype).max
    for scale in (1e30, big / 2, big):
        X_big = np.clip(X.astype(np.float64) * scale, -big, big).astype(dtype)
        X_big[:, ::3] *= -1
        try:
            proba = est.predict_proba(X_big)
        except ValueError as exc:
            assert "finite" in str(exc) or "too large" in str(exc)
            continue
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_X_let_through_by_assume_finite_is_named(value, data, fitted):
    X, _ = data
    X = X[:5].copy()
    X[2, 7] = value
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r"row 2\): X holds NaN or infinite"):
            fitted.predict_proba(X)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_fit_on_non_finite_X_let_through_by_assume_finite_names_it(
    value, solver, data, fitted
):
    X, y = data
    X = X.copy()
    X[3, 5] = value
    before = fitted_state(fitted)
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r"X holds NaN or infinite values"):
            fitted.set_params(solver=solver).fit(X, y)
    assert fitted_state(fitted).keys() == before.keys()
    np.testing.assert_array_equal(fitted.coefs_[0], before["_state"].weights.coefs[0])


def test_a_regressor_fit_on_non_finite_y_let_through_by_assume_finite_names_it(
    data,
):
    X, y = data
    y = y.astype(float)
    y[4] = np.inf
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r" y holds NaN or infinite values"):
            KerasDigitRegressor(**SMALL).fit(X, y)


@pytest.mark.parametrize(
    "fraction, problem",
    [(0.0, "leaves no validation samples of 20"), (0.99, "leaves no training samples")],
)
def test_an_empty_early_stopping_split_says_which_set_is_empty(
    small_digits, fraction, problem
):
    X, y = small_digits
    est = KerasDigitClassifier(early_stopping=True, validation_fraction=fraction)
    with pytest.raises(ValueError, match=f"validation_fraction={fraction} {problem}"):
        est.fit(X[:20], y[:20])

"""KerasDigitRegressor: MLPRegressor's twin, on the classifier's base."""

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone, is_regressor
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_keras_digits import KerasDigitRegressor, NetworkBuilder
from sk_keras_digits._base import BaseKerasMLP
from tests._helpers import IGNORE_CONVERGENCE, TENSORFLOW_SESSION, compute_scope

pytestmark = IGNORE_CONVERGENCE

#: A few epochs of a small network (multi-output targets learn well enough).
QUICK = dict(hidden_layer_sizes=(10,), max_iter=30, random_state=0)


class TwoLayers(NetworkBuilder):
    """A custom regression network; records the output activation it receives."""

    def __init__(self, units=8):
        self.units = units

    def build(self, n_features_in, n_outputs, output_activation):
        import keras

        received.append(output_activation)
        inputs = keras.Input(shape=(n_features_in,))
        h = keras.layers.Dense(self.units, activation="tanh")(inputs)
        h = keras.layers.Dense(self.units, activation="tanh")(h)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
        return keras.Model(inputs, outputs)


class NoExponential(NetworkBuilder):
    """A Poisson network that forgets its output activation."""

    def build(self, n_features_in, n_outputs, output_activation):
        import keras

        inputs = keras.Input(shape=(n_features_in,))
        return keras.Model(inputs, keras.layers.Dense(n_outputs)(inputs))


received = []


# -- the MLPRegressor twin ----------------------------------------------------


@TENSORFLOW_SESSION
def test_class_is_a_regressor_on_the_shared_base():
    assert is_regressor(KerasDigitRegressor())
    assert issubclass(KerasDigitRegressor, BaseKerasMLP)
    mro = KerasDigitRegressor.__mro__
    assert mro.index(BaseKerasMLP) > 1  # RegressorMixin comes first
    assert KerasDigitRegressor().__sklearn_tags__().target_tags.multi_output


@TENSORFLOW_SESSION
def test_parameters_are_mlpregressors_with_the_same_defaults():
    ours = inspect.signature(KerasDigitRegressor).parameters
    theirs = inspect.signature(MLPRegressor).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    assert list(ours)[len(theirs) :] == ["network", "callbacks"]
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
        assert ours[name].kind == parameter.kind, name


def _twin_params(settings):
    params = dict(
        hidden_layer_sizes=(12,),
        shuffle=False,
        random_state=0,
        max_iter=25,
        batch_size=64,
    )
    params.update(settings)
    return params


TWIN_SETTINGS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.01),
    "invscaling": dict(
        solver="sgd", learning_rate="invscaling", learning_rate_init=0.05
    ),
    "adaptive": dict(
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.01,
        tol=0.05,
        n_iter_no_change=2,
        max_iter=40,
    ),
    "momentum": dict(
        solver="sgd",
        nesterovs_momentum=False,
        activation="tanh",
        learning_rate_init=0.01,
    ),
    "adam": dict(solver="adam", learning_rate_init=0.01, activation="logistic"),
    "deep": dict(solver="adam", hidden_layer_sizes=(9, 6), learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs", max_iter=15),
}


#: Every setting under the squared error; under the Poisson deviance, one
#: of each solver (its loss and output are what differ).
TWIN_CASES = [(name, "squared_error") for name in TWIN_SETTINGS] + [
    (name, "poisson") for name in ("invscaling", "adam", "lbfgs")
]


@pytest.mark.parametrize(("settings", "loss"), TWIN_CASES)
def test_trains_exactly_as_mlpregressor_without_shuffling(
    digit_targets, settings, loss
):
    """Same init, loss, gradients, solvers and stopping rules as MLPRegressor.

    Without shuffling the batches are the same, so both reach the same
    weights, loss curve and iteration count, to rounding (float64).
    """
    X, y, Y = digit_targets
    target = y if loss == "poisson" else Y / Y.std(axis=0)
    params = _twin_params(dict(TWIN_SETTINGS[settings], loss=loss))
    ours = KerasDigitRegressor(**params).fit(X, target)
    theirs = MLPRegressor(**params).fit(X, target)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_
    tolerance = dict(rtol=1e-7, atol=1e-9)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, **tolerance)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, **tolerance)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, **tolerance)
        assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), **tolerance)


@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", learning_rate_init=0.01),
        dict(solver="adam", learning_rate_init=0.01, loss="poisson"),
        dict(solver="lbfgs", max_iter=5),
    ],
    ids=["sgd", "adam-poisson", "lbfgs"],
)
def test_float32_trains_as_mlpregressor_in_float32(digit_targets, settings):
    """In float32 both compute in float32: equal to float32 rounding."""
    X, y, _ = digit_targets
    X32 = X.astype(np.float32)
    params = _twin_params(settings)
    ours = KerasDigitRegressor(**params).fit(X32, y)
    theirs = MLPRegressor(**params).fit(X32, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        # A few float32 roundings (about 1e-7 each) over 25 epochs.
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)
    predicted = ours.predict(X32)
    assert predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, theirs.predict(X32), rtol=0, atol=2e-5)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-5)


def test_early_stopping_scores_r2_as_mlpregressor(digit_targets):
    X, _, Y = digit_targets
    params = _twin_params(
        dict(
            solver="adam",
            learning_rate_init=0.01,
            early_stopping=True,
            n_iter_no_change=3,
            max_iter=200,
        )
    )
    target = Y / Y.std(axis=0)
    ours = KerasDigitRegressor(**params).fit(X, target)
    theirs = MLPRegressor(**params).fit(X, target)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    assert ours.best_loss_ is None
    assert ours.history_["val_r2"] == ours.validation_scores_
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7)


# -- targets and predictions ---------------------------------------------------


@TENSORFLOW_SESSION
def test_predict_has_the_shape_of_the_targets(digit_targets):
    X, y, Y = digit_targets
    single = KerasDigitRegressor(**QUICK).fit(X, y)
    assert single.n_outputs_ == 1
    assert single.predict(X).shape == (len(X),)
    assert single.out_activation_ == "identity"
    with pytest.warns(DataConversionWarning):
        column = KerasDigitRegressor(**QUICK).fit(X, y[:, None])
    assert column.predict(X).shape == (len(X),)
    np.testing.assert_array_equal(column.predict(X), single.predict(X))
    multi = KerasDigitRegressor(**QUICK).fit(X, Y)
    assert multi.n_outputs_ == 2
    assert multi.predict(X).shape == (len(X), 2)
    assert multi.score(X, Y) == pytest.approx(r2_score(Y, multi.predict(X)))


@TENSORFLOW_SESSION
def test_poisson_predicts_positive_means_and_refuses_negative_targets(digit_targets):
    X, y, _ = digit_targets
    est = KerasDigitRegressor(loss="poisson", **QUICK).fit(X, y)
    assert est.out_activation_ == "exp"
    before = est.predict(X)
    assert (before > 0).all()
    with pytest.raises(ValueError, match="loss='poisson' requires non-negative"):
        est.fit(X, y - 1)
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match="non-negative"):
        KerasDigitRegressor(loss="poisson").fit(X, -y)


@TENSORFLOW_SESSION
def test_continuing_a_fit_refuses_other_targets_or_loss(digit_targets):
    X, y, Y = digit_targets
    est = KerasDigitRegressor(solver="sgd", **QUICK).fit(X, y)
    before = est.predict(X)
    with pytest.raises(ValueError, match="2 target column.*fitted on 1"):
        est.partial_fit(X, Y)
    est.set_params(warm_start=True, loss="poisson")
    with pytest.raises(ValueError, match="cannot change its loss"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="partial_fit continues"):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)
    est.set_params(loss="squared_error", max_iter=5)
    est.fit(X, y)  # continues from the previous weights
    assert est.n_iter_ == 5


@TENSORFLOW_SESSION
def test_partial_fit_equals_fit_epoch_by_epoch(digit_targets):
    X, y, _ = digit_targets
    params = dict(solver="sgd", learning_rate_init=0.01, shuffle=False, **QUICK)
    params["max_iter"] = 4
    fitted = KerasDigitRegressor(**params).fit(X, y)
    incremental = KerasDigitRegressor(**params)
    for _ in range(4):
        incremental.partial_fit(X, y)
    np.testing.assert_allclose(incremental.predict(X), fitted.predict(X), rtol=1e-12)
    assert not hasattr(KerasDigitRegressor(solver="lbfgs"), "partial_fit")


@TENSORFLOW_SESSION
def test_sample_weight_of_k_acts_as_k_copies(digit_targets):
    X, y, _ = digit_targets
    X, y = X[:60], y[:60]
    weights = np.arange(60) % 3
    params = dict(solver="lbfgs", hidden_layer_sizes=(6,), max_iter=20, random_state=0)
    weighted = KerasDigitRegressor(**params).fit(X, y, sample_weight=weights)
    repeated = KerasDigitRegressor(**params).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)
    )
    np.testing.assert_allclose(
        weighted.predict(X), repeated.predict(X), rtol=1e-6, atol=1e-8
    )


# -- in scikit-learn's tools -----------------------------------------------------


@TENSORFLOW_SESSION
def test_grid_search_over_hidden_size_in_a_pipeline(digit_targets):
    X, _, Y = digit_targets
    ink = Y[:, 1]
    params = dict(solver="lbfgs", max_iter=30, alpha=1.0, random_state=0)
    grid = {"estimator__hidden_layer_sizes": [(5,), (20,)]}
    searches = [
        GridSearchCV(
            Pipeline([("scale", StandardScaler()), ("estimator", estimator)]),
            grid,
            cv=3,
        ).fit(X, ink)
        for estimator in (KerasDigitRegressor(**params), MLPRegressor(**params))
    ]
    ours, theirs = searches
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"]
    )
    assert ours.best_score_ > 0.8
    scores = cross_val_score(ours.best_estimator_, X, ink, cv=3)
    assert scores.shape == (3,) and (scores > 0.7).all()


def test_custom_network_receives_the_output_activation_of_the_loss(digit_targets):
    X, y, Y = digit_targets
    received.clear()
    params = dict(solver="adam", learning_rate_init=0.01, max_iter=5, random_state=0)
    est = KerasDigitRegressor(network=TwoLayers(units=6), **params).fit(X, Y)
    assert est.predict(X).shape == (len(X), 2)
    assert len(est.coefs_) == 3 and est.coefs_[0].shape == (64, 6)
    assert est.get_params()["network__units"] == 6
    poisson = KerasDigitRegressor(loss="poisson", network=TwoLayers(), **params)
    assert (poisson.fit(X, y).predict(X) > 0).all()
    assert received[0] == "linear" and received[-1] == "exponential"
    with pytest.raises(ValueError, match="must output positive values.*exponential"):
        clone(poisson).set_params(network=NoExponential()).fit(X, y)


def test_keras_optimizer_as_solver_and_model_as_the_trained_network(digit_targets):
    import keras

    X, _, Y = digit_targets
    solver = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=1e-4)
    est = KerasDigitRegressor(solver=solver, hidden_layer_sizes=(8,), max_iter=5)
    est.set_params(random_state=0).fit(X, Y)
    assert not solver.built  # the user's optimizer is never built or changed
    with compute_scope("float64"):  # float64 on JAX needs its scope
        predicted = keras.ops.convert_to_numpy(est.model_(X))
    np.testing.assert_allclose(predicted, est.predict(X), rtol=1e-10)
    assert est.model_.layers[-1].get_config()["activation"] == "linear"


# -- divergence, callbacks -----------------------------------------------------------


#: A fit whose loss diverges within a few epochs.
DIVERGING = dict(
    hidden_layer_sizes=(10,),
    activation="identity",
    solver="sgd",
    learning_rate_init=0.05,
    max_iter=20,
    random_state=0,
)


@TENSORFLOW_SESSION
def test_divergence_raises_and_keeps_the_model(digit_targets):
    X, y, _ = digit_targets
    est = KerasDigitRegressor(**{**DIVERGING, "learning_rate_init": 1e-3}).fit(X, y)
    before = est.predict(X)
    est.set_params(**DIVERGING)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match="or scale X and y"):  # a regressor's y too
        est.set_params(learning_rate_init=1e-3).fit(X, y * 1e200)
    np.testing.assert_array_equal(est.predict(X), before)


@TENSORFLOW_SESSION
@settings(max_examples=20, deadline=None)
@given(exponent=st.floats(38.54, 300), negative=st.booleans())
def test_targets_beyond_float32_with_float32_X_are_refused_naming_y(
    exponent, negative, digit_targets
):
    """The network computes in X's dtype: a finite float64 target beyond
    float32's range would become infinite, so it is refused, naming y."""
    X, y, _ = digit_targets
    y = y.astype(np.float64)
    y[3] = (-1 if negative else 1) * 10.0**exponent
    est = KerasDigitRegressor(max_iter=2)
    with pytest.raises(ValueError, match=r"y holds values too large for float32"):
        est.fit(X.astype(np.float32), y)
    assert not hasattr(est, "coefs_")


def test_divergence_with_early_stopping_keeps_the_best_weights(digit_targets):
    """As MLPRegressor: the best validated weights, NaN for the diverged epoch."""
    X, y, _ = digit_targets
    est = KerasDigitRegressor(**DIVERGING, early_stopping=True)
    with pytest.warns(ConvergenceWarning, match="Training diverged.*Kept the weights"):
        est.fit(X, y)
    assert np.isnan(est.validation_scores_[-1])
    assert np.isnan(est.loss_curve_[-1]) or np.isinf(est.loss_curve_[-1])
    assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict(X)).all()


@TENSORFLOW_SESSION
def test_callbacks_log_the_validation_r2(digit_targets):
    import keras

    X, y, _ = digit_targets
    logs = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, log: logs.append(dict(log))
    )
    est = KerasDigitRegressor(
        early_stopping=True, callbacks=[callback], **dict(QUICK, max_iter=3)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert [log["val_r2"] for log in logs] == est.validation_scores_
    assert set(est.history_) == {"loss", "learning_rate", "val_r2"}


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_targets_that_are_not_numbers_are_refused(loss, digit_targets):
    X, y, _ = digit_targets
    est = KerasDigitRegressor(loss=loss, max_iter=2)
    with pytest.raises(ValueError, match="y must hold numbers for a regressor"):
        est.fit(X, y.astype(str))

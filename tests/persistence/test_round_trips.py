"""Round trips through save and load: estimators, targets, parameters, networks.

Classifiers and regressors alike.
"""

import functools
import io
import json
import os
import stat
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import sk_keras_digits
from sk_keras_digits import (
    KerasDigitClassifier,
    KerasDigitRegressor,
    ModelFileError,
    _persistence,
    load,
    save,
)
from tests._helpers import IGNORE_CONVERGENCE, SMALL, compute_scope
from tests._networks import SmallDense
from tests.persistence._regression import SMALL_REGRESSION, counts
from tests.persistence._support import (
    Scale,
    assert_same_estimator,
    assert_same_params,
    assert_same_state,
    custom_layer_network,
    dropout_network,
    lambda_network,
    saved_custom_file,
    wide_network,
)

pytestmark = IGNORE_CONVERGENCE


# -- round trips -----------------------------------------------------------------
def test_round_trip_dense(dense, dense_file, data):
    X, _ = data
    loaded = load(dense_file)
    assert type(loaded) is KerasDigitClassifier
    assert_same_estimator(dense, loaded, X)
    assert_same_params(dense, loaded)
    # The fitted state is the saved one, non-finite floats included
    # (best_score is -inf).
    assert_same_state(dense._state, loaded._state)
    assert loaded._state.training.progress.best_score == -np.inf
    # model_ is built from the fitted state, with the same weights.
    assert loaded.model_.name == "mlp"
    with compute_scope("float64"):
        outputs = keras.ops.convert_to_numpy(loaded.model_(X))
    np.testing.assert_allclose(outputs, dense.predict_proba(X), rtol=1e-12)


def test_file_layout(dense, dense_file):
    with zipfile.ZipFile(dense_file) as archive:
        assert archive.namelist() == ["manifest.json", "state.npz", "model.keras"]
        manifest = json.loads(
            archive.read("manifest.json"), parse_constant=pytest.fail
        )  # strict JSON: no NaN or Infinity tokens
        with np.load(io.BytesIO(archive.read("state.npz")), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        with zipfile.ZipFile(io.BytesIO(archive.read("model.keras"))) as inner:
            assert sorted(inner.namelist()) == ["config.json", "metadata.json"]
    assert manifest["format"] == "sk_keras_digits.model"
    assert manifest["format_version"] == _persistence.FORMAT_VERSION == 2
    assert manifest["estimator"] == "sk_keras_digits.KerasDigitClassifier"
    assert manifest["versions"]["sk_keras_digits"] == sk_keras_digits.__version__
    assert manifest["params"]["solver"] == "sgd"
    assert manifest["params"]["hidden_layer_sizes"] == {"tuple": [8]}
    assert manifest["network"] is None and manifest["callbacks"] is None
    assert manifest["n_features_in"] == 64
    # The fitted state, field by field; every array stored once, declared.
    state = manifest["state"]
    assert state["record"] == "FittedState"
    assert state["labels"] == {
        "record": "LabelEncoding",
        "classes": {"array": "labels.classes"},
        "kind": "multiclass",
    }
    assert state["training"]["progress"]["best_score"] == {"float": "-inf"}
    assert state["training"]["solver"]["record"] == "SGDState"
    assert (
        sorted(arrays)
        == sorted(manifest["arrays"])
        == [
            "labels.classes",
            "training.solver.velocity",
            "training.weights.params.0",
            "training.weights.params.1",
            "training.weights.params.2",
            "training.weights.params.3",
        ]
    )
    for key, array in arrays.items():
        assert manifest["arrays"][key] == {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
        }
    assert np.array_equal(arrays["training.weights.params.0"], dense.coefs_[0])


@pytest.mark.parametrize(
    "kind",
    ["str", "object_str", "binary_int", "bool", "multilabel", "float32", "pandas"],
)
def test_round_trip_targets_and_inputs(kind, data, tmp_path):
    X, y = data
    names = np.array(["zero", "one", "two", "three", "four"] * 2)
    if kind == "str":
        y = names[y]
    elif kind == "object_str":
        y = names[y].astype(object)
    elif kind == "binary_int":
        y = np.where(y % 2 == 0, -3, 7)
    elif kind == "bool":
        y = y > 4
    elif kind == "multilabel":
        y = np.c_[y % 2, y > 4, y == 0].astype(int)
    elif kind == "float32":
        X = X.astype(np.float32)
    elif kind == "pandas":
        X = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])
    est = KerasDigitClassifier(**SMALL).fit(X, y)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert_same_estimator(est, loaded, X)
    assert_same_params(est, loaded)
    if kind == "float32":
        assert loaded.coefs_[0].dtype == np.float32
    if kind == "pandas":
        renamed = X.rename(columns={"pixel_0": "other"})
        with pytest.raises(ValueError, match="feature names should match"):
            loaded.predict(renamed)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="lbfgs", max_iter=20),
        dict(early_stopping=True, validation_fraction=0.2),
        dict(learning_rate="adaptive", momentum=0.5, nesterovs_momentum=False),
        dict(random_state=np.random.RandomState(42)),
        dict(hidden_layer_sizes=[6, 5], activation="tanh", n_iter_no_change=np.inf),
    ],
    ids=["adam", "lbfgs", "early_stopping", "adaptive", "RandomState", "list_inf"],
)
def test_round_trip_parameters(params, data, tmp_path):
    X, y = data
    est = KerasDigitClassifier(**{**SMALL, **params}).fit(X, y)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert_same_estimator(est, loaded, X)
    assert_same_params(est, loaded)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_loaded_estimator_continues_training_identically(solver, data, tmp_path):
    """Solver and loop state are saved: partial_fit and warm_start resume."""
    X, y = data
    est = KerasDigitClassifier(**{**SMALL, "solver": solver}).fit(X, y)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    est.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert_same_estimator(est, loaded, X)
    est.set_params(warm_start=True).fit(X, y)
    loaded.set_params(warm_start=True).fit(X, y)
    assert_same_estimator(est, loaded, X)


def test_loaded_estimator_refits(dense_file, data):
    X, y = data
    loaded = load(dense_file)
    refit = loaded.fit(X[::-1], y[::-1])
    fresh = KerasDigitClassifier(**SMALL).fit(X[::-1], y[::-1])
    assert refit is loaded
    assert_same_estimator(fresh, refit, X)


def test_save_replaces_existing_file_and_keeps_its_mode(dense, data, tmp_path):
    X, y = data
    path = tmp_path / "model.skd"
    other = KerasDigitClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    save(other, path)
    os.chmod(path, 0o640)
    save(dense, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert np.array_equal(load(path).predict_proba(X), dense.predict_proba(X))
    assert sorted(os.listdir(tmp_path)) == ["model.skd"]


def test_save_refuses_unfitted_and_foreign_objects(tmp_path):
    with pytest.raises(NotFittedError):
        save(KerasDigitClassifier(), tmp_path / "model.skd")
    with pytest.raises(NotFittedError):
        save(KerasDigitRegressor(), tmp_path / "model.skd")
    with pytest.raises(TypeError, match="KerasDigitClassifier, a KerasDigitRegressor"):
        save({"not": "an estimator"}, tmp_path / "model.skd")
    assert not os.listdir(tmp_path)


# -- regressors ----------------------------------------------------------------
def test_regressor_round_trip_and_file_layout(regressor, regressor_file, regression):
    X, _ = regression
    loaded = load(regressor_file)
    assert type(loaded) is KerasDigitRegressor
    assert_same_estimator(regressor, loaded, X)
    assert_same_params(regressor, loaded)
    assert_same_state(regressor._state, loaded._state)
    assert loaded.predict(X).shape == (len(X),)
    assert loaded.out_activation_ == "identity" and loaded.n_outputs_ == 1
    with zipfile.ZipFile(regressor_file) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format_version"] == 2
    assert manifest["estimator"] == "sk_keras_digits.KerasDigitRegressor"
    assert manifest["params"]["loss"] == "squared_error"
    assert "class_weight" not in manifest["params"]
    assert manifest["state"]["labels"] == {
        "record": "RegressionTargets",
        "n_outputs": 1,
        "loss": "squared_error",
    }
    assert not [key for key in manifest["arrays"] if key.startswith("labels")]


@pytest.mark.parametrize(
    "params, targets",
    [
        (dict(solver="adam"), "2d"),
        (dict(solver="lbfgs", max_iter=5), "2d"),
        (dict(loss="poisson"), "counts"),
        (dict(loss="poisson", solver="adam"), "counts_2d"),
        (
            dict(
                early_stopping=True,
                validation_fraction=0.3,
                learning_rate_init=0.5,
                max_iter=8,
            ),
            "1d",
        ),
        (dict(random_state=np.random.RandomState(1)), "float32"),
    ],
    ids=["adam_2d", "lbfgs_2d", "poisson", "poisson_adam_2d", "negative_r2", "float32"],
)
def test_regressor_round_trips(params, targets, regression, tmp_path):
    X, Y = regression
    y = {
        "1d": Y[:, 0],
        "2d": Y,
        "counts": counts(Y[:, 0]),
        "counts_2d": counts(Y),
        "float32": Y[:, 0],
    }[targets]
    if targets == "float32":
        X = X.astype(np.float32)
    est = KerasDigitRegressor(**{**SMALL_REGRESSION, **params}).fit(X, y)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert_same_estimator(est, loaded, X)
    assert_same_params(est, loaded)
    assert_same_state(est._state, loaded._state)
    assert loaded.predict(X).shape == y.shape
    if "early_stopping" in params:
        # R^2 below 0 (worse than the mean) is a score fit reports.
        assert min(loaded.validation_scores_) < 0
        assert loaded.history_["val_r2"] == est.validation_scores_


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_loaded_regressor_continues_training_identically(solver, regression, tmp_path):
    X, Y = regression
    est = KerasDigitRegressor(**{**SMALL_REGRESSION, "solver": solver}).fit(X, Y)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    est.partial_fit(X, Y)
    loaded.partial_fit(X, Y)
    assert_same_estimator(est, loaded, X)
    est.set_params(warm_start=True).fit(X, Y)
    loaded.set_params(warm_start=True).fit(X, Y)
    assert_same_estimator(est, loaded, X)
    with pytest.raises(ValueError, match="fitted on 2"):
        loaded.partial_fit(X, Y[:, 0])


def test_regressor_with_a_custom_network_round_trip(regression, tmp_path):
    """A NetworkBuilder (batch normalisation's buffers), with and without it."""
    X, Y = regression
    # At SMALL_REGRESSION's rate the Poisson loss diverges on JAX, where Keras'
    # batch normalisation computes in float32 (docs/custom_networks.rst).
    params = {
        **SMALL_REGRESSION,
        "network": SmallDense(units=4),
        "loss": "poisson",
        "learning_rate_init": 0.01,
    }
    est = KerasDigitRegressor(**params).fit(X, counts(Y))
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert isinstance(loaded.network, _persistence.SavedNetwork)
    assert_same_estimator(est, loaded, X)
    assert_same_params(est, loaded, skip=("network",))
    assert_same_state(est._state, loaded._state)
    assert loaded.model_.layers[-1].get_config()["activation"] == "exponential"
    again = load(tmp_path / "model.skd", network=SmallDense(units=4))
    assert_same_estimator(est, again, X)
    assert_same_params(est, again)
    with pytest.raises(ValueError, match="builds trainable weights of shapes"):
        load(tmp_path / "model.skd", network=SmallDense(units=3))


def test_regressor_after_a_diverged_epoch_round_trips(regression, tmp_path):
    """Early stopping keeps the best weights of a fit whose loss diverges: its
    last loss and score are NaN, which a file holds."""
    X, Y = regression
    params = dict(early_stopping=True, validation_fraction=0.3, max_iter=3)
    est = KerasDigitRegressor(**{**SMALL_REGRESSION, **params}).fit(X, Y[:, 0])
    history = est._state.history
    # The history of a fit whose last epoch diverged (its solver's state aside:
    # see the next test).
    est._state = est._state._replace(
        history=history._replace(
            losses=(*history.losses[:-1], np.nan),
            scores=(*history.scores[:-1], np.nan),
            loss=np.nan,
        )
    )
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert np.isnan(loaded.loss_) and np.isnan(loaded.validation_scores_[-1])
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert_same_state(est._state, loaded._state)


def test_regressor_fitted_through_a_divergence_saves_and_continues(
    regression, tmp_path
):
    """Early stopping keeps the best weights of a diverging fit, and a fresh
    solver state (the diverged moments are dropped): it saves, loads and
    continues with partial_fit."""
    X, Y = regression
    params = dict(
        early_stopping=True,
        validation_fraction=0.3,
        learning_rate_init=3.0,
        momentum=0.9,
        n_iter_no_change=30,
        max_iter=30,
    )
    est = KerasDigitRegressor(**{**SMALL_REGRESSION, **params})
    with pytest.warns(ConvergenceWarning, match="Training diverged"):
        est.fit(X, Y[:, 0])
    assert np.isnan(est.loss_)
    save(est, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert np.array_equal(loaded.predict(X), est.predict(X))
    loaded.set_params(early_stopping=False, learning_rate_init=1e-3)
    loaded.partial_fit(X, Y[:, 0])
    assert np.isfinite(loaded.predict(X)).all()


# -- custom networks -------------------------------------------------------------
@pytest.fixture(scope="module")
def dropout_fitted(data):
    return KerasDigitClassifier(**{**SMALL, "network": dropout_network}).fit(*data)


def test_custom_network_round_trip_without_builder(dropout_fitted, data, tmp_path):
    X, y = data
    save(dropout_fitted, tmp_path / "model.skd")
    loaded = load(tmp_path / "model.skd")
    assert isinstance(loaded.network, _persistence.SavedNetwork)
    assert_same_estimator(dropout_fitted, loaded, X)
    assert_same_params(dropout_fitted, loaded, skip=("network",))
    # The buffers (Dropout's seed state) come from state.npz.
    assert_same_state(dropout_fitted._state, loaded._state)
    saved_buffers = dropout_fitted._state.weights.buffers
    assert len(saved_buffers) == 1
    model_buffers = [v.numpy() for v in loaded.model_.non_trainable_variables]
    for saved, restored in zip(saved_buffers, model_buffers, strict=True):
        assert np.array_equal(saved, restored)
    # The architecture rebuilt from the file refits exactly as the builder.
    fresh = KerasDigitClassifier(**{**SMALL, "network": dropout_network}).fit(X, y)
    assert_same_estimator(fresh, loaded.fit(X, y), X)
    # A second round trip gives an equal SavedNetwork.
    save(loaded, tmp_path / "again.skd")
    assert load(tmp_path / "again.skd").network == loaded.network


def test_custom_network_round_trip_with_builder(dropout_fitted, data, tmp_path):
    X, y = data
    save(dropout_fitted, tmp_path / "model.skd")
    with zipfile.ZipFile(tmp_path / "model.skd") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert (
        manifest["network"]["name"] == f"{dropout_network.__module__}.dropout_network"
    )
    loaded = load(tmp_path / "model.skd", network=dropout_network)
    assert loaded.network is dropout_network
    assert_same_estimator(dropout_fitted, loaded, X)
    assert_same_params(dropout_fitted, loaded)


def test_partial_network_round_trip(data, tmp_path):
    X, y = data
    network = functools.partial(wide_network, units=5)
    est = KerasDigitClassifier(**{**SMALL, "network": network}).fit(X, y)
    save(est, tmp_path / "model.skd")
    with zipfile.ZipFile(tmp_path / "model.skd") as archive:
        described = json.loads(archive.read("manifest.json"))["network"]
    assert described == {
        "name": f"{wide_network.__module__}.wide_network",
        "kind": "partial",
    }
    assert_same_estimator(est, load(tmp_path / "model.skd", network=network), X)
    assert_same_estimator(est, load(tmp_path / "model.skd"), X)


def test_load_checks_the_network_argument(dense_file, data, tmp_path):
    X, y = data
    with pytest.raises(ValueError, match="default network"):
        load(dense_file, network=wide_network)
    est = KerasDigitClassifier(**{**SMALL, "network": wide_network}).fit(X, y)
    save(est, tmp_path / "model.skd")
    with pytest.raises(ValueError, match=r"shapes \[\(64, 6\), \(6,\)"):
        load(tmp_path / "model.skd", network=functools.partial(wide_network, units=6))


def test_lambda_network_is_refused_unless_allowed(data, tmp_path):
    X, y = data
    est = KerasDigitClassifier(**{**SMALL, "network": lambda_network}).fit(X, y)
    path = tmp_path / "lambda.skd"
    save(est, path)
    with pytest.raises(ModelFileError, match="Lambda layer") as info:
        load(path)
    assert str(path) in str(info.value)
    assert "allow_unsafe=True" in str(info.value)
    assert_same_estimator(est, load(path, allow_unsafe=True), X)
    # The caller's own builder needs no code from the file.
    assert_same_estimator(est, load(path, network=lambda_network), X)


@pytest.fixture(scope="module")
def lambda_file(data, tmp_path_factory):
    return saved_custom_file(lambda_network, data, tmp_path_factory, "lambda")


@settings(max_examples=25, deadline=None)
@given(
    allow_unsafe=st.one_of(
        st.text(),
        st.integers(),
        st.floats(allow_nan=True),
        st.lists(st.integers(), max_size=2),
        st.none(),
        st.sampled_from(["no", "False", "false", "0", "yes", 1, 0, 1.0]),
    )
)
def test_only_a_boolean_allow_unsafe_is_taken(allow_unsafe, lambda_file):
    """A truthy string such as "no" never turns Keras' safe mode off."""
    with pytest.raises(TypeError, match="load's allow_unsafe should be True or False"):
        load(lambda_file, allow_unsafe=allow_unsafe)
    assert load(lambda_file, allow_unsafe=np.bool_(True)).network is not None


@pytest.mark.parametrize(
    "argument, value, expected",
    [
        ("callbacks", 5, "a list or None"),
        ("callbacks", (keras.callbacks.History(),), "a list or None"),
        ("custom_objects", 5, "a dict or None"),
        ("custom_objects", ["Dense"], "a dict or None"),
        ("network", "wide_network", "a callable or None"),
    ],
)
def test_load_arguments_of_the_wrong_type_are_refused_first(
    argument, value, expected, dense_file
):
    with pytest.raises(TypeError, match=rf"load's {argument} should be {expected}"):
        load(dense_file, **{argument: value})


def test_unknown_custom_layer_is_refused_unless_given(data, tmp_path):
    X, y = data
    est = KerasDigitClassifier(**{**SMALL, "network": custom_layer_network}).fit(X, y)
    path = tmp_path / "custom.skd"
    save(est, path)
    with pytest.raises(ModelFileError, match="custom class 'Scale'") as info:
        load(path)
    assert "custom_objects" in str(info.value)
    loaded = load(path, custom_objects={"Scale": Scale})
    assert_same_estimator(est, loaded, X)
    assert_same_estimator(est, load(path, network=custom_layer_network), X)


def test_callbacks_are_named_not_stored(data, tmp_path):
    X, y = data
    callback = keras.callbacks.History()
    est = KerasDigitClassifier(**{**SMALL, "callbacks": [callback]}).fit(X, y)
    save(est, tmp_path / "model.skd")
    with pytest.warns(UserWarning, match="History"):
        loaded = load(tmp_path / "model.skd")
    assert loaded.callbacks is None
    assert_same_estimator(est, loaded, X)
    again = load(tmp_path / "model.skd", callbacks=[callback])
    assert again.get_params()["callbacks"] == [callback]

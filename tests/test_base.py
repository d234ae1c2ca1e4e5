"""The shared base: the fitted record hooks persistence uses, prediction's checks."""

import warnings

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.validation import validate_data

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor
from sk_keras_digits._state import FittedEstimator
from tests._helpers import TENSORFLOW_SESSION, assert_same_weights


@pytest.fixture(scope="module")
def fitted(small_digits):
    X, y = small_digits
    return KerasDigitClassifier(hidden_layer_sizes=[7], max_iter=3, random_state=0).fit(
        X, y
    )


def test_a_record_restores_an_equal_estimator(fitted, small_digits):
    X, _ = small_digits
    record = fitted._fitted_record()
    assert isinstance(record, FittedEstimator)
    assert record.hidden_layer_sizes == (7,) and record.n_features_in == 64
    restored = KerasDigitClassifier._from_fitted_record(record)
    assert restored.get_params() == fitted.get_params()
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.coefs_[0] is fitted.coefs_[0]  # the state, not a copy


@pytest.mark.parametrize(
    "change, match",
    [
        ({"params": {"alpha": -1.0}}, "alpha"),
        ({"params": {"hidden_layer_sizes": [0]}}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (8,)}, "hidden_layer_sizes"),
    ],
)
def test_a_record_with_invalid_parameters_is_refused(fitted, change, match):
    record = fitted._fitted_record()
    if "params" in change:
        record = record._replace(params={**record.params, **change["params"]})
    else:
        record = record._replace(**change)
    with pytest.raises((TypeError, ValueError), match=match):
        KerasDigitClassifier._from_fitted_record(record)


def test_an_unfitted_estimator_has_no_record():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KerasDigitClassifier()._fitted_record()


# -- the checks of prediction's input -------------------------------------------
def _outcome(call):
    """What ``call()`` returns or raises, and the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("returned", call())
        except Exception as exc:  # compared, not hidden
            result = ("raised", type(exc), str(exc))
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.fixture(scope="module")
def narrow(small_digits):
    """Estimators fitted on 4 features: from an array, and from a data frame."""
    pd = pytest.importorskip("pandas")
    X, y = small_digits
    X = X[:100, 20:24]
    plain = KerasDigitClassifier(hidden_layer_sizes=[3], max_iter=2, random_state=0)
    named = KerasDigitClassifier(hidden_layer_sizes=[3], max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain.fit(X, y[:100])
        named.fit(pd.DataFrame(X, columns=list("abcd")), y[:100])
    return plain, named


def _cast(array, dtype):
    with np.errstate(all="ignore"):
        return array.astype(dtype)


#: Inputs for prediction: float matrices of the fitted width (4), which the
#: predict path checks itself, and arrays of any dtype and shape.
_PREDICT_INPUTS = st.one_of(
    arrays(
        st.sampled_from(["float64", "float32"]),
        st.tuples(st.integers(0, 6), st.just(4)),
        elements=st.floats(width=32),
    ),
    arrays(
        "float64",
        array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)
        | st.tuples(st.integers(0, 6), st.sampled_from([3, 4, 5])),
        elements=st.floats(width=32),
    ).flatmap(
        lambda a: st.sampled_from(
            ["float64", "float32", "float16", "int64", "bool", "O", "U32"]
        ).map(lambda dtype: _cast(a, dtype))
    ),
)


def _as_mlpclassifier_predicts(estimator, X):
    X = validate_data(estimator, X, accept_sparse=["csr", "csc"], reset=False)
    return X if X.dtype in (np.float64, np.float32) else X.astype(np.float64)


@TENSORFLOW_SESSION
@settings(max_examples=120, deadline=None)
@given(
    X=_PREDICT_INPUTS,
    layout=st.sampled_from(["C", "F", "strided"]),
    named=st.booleans(),
    assume_finite=st.booleans(),
)
def test_prediction_checks_its_input_as_validate_data(
    narrow, X, layout, named, assume_finite
):
    """Any array: the same array, error or warning as MLPClassifier's
    ``predict`` gets from ``validate_data`` (dtype "numeric", so strings are
    refused), cast to float64 where not a float (the predict path checks
    plain float matrices itself)."""
    est = narrow[named]
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided" and X.ndim == 2:
        X = np.repeat(X, 2, axis=1)[:, ::2]
    with sklearn.config_context(assume_finite=assume_finite):
        ours = _outcome(lambda: est._validate_for_predict(X))
        reference = _outcome(lambda: _as_mlpclassifier_predicts(est, X))
    (kind, *result), caught = ours
    (expected_kind, *expected), expected_caught = reference
    assert (kind, caught) == (expected_kind, expected_caught)
    if kind == "raised":
        assert result == expected
    else:
        (array,), (expected_array,) = result, expected
        assert (array is X) == (expected_array is X)
        assert array.dtype == expected_array.dtype
        np.testing.assert_array_equal(array, expected_array)


# -- continuing a fit: the fitted network, as it is -------------------------------
def _fit_quietly(estimator, method, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(estimator, method)(X, y)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("sizes", [(5,), (8, 4), [7, 7], 3])
def test_continuing_with_other_hidden_layer_sizes_is_refused(
    method, sizes, small_digits, tmp_path
):
    """warm_start and partial_fit continue the fitted network: other widths are
    refused (MLPClassifier kept the old ones silently, or failed), and the
    estimator keeps its fit, which saves."""
    from sk_keras_digits import save

    X, y = small_digits
    est = _fit_quietly(
        KerasDigitClassifier(
            hidden_layer_sizes=(7,), max_iter=2, warm_start=True, random_state=0
        ),
        "fit",
        X,
        y,
    )
    before = est.predict_proba(X)
    est.set_params(hidden_layer_sizes=sizes)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=.*widths \(7,\)"):
        _fit_quietly(est, method, X, y)
    np.testing.assert_array_equal(est.predict_proba(X), before)
    est.set_params(hidden_layer_sizes=np.array([7]))  # the same widths, spelt so
    _fit_quietly(est, method, X, y)
    save(est, tmp_path / "continued.skd")


@settings(max_examples=8, deadline=None)
@given(width=st.integers(1, 12))
def test_a_0d_array_is_one_width(width, small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(hidden_layer_sizes=np.array(width), max_iter=1)
    _fit_quietly(est, "fit", X[:50], y[:50])
    assert [c.shape for c in est.coefs_] == [(64, width), (width, 10)]


def test_a_custom_network_changed_after_the_fit_is_refused_before_and_after_pickling(
    small_digits,
):
    """``set_params(network__units=...)`` after a fit: predicting, pickling and
    continuing give the same clear error; setting it back restores the fit."""
    import pickle

    from tests._networks import SmallDense

    X, y = small_digits
    est = _fit_quietly(
        KerasDigitClassifier(
            network=SmallDense(6), max_iter=2, warm_start=True, random_state=0
        ),
        "fit",
        X,
        y,
    )
    before = est.predict_proba(X)
    est.set_params(network__units=4)
    message = r"network=SmallDense\(units=4\) now builds .* parameter changed"
    for call in (
        lambda: est.predict(X),
        lambda: pickle.loads(pickle.dumps(est)).predict(X),
        lambda: _fit_quietly(est, "fit", X, y),
        lambda: _fit_quietly(est, "partial_fit", X, y),
    ):
        with pytest.raises(ValueError, match=message):
            call()
    est.set_params(network__units=6)
    np.testing.assert_array_equal(est.predict_proba(X), before)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), before)


def test_model_computes_the_predictions_after_another_activation(small_digits):
    """Predictions use the current activation, as MLPClassifier's; model_ too."""
    X, y = small_digits
    est = _fit_quietly(
        KerasDigitClassifier(hidden_layer_sizes=(7,), max_iter=2, random_state=0),
        "fit",
        X,
        y,
    )
    assert est.model_ is est.model_  # built and cached, with the fitted activation
    est.set_params(activation="tanh")
    proba = est.predict_proba(X)
    # (Keras 3.15's tanh layers compute float64 in float32 on JAX.)
    np.testing.assert_allclose(np.asarray(est.model_(X)), proba, rtol=1e-6)
    assert est.model_.layers[1].activation.__name__ == "tanh"


def test_a_diverged_lbfgs_fit_names_its_penalty_not_a_learning_rate(small_digits):
    X, y = small_digits
    est = KerasDigitClassifier(solver="lbfgs", alpha=1e300, max_iter=5)
    penalty = r"lower the penalty \(alpha=1e\+300\)"
    with pytest.raises(ValueError, match=penalty) as info:
        est.fit(X, y)
    assert "learning_rate" not in str(info.value)


@pytest.mark.parametrize("kind", ["default_to_custom", "custom_to_default"])
def test_a_fit_under_another_kind_of_network_is_refused_when_predicting(
    kind, small_digits
):
    """The network parameter switched between None and a builder after the
    fit: the network it builds cannot hold the fitted weights."""
    from tests._networks import SmallDense

    X, y = small_digits
    fitted_with, switched_to = (
        (None, SmallDense(6)) if kind == "default_to_custom" else (SmallDense(6), None)
    )
    est = _fit_quietly(
        KerasDigitClassifier(network=fitted_with, max_iter=2, random_state=0),
        "fit",
        X,
        y,
    )
    before = est.predict_proba(X)
    est.set_params(network=switched_to)
    with pytest.raises(ValueError, match="network parameter changed since the fit"):
        est.predict(X)
    est.set_params(network=fitted_with)
    np.testing.assert_array_equal(est.predict_proba(X), before)


def _predict_while(est, X, work):
    """Run ``work()`` while another thread predicts with ``est``; the reader's
    outcomes: probabilities or exceptions."""
    import threading

    done, outcomes = threading.Event(), []

    def read():
        while not done.is_set():
            try:
                outcomes.append(est.predict_proba(X))
            except Exception as exc:
                outcomes.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        work()
    finally:
        done.set()
        reader.join()
    return outcomes


def test_a_failing_fit_leaves_readers_the_fitted_model_throughout(small_digits):
    """Nothing of a fit reaches the estimator before it succeeds: a thread
    predicting during a fit that fails (on other features) sees the old model."""
    import keras

    X, y = small_digits
    est = _fit_quietly(
        KerasDigitClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
        "fit",
        X,
        y,
    )
    expected = est.predict_proba(X)

    class Fails(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("stop here")

    def failing_fit():
        est.set_params(callbacks=[Fails()], max_iter=5)
        with pytest.raises(RuntimeError, match="stop here"):
            est.fit(X[:, :32], y)

    outcomes = _predict_while(est, X, failing_fit)
    assert outcomes and not [o for o in outcomes if isinstance(o, Exception)]
    for proba in outcomes:
        np.testing.assert_array_equal(proba, expected)
    assert est.n_features_in_ == 64


def test_a_refit_on_other_features_reaches_readers_at_once(small_digits):
    """A reader sees the old model, then the new one: its 64-feature X is then
    refused as scikit-learn refuses it, never by a mix of the two."""
    X, y = small_digits
    est = _fit_quietly(
        KerasDigitClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
        "fit",
        X,
        y,
    )
    expected = est.predict_proba(X)
    outcomes = _predict_while(est, X, lambda: _fit_quietly(est, "fit", X[:, :32], y))
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(
        isinstance(e, ValueError)
        and "but KerasDigitClassifier is expecting 32" in str(e)
        for e in errors
    ), errors[:3]
    first_error = next(
        (i for i, o in enumerate(outcomes) if isinstance(o, Exception)), len(outcomes)
    )
    assert all(isinstance(o, Exception) for o in outcomes[first_error:])
    for proba in outcomes[:first_error]:
        np.testing.assert_array_equal(proba, expected)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize(
    "ours, theirs, y",
    [
        (KerasDigitClassifier, MLPClassifier, [3]),
        (KerasDigitRegressor, MLPRegressor, [0.7]),
    ],
)
def test_a_single_sample_fits_as_mlp_does(ours, theirs, y, solver):
    X = np.array([[0.5, 0.2, 0.0]])
    params = dict(solver=solver, max_iter=5, shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est, mlp = ours(**params).fit(X, y), theirs(**params).fit(X, y)
    assert est.n_iter_ == mlp.n_iter_
    assert_same_weights(est, mlp, rtol=1e-7, atol=1e-12)
    grid = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 2.0]])
    np.testing.assert_array_equal(est.predict(grid), mlp.predict(grid))


@settings(max_examples=6, deadline=None)
@given(
    zero_batch=st.integers(0, 5),
    estimator=st.sampled_from([KerasDigitClassifier, KerasDigitRegressor]),
)
def test_a_batch_of_zero_weight_changes_nothing(zero_batch, estimator, small_digits):
    """Its step (plain SGD) leaves the weights as they were: the fit equals one
    without those rows (MLP divides by the batch's weight sum, and fails)."""
    X, y = small_digits
    X, y = X[:60], y[:60]
    weight = np.ones(len(X))
    rows = slice(10 * zero_batch, 10 * zero_batch + 10)
    weight[rows] = 0
    params = dict(solver="sgd", momentum=0.0, batch_size=10, shuffle=False)
    params.update(max_iter=3, hidden_layer_sizes=(6,), random_state=0)
    kept = np.ones(len(X), bool)
    kept[rows] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = estimator(**params).fit(X, y, sample_weight=weight)
        without = estimator(**params).fit(X[kept], y[kept])
    assert_same_weights(weighted, without, rtol=1e-12, atol=1e-15)


#: Ours and scikit-learn's, side by side.
TWINS = [(KerasDigitClassifier, MLPClassifier), (KerasDigitRegressor, MLPRegressor)]


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("continuing", ["partial_fit", "warm_start"])
@pytest.mark.parametrize(
    "first, then", [("float32", "float64"), ("float64", "float32")]
)
@pytest.mark.parametrize("ours, theirs", TWINS)
def test_a_continuing_fit_keeps_the_fitted_dtype(
    ours, theirs, first, then, continuing, solver, small_digits
):
    """As MLP: X of another float dtype trains the fitted weights in their own
    dtype (it failed inside the backend, or switched the weights' dtype)."""
    if continuing == "partial_fit" and solver == "lbfgs":
        pytest.skip("partial_fit takes a stochastic solver")
    X, y = small_digits[0][:60], small_digits[1][:60]
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=2, shuffle=False)
    params.update(random_state=0, warm_start=continuing == "warm_start")
    results = []
    for estimator in (ours(**params), theirs(**params)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if continuing == "partial_fit":
                kwargs = {"classes": np.unique(y)} if is_classifier(estimator) else {}
                estimator.partial_fit(X.astype(first), y, **kwargs)
                estimator.partial_fit(X.astype(then), y)
            else:
                estimator.fit(X.astype(first), y).fit(X.astype(then), y)
        results.append(estimator)
    est, mlp = results
    assert est.coefs_[0].dtype == np.dtype(first)
    if solver != "lbfgs":  # MLP's lbfgs leaves float64 weights (SciPy's)
        assert mlp.coefs_[0].dtype == np.dtype(first)
    rtol = 1e-4 if "float32" in (first, then) else 1e-7
    np.testing.assert_allclose(est.loss_, mlp.loss_, rtol=rtol)


def test_a_continuing_float32_fit_refuses_x_beyond_float32(small_digits):
    X, y = small_digits[0][:60], small_digits[1][:60]
    est = KerasDigitClassifier(hidden_layer_sizes=(6,), max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X.astype(np.float32), y)
    coefs = [c.copy() for c in est.coefs_]
    huge = X.copy()
    huge[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"too large for float32.*1e\+300"):
        est.fit(huge, y)
    for a, b in zip(est.coefs_, coefs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("estimator", [KerasDigitClassifier, KerasDigitRegressor])
def test_a_warm_start_that_turns_early_stopping_on_records_its_scores(
    estimator, small_digits
):
    """MLP fails here (its scores list is None); the validated fit's scores,
    best score and kept weights are recorded, from its first epoch."""
    X, y = small_digits[0][:100], small_digits[1][:100]
    est = estimator(hidden_layer_sizes=(6,), max_iter=4, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        assert est.validation_scores_ is None
        est.set_params(early_stopping=True).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ == 4
    assert len(est.loss_curve_) == 8
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    assert est.history_[est._state.score_log] == est.validation_scores_


@pytest.mark.parametrize("ours, theirs", TWINS)
def test_the_batch_size_warning_starts_with_mlps_text(ours, theirs, small_digits):
    """A filter written for MLP's warning (its message's start) takes ours."""
    X, y = small_digits[0][:50], small_digits[1][:50]
    messages = []
    for estimator in (theirs, ours):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator(hidden_layer_sizes=(4,), batch_size=80, max_iter=1).fit(X, y)
        (clipped,) = [str(w.message) for w in caught if "clipped" in str(w.message)]
        messages.append(clipped)
    theirs_text, ours_text = messages
    assert ours_text.startswith(theirs_text)
    assert "batch_size=80, 50 samples" in ours_text


@pytest.mark.parametrize(
    "ours, theirs",
    [(KerasDigitClassifier, MLPClassifier), (KerasDigitRegressor, MLPRegressor)],
)
def test_every_public_method_takes_mlps_arguments_in_mlps_order(ours, theirs):
    """A call written for MLP, positional arguments included
    (``partial_fit(X, y, sample_weight, classes)``), means the same here."""
    import inspect

    names = [
        name
        for name in dir(theirs)
        if not name.startswith("_") and callable(getattr(theirs, name, None))
    ]
    assert names
    for name in names:
        assert hasattr(ours, name), name
        expected = inspect.signature(getattr(theirs, name)).parameters
        found = inspect.signature(getattr(ours, name)).parameters
        assert [(p.name, p.kind, p.default) for p in found.values()] == [
            (p.name, p.kind, p.default) for p in expected.values()
        ], name


@pytest.mark.parametrize("fitted_dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "input_dtype",
    [np.float16, np.bool_, np.int8, np.uint8, np.int64, np.longdouble, np.float32],
)
@pytest.mark.parametrize(
    "ours, theirs",
    [(KerasDigitClassifier, MLPClassifier), (KerasDigitRegressor, MLPRegressor)],
)
def test_predictions_come_in_the_dtype_mlps_products_give(
    small_digits, ours, theirs, fitted_dtype, input_dtype
):
    """X of another numeric dtype than the fit's: the outputs' dtype is what
    MLP's NumPy products give with its weights (float16 or bool with float32
    weights: float32; int64: float64), and so are their values."""
    X, y = small_digits
    params = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0, shuffle=False)
    fitted = []
    for estimator in (ours, theirs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(estimator(**params).fit(X.astype(fitted_dtype), y))
    X_other = (X > 0.5) if input_dtype is np.bool_ else (16 * X).astype(input_dtype)
    method = "predict_proba" if is_classifier(fitted[0]) else "predict"
    found, expected = (getattr(e, method)(X_other) for e in fitted)
    assert found.dtype == expected.dtype
    rtol = 1e-4 if np.float32 in (fitted_dtype, expected.dtype) else 1e-9
    np.testing.assert_allclose(found, expected, rtol=rtol, atol=1e-6)

"""NetworkBuilder: custom architectures whose parameters grid-search by name."""

import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils import estimator_html_repr
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_keras_digits import KerasDigitClassifier, NetworkBuilder
from tests._helpers import QUICK_ADAM, compute_scope, fit_quietly

ROOT = Path(__file__).resolve().parents[1]


# Builders live at module level, as users must define them, so that pickle
# finds their classes again.
class DenseBuilder(NetworkBuilder):
    """One hidden Dense layer."""

    def __init__(self, units=8, activation="relu"):
        self.units = units
        self.activation = activation

    def build(self, n_features_in, n_outputs, output_activation):
        inputs = keras.Input((n_features_in,))
        h = keras.layers.Dense(self.units, activation=self.activation)(inputs)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
        return keras.Model(inputs, outputs)


class OtherDense(DenseBuilder):
    """DenseBuilder's twin under another name."""


def dense_function(n_features_in, n_outputs, output_activation):
    """DenseBuilder() as a plain function."""
    return DenseBuilder().build(n_features_in, n_outputs, output_activation)


class SmallConv(NetworkBuilder):
    """Convolutions on the 8x8 images."""

    def __init__(self, filters=4, kernel_size=3, dense_units=16):
        self.filters = filters
        self.kernel_size = kernel_size
        self.dense_units = dense_units

    def build(self, n_features_in, n_outputs, output_activation):
        side = int(round(n_features_in**0.5))
        return keras.Sequential(
            [
                keras.Input((n_features_in,)),
                keras.layers.Reshape((side, side, 1)),
                keras.layers.Conv2D(
                    self.filters, self.kernel_size, padding="same", activation="relu"
                ),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(self.dense_units, activation="relu"),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )


class Stack(NetworkBuilder):
    """``depth`` copies of a block: a builder whose parameter is a builder."""

    def __init__(self, block=None, depth=2):
        self.block = block
        self.depth = depth

    def build(self, n_features_in, n_outputs, output_activation):
        block = DenseBuilder() if self.block is None else self.block
        inputs = keras.Input((n_features_in,))
        h = inputs
        for _ in range(self.depth):
            h = keras.layers.Dense(block.units, activation=block.activation)(h)
        outputs = keras.layers.Dense(n_outputs, activation=output_activation)(h)
        return keras.Model(inputs, outputs)


class WithInitializer(NetworkBuilder):
    def __init__(self, initializer=None, scale=None):
        self.initializer = initializer
        self.scale = scale

    def build(self, n_features_in, n_outputs, output_activation):
        return DenseBuilder().build(n_features_in, n_outputs, output_activation)


class ReturnsLayer(NetworkBuilder):
    def build(self, n_features_in, n_outputs, output_activation):
        return keras.layers.Dense(n_outputs, activation=output_activation)


# -- parameters ----------------------------------------------------------------


def test_builder_parameters_are_the_estimators_nested_parameters():
    clf = KerasDigitClassifier(network=DenseBuilder(units=16))
    deep = clf.get_params(deep=True)
    assert deep["network__units"] == 16
    assert deep["network__activation"] == "relu"
    assert deep["network"] is clf.network
    assert not any(k.startswith("network__") for k in clf.get_params(deep=False))
    assert clf.network.get_params() == {"units": 16, "activation": "relu"}


def test_set_params_reaches_builder_parameters_at_any_depth():
    clf = KerasDigitClassifier(network=Stack(block=DenseBuilder(units=3)))
    assert clf.get_params()["network__block__units"] == 3
    assert clf.set_params(network__depth=4, network__block__units=7) is clf
    assert clf.network.depth == 4
    assert clf.network.block.units == 7
    assert clf.get_params()["network__block__units"] == 7
    # A whole builder swaps in like any other parameter.
    clf.set_params(network=DenseBuilder(activation="tanh"))
    assert clf.get_params()["network__activation"] == "tanh"
    assert "network__depth" not in clf.get_params()


def test_set_params_names_the_invalid_parameter_and_the_valid_ones():
    clf = KerasDigitClassifier(network=DenseBuilder())
    with pytest.raises(ValueError) as excinfo:
        clf.set_params(network__filters=8)
    message = str(excinfo.value)
    assert "Invalid parameter 'filters' for estimator DenseBuilder()" in message
    assert "['activation', 'units']" in message
    # The builder was left unchanged.
    assert clf.network.get_params() == {"units": 8, "activation": "relu"}


def test_clone_gives_an_independent_equal_builder():
    builder = Stack(block=DenseBuilder(units=3), depth=3)
    clf = KerasDigitClassifier(network=builder)
    twin = clone(clf)
    assert twin.network == builder
    assert twin.network is not builder
    assert twin.network.block is not builder.block
    twin.set_params(network__block__units=9, network__depth=1)
    assert builder.get_params(deep=True) == {
        "block": DenseBuilder(units=3),
        "block__units": 3,
        "block__activation": "relu",
        "depth": 3,
    }


def test_clone_of_a_fitted_estimator_is_unfitted(small_digits):
    X, y = small_digits
    clf = fit_quietly(KerasDigitClassifier(network=DenseBuilder(), **QUICK_ADAM), X, y)
    twin = clone(clf)
    assert twin.network == clf.network and twin.network is not clf.network
    assert not hasattr(twin, "coefs_")


def test_an_abstract_builder_cannot_be_instantiated():
    class NoBuild(NetworkBuilder):
        def __init__(self, units=1):
            self.units = units

    with pytest.raises(TypeError, match="abstract method build"):
        NoBuild()


# -- repr, HTML repr, equality -------------------------------------------------


def test_repr_shows_the_non_default_parameters():
    assert repr(DenseBuilder()) == "DenseBuilder()"
    assert repr(DenseBuilder(units=32)) == "DenseBuilder(units=32)"
    clf = KerasDigitClassifier(network=Stack(block=DenseBuilder(units=3)), max_iter=5)
    assert repr(clf) == (
        "KerasDigitClassifier(max_iter=5, network=Stack(block=DenseBuilder(units=3)))"
    )


def test_html_repr_lists_the_builder_and_its_parameters(small_digits):
    clf = KerasDigitClassifier(network=SmallConv(filters=8))
    for html in [clf._repr_html_(), estimator_html_repr(clf)]:
        assert "SmallConv(filters=8)" in html
        for name in [
            "network__filters",
            "network__kernel_size",
            "network__dense_units",
        ]:
            assert name in html
    assert "SmallConv" in clf.network._repr_html_()


def test_builders_with_equal_parameters_are_equal():
    assert DenseBuilder(units=4) == DenseBuilder(units=4)
    assert hash(DenseBuilder(units=4)) == hash(DenseBuilder(units=4))
    assert DenseBuilder(units=4) != DenseBuilder(units=5)
    assert DenseBuilder(units=4) != DenseBuilder(units=4, activation="tanh")
    assert Stack(block=DenseBuilder(units=2)) == Stack(block=DenseBuilder(units=2))
    assert Stack(block=DenseBuilder(units=2)) != Stack(block=DenseBuilder(units=3))
    # Same parameters, other class; and never equal to a plain function.
    assert DenseBuilder(units=4) != OtherDense(units=4)
    assert DenseBuilder() != dense_function
    assert DenseBuilder() != "DenseBuilder()"


def test_equality_compares_arrays_and_keras_objects_by_value():
    first = WithInitializer(keras.initializers.HeNormal(seed=1), np.array([1.0, 2]))
    assert first == clone(first)
    assert first == WithInitializer(
        keras.initializers.HeNormal(seed=1), np.array([1.0, 2])
    )
    assert first != WithInitializer(
        keras.initializers.HeNormal(seed=2), np.array([1.0, 2])
    )
    assert first != WithInitializer(
        keras.initializers.GlorotNormal(seed=1), np.array([1.0, 2])
    )
    assert first != WithInitializer(
        keras.initializers.HeNormal(seed=1), np.array([1.0, 3])
    )
    assert first != WithInitializer(keras.initializers.HeNormal(seed=1), [1.0, 2])
    assert WithInitializer(scale=float("nan")) == WithInitializer(scale=float("nan"))


# -- building and fitting ------------------------------------------------------


def test_call_builds_the_model_and_checks_it():
    model = DenseBuilder(units=5)(64, 10, "softmax")
    assert isinstance(model, keras.Model)
    assert model.layers[1].units == 5
    with pytest.raises(TypeError, match=r"ReturnsLayer.build must return a keras"):
        ReturnsLayer()(64, 10, "softmax")


def test_fit_reports_a_builder_that_returns_no_model(small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match=r"ReturnsLayer\.build .* got Dense"):
        KerasDigitClassifier(network=ReturnsLayer(), **QUICK_ADAM).fit(X, y)


def test_a_builder_trains_exactly_as_the_equivalent_function(small_digits):
    X, y = small_digits
    by_builder = fit_quietly(
        KerasDigitClassifier(network=DenseBuilder(), **QUICK_ADAM), X, y
    )
    by_function = fit_quietly(
        KerasDigitClassifier(network=dense_function, **QUICK_ADAM), X, y
    )
    for ours, theirs in zip(
        by_builder.coefs_ + by_builder.intercepts_,
        by_function.coefs_ + by_function.intercepts_,
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)
    assert by_builder.coefs_[0].shape == (64, 8)


def test_pickle_round_trip_of_a_fitted_estimator(small_digits):
    X, y = small_digits
    clf = fit_quietly(
        KerasDigitClassifier(network=SmallConv(filters=3, dense_units=8), **QUICK_ADAM),
        X,
        y,
    )
    loaded = pickle.loads(pickle.dumps(clf))
    assert type(loaded.network) is SmallConv
    assert loaded.network == clf.network
    assert loaded.get_params()["network__filters"] == 3
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_grid_search_over_a_builder_parameter(small_digits):
    X, y = small_digits
    widths = [2, 24]

    def width(estimator, X, y):
        """The hidden width of the network each candidate trained."""
        return estimator.coefs_[0].shape[1]

    search = GridSearchCV(
        KerasDigitClassifier(network=DenseBuilder(), **QUICK_ADAM),
        {"network__units": widths},
        scoring={"width": width, "accuracy": "accuracy"},
        refit="accuracy",
        cv=2,
    )
    fit_quietly(search, X, y)
    assert list(search.cv_results_["param_network__units"]) == widths
    np.testing.assert_array_equal(search.cv_results_["mean_test_width"], widths)
    accuracy = search.cv_results_["mean_test_accuracy"]
    assert accuracy[1] > accuracy[0] + 0.1  # 24 hidden units beat 2
    assert search.best_params_ == {"network__units": 24}
    assert search.best_estimator_.network == DenseBuilder(units=24)
    assert search.best_estimator_.coefs_[0].shape == (64, 24)
    # The search cloned the estimator: its own builder is untouched.
    assert search.estimator.network == DenseBuilder()


# -- scikit-learn's checks, with a builder nested in the estimator ----------


@parametrize_with_checks(
    [
        KerasDigitClassifier(
            network=DenseBuilder(units=32),
            learning_rate_init=0.01,
            max_iter=50,
            random_state=0,
        )
    ]
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_compatible_with_a_builder(estimator, check, backend):
    if backend == "jax":
        # On JAX a custom network compiles once per data shape: these checks
        # (dozens of shapes) take minutes there. The common checks of the
        # default network run on JAX with tests/test_common.py's path given,
        # and these here test the builder, which is the same on every backend.
        pytest.skip("scikit-learn's checks of a builder run in the TensorFlow suite")
    check(estimator)


# -- import cost ---------------------------------------------------------------


def test_builders_do_not_import_tensorflow_until_built():
    code = textwrap.dedent(
        """
        import sys
        from sklearn.base import clone
        from sk_keras_digits import KerasDigitClassifier, NetworkBuilder

        class Net(NetworkBuilder):
            def __init__(self, units=3):
                self.units = units

            def build(self, n_features_in, n_outputs, output_activation):
                raise AssertionError("not called")

        est = clone(KerasDigitClassifier(network=Net(units=4)))
        est.set_params(network__units=5); est.get_params(); repr(est)
        est._repr_html_(); est.network == Net(units=5)
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"


# -- networks that differ only in what their config cannot show ---------------
class ScaledActivation(NetworkBuilder):
    """A closure carries ``scale`` into the hidden activation."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def build(self, n_features_in, n_outputs, output_activation):
        scale = self.scale

        def activation(x):
            return keras.ops.tanh(x) * scale

        return keras.Sequential(
            [
                keras.Input((n_features_in,)),
                keras.layers.Dense(8, activation=activation),
                keras.layers.Dense(n_outputs, activation=output_activation),
            ]
        )


def test_closure_parameters_train_their_own_networks(small_digits):
    """Each scale trains and predicts with its own program, in any order."""
    X, y = small_digits
    results = {}
    for scale in (1.0, 0.0, 1.0):
        est = fit_quietly(
            KerasDigitClassifier(network=ScaledActivation(scale), **QUICK_ADAM), X, y
        )
        proba = est.predict_proba(X)
        with compute_scope("float64"):
            outputs = keras.ops.convert_to_numpy(est.model_(X))
        # keras.ops.tanh computes float64 in float32 on JAX (docs/backends.rst),
        # which the compiled program and the model's own call round apart.
        rtol = 1e-6 if keras.backend.backend() == "jax" else 1e-7
        np.testing.assert_allclose(proba, outputs, rtol=rtol, atol=1e-12)
        results.setdefault(scale, []).append(proba)
    # scale=0 zeroes the hidden layer: every row gets the same probabilities.
    assert np.ptp(results[0.0][0], axis=0).max() < 1e-12
    assert np.ptp(results[1.0][0], axis=0).max() > 1e-3
    np.testing.assert_array_equal(results[1.0][0], results[1.0][1])


def test_grid_search_over_a_closure_parameter_matches_separate_fits(small_digits):
    X, y = small_digits
    search = GridSearchCV(
        KerasDigitClassifier(network=ScaledActivation(), **QUICK_ADAM),
        {"network__scale": [0.0, 1.0]},
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
        # Each scale alone, in the opposite order, in the same process.
        alone = [
            cross_val_score(
                KerasDigitClassifier(network=ScaledActivation(scale), **QUICK_ADAM),
                X,
                y,
                cv=2,
            ).mean()
            for scale in (1.0, 0.0)
        ][::-1]
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], alone)
    assert alone[0] < alone[1]


class TransferBuilder(NetworkBuilder):
    """Uses another fitted estimator while building (transfer learning)."""

    def __init__(self, pretrained=None, probe=None):
        self.pretrained = pretrained
        self.probe = probe

    def build(self, n_features_in, n_outputs, output_activation):
        self.pretrained.predict_proba(self.probe)
        return DenseBuilder(units=4).build(n_features_in, n_outputs, output_activation)


@pytest.mark.timeout(120)
def test_a_builder_may_use_another_fitted_estimator(small_digits):
    X, y = small_digits
    pretrained = fit_quietly(
        KerasDigitClassifier(network=DenseBuilder(), **QUICK_ADAM), X, y
    )
    builder = TransferBuilder(pretrained, X[:5])
    est = fit_quietly(KerasDigitClassifier(network=builder, **QUICK_ADAM), X, y)
    assert est.predict(X).shape == y.shape


class SlowBuilder(DenseBuilder):
    """Signals that it is building, then waits to be released."""

    def __init__(self, units=8, activation="relu", started=None, release=None):
        super().__init__(units, activation)
        self.started = started
        self.release = release

    def build(self, n_features_in, n_outputs, output_activation):
        self.started.set()
        assert self.release.wait(60)
        return super().build(n_features_in, n_outputs, output_activation)


@pytest.mark.timeout(120)
def test_a_slow_build_does_not_block_other_threads_fits(small_digits):
    import threading

    X, y = small_digits
    started, release = threading.Event(), threading.Event()
    slow = KerasDigitClassifier(
        network=SlowBuilder(started=started, release=release), **QUICK_ADAM
    )
    thread = threading.Thread(target=fit_quietly, args=(slow, X, y))
    thread.start()
    try:
        assert started.wait(60)
        other = fit_quietly(
            KerasDigitClassifier(hidden_layer_sizes=(5,), **QUICK_ADAM), X, y
        )
        assert other.n_iter_ == QUICK_ADAM["max_iter"]
        assert not slow.__sklearn_is_fitted__()  # still building
    finally:
        release.set()
        thread.join(60)
    assert slow.predict(X).shape == y.shape


def test_a_network_without_output_activation_is_refused_at_fit(small_digits):
    X, y = small_digits

    def no_activation(n_features_in, n_outputs, output_activation):
        return keras.Sequential(
            [keras.Input((n_features_in,)), keras.layers.Dense(n_outputs)]
        )

    with pytest.raises(ValueError, match="no_activation.*activation='softmax'"):
        KerasDigitClassifier(network=no_activation, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        KerasDigitClassifier(network=no_activation, max_iter=2).fit(X, y % 2)

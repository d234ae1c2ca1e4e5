"""scikit-learn's estimator checks, all of them, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor


@parametrize_with_checks(
    [
        # MLPClassifier's defaults: adam, relu, (100,), 200 iterations.
        KerasDigitClassifier(),
        # The tutorial's network and solver settings.
        KerasDigitClassifier(
            hidden_layer_sizes=(15,),
            activation="logistic",
            solver="sgd",
            learning_rate_init=0.1,
            alpha=1e-4,
            batch_size=100,
            max_iter=50,
        ),
        # MLPRegressor's defaults.
        KerasDigitRegressor(),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

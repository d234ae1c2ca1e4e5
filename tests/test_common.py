"""scikit-learn's estimator checks, all of them, with no expected failures.

The defaults of each estimator (MLPClassifier's and MLPRegressor's) and the
classifier with class weights are checked, on every backend; the other
configurations are covered by the twin
tests (the same weights as scikit-learn's) and scikit-learn's own MLP tests.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor


@parametrize_with_checks(
    [
        # MLPClassifier's defaults: adam, relu, (100,), 200 iterations.
        KerasDigitClassifier(),
        # Class weights: the tags (no multilabel targets, no partial_fit) and
        # the weighted class counts ("balanced" with sample_weight).
        KerasDigitClassifier(class_weight="balanced"),
        # MLPRegressor's defaults.
        KerasDigitRegressor(),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

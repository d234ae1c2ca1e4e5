"""scikit-learn's estimator checks, all of them, with no expected failures.

Each estimator's defaults are checked on every backend; the tutorial's
configuration (the same code, other settings) on TensorFlow, to keep CI
within its budget.
"""

import os

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor

#: Checked on TensorFlow only (the default backend's session).
TENSORFLOW_ONLY = (
    []
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"
    else [
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
    ]
)


@parametrize_with_checks(
    [
        # MLPClassifier's defaults: adam, relu, (100,), 200 iterations.
        KerasDigitClassifier(),
        # MLPRegressor's defaults.
        KerasDigitRegressor(),
        *TENSORFLOW_ONLY,
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

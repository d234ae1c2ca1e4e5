"""Write the format-2 fixtures of ``tests/persistence/test_format_2.py``.

Run from the repository root (``python tests/data/format_2/make_files.py``)
with the sk_keras_digits whose files the fixtures should keep: they were
written at the commit before the persistence subpackage, and must load
unchanged by every later version.
"""

import json
import pathlib
import sys
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sk_keras_digits import KerasDigitClassifier, save  # noqa: E402
from tests._networks import SmallDense  # noqa: E402

HERE = pathlib.Path(__file__).parent
X_TEST = np.load(HERE.parent / "format_1" / "X.npy")  # 40 digits in [0, 1]
ATTRIBUTES = (
    "loss_",
    "t_",
    "n_iter_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_features_in_",
    "n_outputs_",
    "out_activation_",
    "classes_",
)


def cases():
    import keras

    X, y = load_digits(return_X_y=True)
    X, y = X[100:400] / 16.0, y[100:400]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six",
                      "seven", "eight", "nine"], dtype=object)  # fmt: skip
    multilabel = np.stack([y % 2, (y > 4).astype(int), (y == 0).astype(int)], 1)
    small = dict(hidden_layer_sizes=(6,), random_state=0)
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    return {
        "sgd": (
            KerasDigitClassifier(
                solver="sgd", learning_rate_init=0.2, batch_size=50, max_iter=4,
                **small,
            ),
            X, y,
        ),
        "adam_early_stopping_strings": (
            KerasDigitClassifier(
                solver="adam", early_stopping=True, max_iter=6,
                learning_rate_init=0.01, **small,
            ),
            X, names[y],
        ),
        "lbfgs_multilabel": (
            KerasDigitClassifier(solver="lbfgs", max_iter=10, **small),
            X, multilabel,
        ),
        "custom_adam": (
            KerasDigitClassifier(
                network=SmallDense(), solver="adam", learning_rate_init=0.01,
                max_iter=3, random_state=0,
            ),
            X, y,
        ),
        "keras_optimizer": (
            KerasDigitClassifier(solver=optimizer, max_iter=3, **small), X, y
        ),
        "pipeline": (
            make_pipeline(
                StandardScaler(),
                KerasDigitClassifier(solver="adam", max_iter=4, **small),
            ),
            X, y,
        ),
    }  # fmt: skip


def main():
    attributes = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (estimator, X, y) in cases().items():
            estimator.fit(X, y)
            save(estimator, HERE / f"{name}.skd")
            np.save(HERE / f"{name}_proba.npy", estimator.predict_proba(X_TEST))
            last = estimator[-1] if name == "pipeline" else estimator
            values = {}
            for attribute in ATTRIBUTES:
                value = getattr(last, attribute)
                values[attribute] = (
                    value.tolist() if isinstance(value, np.ndarray) else value
                )
            attributes[name] = values
    (HERE / "attributes.json").write_text(json.dumps(attributes, indent=1) + "\n")


if __name__ == "__main__":
    main()

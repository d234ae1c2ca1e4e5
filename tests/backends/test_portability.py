"""Model files are portable: saved on one backend, loaded and trained on the other.

Each side runs in a fresh process on its own backend, whatever backend this
test session runs on; the test runs once, in the TensorFlow session.
"""

import json

import numpy as np
import pytest

pytest.importorskip("jax")

_SAVE = """
    import json, sys, warnings
    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    from sk_keras_digits import KerasDigitClassifier, save

    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]

    def network(n_features_in, n_outputs, output_activation):
        return keras.Sequential([
            keras.Input((n_features_in,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(n_outputs, activation=output_activation),
        ])

    settings = {{
        "sgd": dict(
            hidden_layer_sizes=(12,), solver="sgd", learning_rate_init=0.3, max_iter=8
        ),
        "adam32": dict(
            hidden_layer_sizes=(12,), learning_rate_init=0.01, max_iter=8,
            dtype="float32",
        ),
        "keras_optimizer": dict(solver=keras.optimizers.RMSprop(0.01), max_iter=5),
        "custom": dict(network=network, learning_rate_init=0.02, max_iter=10),
    }}
    out = {{}}
    for name, params in settings.items():
        dtype = params.pop("dtype", "float64")
        est = KerasDigitClassifier(random_state=0, **params)
        est.fit(X.astype(dtype), y)
        save(est, f"{folder}/{{name}}.skd")
        out[name] = est.predict_proba(X.astype(dtype)).tolist()
    print(json.dumps(out))
"""

_LOAD = """
    import json, sys, warnings
    import numpy as np
    from sklearn.datasets import load_digits
    from sk_keras_digits import load

    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    out = {{}}
    for name in ("sgd", "adam32", "keras_optimizer", "custom"):
        est = load(f"{folder}/{{name}}.skd")
        dtype = est.coefs_[0].dtype
        proba = est.predict_proba(X.astype(dtype))
        seen = est.t_
        est.partial_fit(X.astype(dtype), y)  # continues training here
        out[name] = [proba.tolist(), seen, est.t_, est.score(X.astype(dtype), y)]
    print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "source, target", [("tensorflow", "jax"), ("jax", "tensorflow")]
)
def test_a_file_saved_on_one_backend_predicts_and_trains_on_the_other(
    run_on, tmp_path, backend, source, target
):
    if backend != "tensorflow":
        pytest.skip("runs both backends in subprocesses; once, in the TF session")
    saved = run_on(source, _SAVE.format(folder=tmp_path), timeout=600)
    assert saved.returncode == 0, saved.stderr[-3000:]
    expected = json.loads(saved.stdout.splitlines()[-1])
    loaded = run_on(target, _LOAD.format(folder=tmp_path), timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    results = json.loads(loaded.stdout.splitlines()[-1])
    for name, (proba, seen, seen_after, score) in results.items():
        tolerance = {"sgd": 1e-12, "keras_optimizer": 1e-12}.get(name, 1e-5)
        np.testing.assert_allclose(
            proba, expected[name], rtol=tolerance, atol=tolerance, err_msg=name
        )
        assert seen_after == seen + 300, name  # one more epoch of 300 samples
        assert score > 0.5, name

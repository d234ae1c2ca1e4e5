"""Pickle and joblib of estimators, in fresh processes, next to a safe load."""

import io
import json
import pickle

import joblib
import numpy as np

from sk_keras_digits import (
    KerasDigitClassifier,
    save,
)
from tests._helpers import IGNORE_CONVERGENCE, SMALL
from tests.persistence._support import (
    assert_same_estimator,
    custom_layer_network,
    lambda_network,
    run_python,
)

pytestmark = IGNORE_CONVERGENCE


# -- pickle and joblib, and what load runs, in a fresh process ----------------------
FRESH_PROCESS_SCRIPT = """
    import json, pickle, sys
    import numpy as np
    import joblib

    folder = sys.argv[1]
    X = np.load(f"{folder}/X.npy")
    report = {}
    with open(f"{folder}/model.pkl", "rb") as file:
        est = pickle.load(file)
    np.save(f"{folder}/pickle_proba.npy", est.predict_proba(X))
    est = joblib.load(f"{folder}/model.joblib")
    np.save(f"{folder}/joblib_proba.npy", est.predict_proba(X))
    report["tensorflow_after_unpickle"] = "tensorflow" in sys.modules
    report["keras_after_unpickle"] = "keras" in sys.modules

    import sk_keras_digits
    from sk_keras_digits import ModelFileError

    def refused(path, **kwargs):
        try:
            sk_keras_digits.load(path, **kwargs)
        except ModelFileError:
            return True
        return False

    # Warm up: import everything loading needs, before watching.
    sk_keras_digits.load(f"{folder}/model.skd")
    report["keras_after_dense_load"] = "keras" in sys.modules
    refused(f"{folder}/lambda.skd")
    refused(f"{folder}/custom.skd")

    events = []

    def hook(event, args):
        if event not in ("pickle.find_class", "marshal.loads"):
            return
        frame = sys._getframe(1)
        while frame is not None:
            if "importlib._bootstrap" in frame.f_code.co_filename:
                return  # importing a module's bytecode, not data from a file
            frame = frame.f_back
        events.append(event)

    sys.addaudithook(hook)

    def watch(action):
        events.clear()
        result = action()
        return result, sorted(set(events))

    est, report["load_events"] = watch(
        lambda: sk_keras_digits.load(f"{folder}/model.skd")
    )
    np.save(f"{folder}/load_proba.npy", est.predict_proba(X))
    report["lambda_refused"], report["lambda_events"] = watch(
        lambda: refused(f"{folder}/lambda.skd")
    )
    report["custom_refused"], report["custom_events"] = watch(
        lambda: refused(f"{folder}/custom.skd")
    )
    _, report["unsafe_events"] = watch(
        lambda: sk_keras_digits.load(f"{folder}/lambda.skd", allow_unsafe=True)
    )
    _, report["joblib_events"] = watch(
        lambda: joblib.load(f"{folder}/model.joblib")
    )
    print("REPORT" + json.dumps(report))
"""


def test_fresh_process_pickle_joblib_and_safe_load(dense, dense_file, data, tmp_path):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(dense))
    joblib.dump(dense, tmp_path / "model.joblib")
    (tmp_path / "model.skd").write_bytes(dense_file.read_bytes())
    for name, network in [("lambda", lambda_network), ("custom", custom_layer_network)]:
        est = KerasDigitClassifier(**{**SMALL, "network": network}).fit(X, y)
        save(est, tmp_path / f"{name}.skd")
    result = run_python(FRESH_PROCESS_SCRIPT, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    expected = dense.predict_proba(X)
    for name in ("pickle", "joblib", "load"):
        assert np.array_equal(np.load(tmp_path / f"{name}_proba.npy"), expected), name
    # Unpickling and predicting with the dense network is NumPy only.
    assert report["tensorflow_after_unpickle"] is False
    assert report["keras_after_unpickle"] is False
    # Loading the default network does not involve Keras either.
    assert report["keras_after_dense_load"] is False
    # load neither unpickles nor unmarshals code; refusals run nothing either.
    assert report["load_events"] == []
    assert report["lambda_refused"] is True and report["lambda_events"] == []
    assert report["custom_refused"] is True and report["custom_events"] == []
    # Controls: the hook sees a Lambda's code being unmarshalled, and pickle.
    assert report["unsafe_events"] == ["marshal.loads"]
    assert report["joblib_events"] == ["pickle.find_class"]


def test_pickle_does_not_change_the_estimator(data):
    """Pickling drops the Keras objects from the pickled copy, not the estimator."""
    X, y = data
    est = KerasDigitClassifier(**SMALL).fit(X, y)
    model = est.model_
    pickle.dumps(est)
    joblib.dump(est, io.BytesIO())
    assert est.model_ is model
    restored = pickle.loads(pickle.dumps(est))
    assert "_model" not in vars(restored) and "_network" not in vars(restored)
    assert_same_estimator(est, restored, X)

"""Files load refuses: empty, truncated, corrupted, tampered or pickled."""

import io
import json
import os
import pickle
import threading
import zipfile

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sk_keras_digits import (
    KerasDigitClassifier,
    KerasDigitRegressor,
    ModelFileError,
    load,
    save,
)
from tests._helpers import IGNORE_CONVERGENCE, SMALL, read_members
from tests.persistence._regression import SMALL_REGRESSION
from tests.persistence._support import (
    OpenOnUnpickle,
    assert_refused,
    edit_manifest,
    flip,
    member_data_offset,
    rewrite,
    wide_network,
)

pytestmark = IGNORE_CONVERGENCE


# -- damaged and hostile files -----------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.skd"
    path.write_bytes(b"")
    assert_refused(path, r"empty \(0 bytes\)")


def test_not_a_zip(tmp_path, dense):
    text = tmp_path / "notes.skd"
    text.write_text("just some text\n")
    assert_refused(text, "not a zip archive")
    pickled = tmp_path / "model.joblib"
    joblib.dump(dense, pickled)
    assert_refused(pickled, "looks like a pickle")


@pytest.mark.parametrize("keep", [1, 22, 100, 0.5, -1, -22, -100])
def test_truncated_file(keep, dense_file, tmp_path):
    data = dense_file.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "truncated.skd"
    path.write_bytes(data[:keep])
    assert_refused(path, "truncated or damaged|not a zip archive")


@pytest.mark.parametrize("member", ["manifest.json", "state.npz", "model.keras"])
def test_corrupted_member(member, dense_file, tmp_path):
    data = dense_file.read_bytes()
    start, size = member_data_offset(dense_file, member)
    path = tmp_path / "corrupted.skd"
    path.write_bytes(flip(data, start + size // 2))
    assert_refused(path, f"member '{member}' is corrupted")


def test_corruption_anywhere_is_detected_or_harmless(dense, dense_file, data, tmp_path):
    """One flipped byte, at 97 places: a ModelFileError or the same estimator."""
    X, _ = data
    original = dense_file.read_bytes()
    path = tmp_path / "flipped.skd"
    harmless = 0
    for position in np.linspace(0, len(original) - 1, 97).astype(int):
        path.write_bytes(flip(original, position))
        try:
            loaded = load(path)
        except ModelFileError as exc:
            assert str(path) in str(exc)
            continue
        harmless += 1
        assert np.array_equal(loaded.predict_proba(X), dense.predict_proba(X))
    assert harmless < 20  # most bytes are covered by a checksum


@pytest.mark.parametrize("member", ["manifest.json", "state.npz", "model.keras"])
def test_missing_member(member, dense_file, tmp_path):
    path = rewrite(dense_file, tmp_path / "missing.skd", drop=[member])
    assert_refused(path, rf"member\(s\) \['{member}'\] missing")


def test_keras_file_is_not_a_model_file(dense, tmp_path):
    path = tmp_path / "network.keras"
    dense.model_.save(path)
    assert_refused(path, "keras.saving.load_model")


def _set(path, value):
    """An edit setting the manifest's value at ``path`` (keys and indices)."""

    def edit(manifest):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (_set(["format_version"], 3), "format version 3.*Upgrade"),
        (_set(["format_version"], "2"), "invalid format_version '2'"),
        (_set(["format_version"], 0), "invalid format_version 0"),
        (_set(["format_version"], 1), r"unexpected or missing keys \['arrays'"),
        (_set(["format"], "other"), "declares format 'other'"),
        (_set(["estimator"], "os.system"), "holds a 'os.system'"),
        (_set(["predict"], "anything"), r"unexpected or missing keys \['predict'\]"),
        (_set(["params", "evil"], 1), r"parameters \['evil'\] are unexpected"),
        (_set(["params", "solver"], "evil"), "invalid parameters: The 'solver'"),
        (
            _set(["params", "hidden_layer_sizes"], {"tuple": [9]}),
            r"kernels and biases of shapes \[\(64, 9\)",
        ),
        (_set(["n_features_in"], 3), r"kernels and biases of shapes \[\(3, 8\)"),
        (
            _set(["state", "labels", "kind"], "binary"),
            "should hold 1 or 2 classes for binary",
        ),
        (
            _set(["state", "training", "weights", "params", 0], {"array": "zz"}),
            r"should be \{'array': 'training.weights.params.0'\}",
        ),
        (
            _set(["state", "training", "progress", "samples_seen"], {"eval": "1+1"}),
            "samples_seen should be a number",
        ),
        (_set(["state", "training", "weights"], 3), "should be a record of type"),
        (
            _set(["state", "training", "solver", "record"], "AdamState"),
            r"should have the fields \['m', 'step', 'v'\]",
        ),
        (
            _set(["arrays", "labels.classes", "dtype"], "|O"),
            "declares dtype '|O'",
        ),
        (
            _set(["arrays", "labels.classes", "shape"], [11]),
            r"holds an array of shape \(10,\).*declares shape \(11,\)",
        ),
        (
            _set(["arrays", "labels.classes", "shape"], [2**40]),
            "more than the .* left of max_bytes",
        ),
        (
            _set(["params", "random_state"], {"random_state": {}}),
            "not a valid RandomState state|should be a RandomState",
        ),
        (
            _set(["arrays", "labels.classes", "dtype"], "<U0"),
            "of 0 bytes per item",
        ),
        (
            _set(["arrays", "spare"], {"dtype": "<f8", "shape": [0, 2**61, 2**61]}),
            "larger than any array can be",
        ),
        (
            _set(["state", "training", "progress", "no_improvement"], 2**31),
            r"no_improvement should be an integer in \[0, 2147483647\]",
        ),
    ],
    ids=[
        "newer_version",
        "string_version",
        "zero_version",
        "format_1",
        "format_name",
        "estimator_class",
        "unknown_key",
        "unknown_parameter",
        "invalid_parameter",
        "hidden_sizes",
        "n_features_in",
        "kind",
        "array_key",
        "unknown_value",
        "malformed_record",
        "wrong_record",
        "object_dtype",
        "declared_shape",
        "huge_shape",
        "random_state",
        "empty_string_dtype",
        "impossible_shape",
        "no_improvement",
    ],
)
def test_invalid_manifest(edit, match, dense_file, tmp_path):
    path = edit_manifest(dense_file, tmp_path / "edited.skd", edit)
    assert_refused(path, match)


def test_manifest_not_json(dense_file, tmp_path):
    path = rewrite(dense_file, tmp_path / "bad.skd", {"manifest.json": b"{not json"})
    assert_refused(path, "not valid JSON")


@settings(max_examples=10, deadline=None)
@given(depth=st.integers(101, 3000), key=st.sampled_from(["alpha", "max_iter"]))
def test_manifest_nested_too_deep_is_refused(depth, key, dense_file, tmp_path_factory):
    """No reader recurses into it: refused as JSON, never a RecursionError."""
    tmp_path = tmp_path_factory.mktemp("deep")
    text = read_members(dense_file)["manifest.json"].decode()
    value = json.dumps(json.loads(text)["params"][key])
    nested = "[" * depth + value + "]" * depth
    edited = text.replace(f'"{key}": {value}', f'"{key}": {nested}', 1)
    assert edited != text
    path = rewrite(dense_file, tmp_path / "deep.skd", {"manifest.json": edited})
    assert_refused(path, "not valid JSON.*nested deeper than 100 levels")


@pytest.mark.parametrize("key", ["format_version", "max_iter", "estimator"])
def test_manifest_repeating_a_key_is_refused(key, dense_file, tmp_path):
    """Readers differ on which of two values wins: neither is taken."""
    text = read_members(dense_file)["manifest.json"].decode()
    assert f'"{key}": ' in text
    edited = text.replace(f'"{key}": ', f'"{key}": "other", "{key}": ', 1)
    path = rewrite(dense_file, tmp_path / "twice.skd", {"manifest.json": edited})
    assert_refused(path, f"the key '{key}' appears more than once")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
@pytest.mark.parametrize("nested", [False, True], ids=["file", "state.npz"])
def test_a_member_compressed_without_a_bound_is_refused(
    method, nested, dense_file, tmp_path
):
    """bzip2 and LZMA members, in the file or in its arrays' archive, are never
    decompressed (a few hundred bytes of them can inflate to gigabytes)."""
    members = read_members(dense_file)
    buffer = io.BytesIO()
    if nested:
        inner = read_members(members["state.npz"])
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in inner.items():
                archive.writestr(name, data, compress_type=method)
        members["state.npz"] = buffer.getvalue()
        buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            compression = zipfile.ZIP_DEFLATED if nested else method
            archive.writestr(name, data, compress_type=compression)
    path = tmp_path / "compressed.skd"
    path.write_bytes(buffer.getvalue())
    assert_refused(path, f"compressed with method {method}; only stored")


def _load_in_thread(path, seconds=20):
    """``load(path)``'s exception, failing the test if it blocks."""
    outcome = []

    def target():
        try:
            load(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load({str(path)!r}) blocked for {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    path = tmp_path / "pipe.skd"
    os.mkfifo(path)
    error = _load_in_thread(path)
    assert isinstance(error, ModelFileError), repr(error)
    assert "a named pipe, not a regular file" in str(error) and str(path) in str(error)


def test_a_folder_or_a_device_is_refused(tmp_path):
    error = _load_in_thread(tmp_path)
    assert isinstance(error, ModelFileError), repr(error)
    assert "it is a folder, not a regular file" in str(error)
    if os.path.exists(os.devnull) and os.name == "posix":
        error = _load_in_thread(os.devnull)
        assert isinstance(error, ModelFileError), repr(error)
        assert "a device or socket" in str(error)


def test_architecture_of_another_network_is_refused(dense_file, data, tmp_path):
    """model.keras must describe the network the parameters and weights define."""
    X, y = data
    for params in (dict(activation="tanh"), dict(hidden_layer_sizes=(9,))):
        other = KerasDigitClassifier(**{**SMALL, **params}).fit(X, y)
        save(other, tmp_path / "other.skd")
        with zipfile.ZipFile(tmp_path / "other.skd") as archive:
            network = archive.read("model.keras")
        path = rewrite(dense_file, tmp_path / "mixed.skd", {"model.keras": network})
        assert_refused(path, "config.json describes the layers")


def test_pickled_array_is_refused_and_never_unpickled(dense_file, tmp_path):
    marker = tmp_path / "payload-ran"
    payload = io.BytesIO()
    with zipfile.ZipFile(dense_file) as archive:
        with np.load(io.BytesIO(archive.read("state.npz"))) as npz:
            arrays = {key: npz[key] for key in npz.files}
    arrays["labels.classes"] = np.array([OpenOnUnpickle(str(marker))], dtype=object)
    np.savez(payload, **arrays)
    path = rewrite(
        dense_file, tmp_path / "hostile.skd", {"state.npz": payload.getvalue()}
    )
    assert_refused(path, "dtype object")
    assert not marker.exists()
    # Control: the payload is live, pickle would have run it.
    with np.load(io.BytesIO(payload.getvalue()), allow_pickle=True) as npz:
        npz["labels.classes"][0].close()
    assert marker.exists()


def test_model_file_error_pickles():
    error = ModelFileError("some/file.skd", "the file is empty (0 bytes).")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, ValueError)
    assert str(copy) == str(error)
    assert (copy.path, copy.problem) == (error.path, error.problem)


# -- regressors: a file cannot claim a state no fit produces ------------------------
_CLASSIFIER = "sk_keras_digits.KerasDigitClassifier"
_REGRESSOR = "sk_keras_digits.KerasDigitRegressor"


def _edit_state(source, target, edit, drop_arrays=()):
    """Copy a model file, editing its manifest and dropping arrays of state.npz."""
    with zipfile.ZipFile(source) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        with np.load(io.BytesIO(archive.read("state.npz"))) as npz:
            arrays = {key: npz[key] for key in npz.files if key not in drop_arrays}
    edit(manifest)
    for key in drop_arrays:
        del manifest["arrays"][key]
    npz = io.BytesIO()
    np.savez(npz, **arrays)
    members = {"manifest.json": json.dumps(manifest), "state.npz": npz.getvalue()}
    return rewrite(source, target, members)


def _both(*edits):
    def edit(manifest):
        for one in edits:
            one(manifest)

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            _set(["params", "loss"], "poisson"),
            r"state.labels.loss is 'squared_error', but params\['loss'\] is 'poisson'",
        ),
        (
            _set(["state", "labels", "loss"], "poisson"),
            r"state.labels.loss is 'poisson', but params\['loss'\] is 'squared_error'",
        ),
        (
            _both(
                _set(["state", "labels", "loss"], "poisson"),
                _set(["params", "loss"], "poisson"),
            ),
            r"config.json describes the layers .*'linear'.*'exponential'",
        ),
        (_set(["params", "loss"], "huber"), "invalid parameters: The 'loss'"),
        (
            _both(
                _set(["state", "labels", "loss"], "huber"),
                _set(["params", "loss"], "huber"),
            ),
            "invalid parameters: The 'loss'",
        ),
        (
            _set(["state", "labels", "loss"], "huber"),
            r"state.labels.loss should be one of \['poisson', 'squared_error'\]",
        ),
        (
            _set(["state", "labels", "n_outputs"], 2),
            r"kernels and biases of shapes \[\(6, 5\), \(5,\), \(5, 2\)",
        ),
        (_set(["state", "labels", "n_outputs"], 0), "n_outputs should be a positive"),
        (_set(["state", "labels", "n_outputs"], True), "should be an integer"),
        (_set(["state", "labels", "classes"], []), r"should have the fields \['loss'"),
        (
            _set(["state", "training", "progress", "best_score"], 0.5),
            "best_score should be -inf without early stopping, got 0.5",
        ),
        (
            _set(["state", "history", "losses", 0], -0.5),
            "losses should be finite numbers >= 0, got",
        ),
        (
            _set(["state", "history", "loss"], {"float": "nan"}),
            "loss should be a finite number >= 0, got nan",
        ),
        (
            _set(["params", "class_weight"], None),
            r"parameters \['class_weight'\] are unexpected",
        ),
        (
            _set(["estimator"], _CLASSIFIER),
            rf"estimator is '{_CLASSIFIER}', but params are a {_REGRESSOR}'s "
            r"\(the parameters \['class_weight', 'loss'\]",
        ),
        (
            _both(_set(["format_version"], 1), _set(["object_arrays"], {})),
            f"holds a {_REGRESSOR}, but format 1 held {_CLASSIFIER} only",
        ),
    ],
    ids=[
        "params_loss",
        "state_loss",
        "both_losses",
        "unknown_params_loss",
        "unknown_losses",
        "unknown_state_loss",
        "n_outputs",
        "zero_outputs",
        "bool_outputs",
        "classes",
        "progress_without_early_stopping",
        "negative_loss",
        "nan_loss_without_early_stopping",
        "class_weight",
        "classifier_manifest",
        "format_1",
    ],
)
def test_invalid_regressor_manifest(edit, match, regressor_file, tmp_path):
    path = edit_manifest(regressor_file, tmp_path / "edited.skd", edit)
    assert_refused(path, match)


def test_a_classifier_file_cannot_hold_a_regressors_state(dense_file, tmp_path):
    targets = {"record": "RegressionTargets", "n_outputs": 10, "loss": "squared_error"}
    path = _edit_state(
        dense_file,
        tmp_path / "mixed.skd",
        _set(["state", "labels"], targets),
        drop_arrays=["labels.classes"],
    )
    assert_refused(
        path,
        "state.labels is a RegressionTargets record, but a KerasDigitClassifier's "
        "fitted state holds its targets as a LabelEncoding record",
    )
    # Named a regressor, it holds a classifier's parameters.
    path = edit_manifest(
        dense_file, tmp_path / "named.skd", _set(["estimator"], _REGRESSOR)
    )
    assert_refused(path, rf"but params are a {_CLASSIFIER}'s")


def test_a_regressor_file_cannot_hold_a_classifiers_state(regressor_file, tmp_path):
    labels = {
        "record": "LabelEncoding",
        "classes": {"objects": ["a"]},
        "kind": "binary",
    }
    path = edit_manifest(
        regressor_file, tmp_path / "mixed.skd", _set(["state", "labels"], labels)
    )
    assert_refused(
        path,
        "state.labels is a LabelEncoding record, but a KerasDigitRegressor's "
        "fitted state holds its targets as a RegressionTargets record",
    )


@pytest.fixture(scope="module")
def custom_regressor_file(regression, tmp_path_factory):
    X, Y = regression
    params = {**SMALL_REGRESSION, "network": wide_network}
    est = KerasDigitRegressor(**params).fit(X, Y)
    path = tmp_path_factory.mktemp("custom_regressor") / "custom.skd"
    save(est, path)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            _both(
                _set(["state", "labels", "loss"], "poisson"),
                _set(["params", "loss"], "poisson"),
            ),
            r"output layer applies 'linear', but regression targets "
            r"\(loss='poisson'\) need 'exponential'",
        ),
        (
            _set(["state", "labels", "n_outputs"], 10**9),
            "n_outputs is 1000000000, more than a network of 74 trainable scalars",
        ),
        (
            _set(["state", "labels", "n_outputs"], 3),
            r"cannot be rebuilt .*must output shape \(n_samples, 3\)",
        ),
    ],
    ids=["output_activation", "huge_n_outputs", "n_outputs"],
)
def test_invalid_custom_regressor_manifest(
    edit, match, custom_regressor_file, tmp_path
):
    path = edit_manifest(custom_regressor_file, tmp_path / "edited.skd", edit)
    assert_refused(path, match)


def test_a_number_for_a_custom_regressors_weight_is_refused(
    custom_regressor_file, tmp_path
):
    key = "training.weights.params.0"
    path = _edit_state(
        custom_regressor_file,
        tmp_path / "edited.skd",
        _set(["state", "training", "weights", "params", 0], 1.5),
        drop_arrays=[key],
    )
    assert_refused(path, "state.training.weights should hold arrays only")


def test_a_files_carried_learning_rate_that_diverges_is_named(
    dense_file, data, tmp_path
):
    """A file may carry any positive rate for ``partial_fit`` to go on at (a
    ``set_params`` after the fit may have changed ``learning_rate_init``):
    one that makes the next call diverge is named in its error, not X alone,
    and the loaded estimator is kept as it was."""
    X, y = data
    path = _edit_state(
        dense_file,
        tmp_path / "rate.skd",
        _set(["state", "training", "progress", "learning_rate"], 1e300),
    )
    loaded = load(path)
    before = loaded.predict_proba(X)
    match = r"earlier calls' rate, 1e\+300, above learning_rate_init=0\.2"
    with pytest.raises(ValueError, match=match):
        loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), before)
    loaded.fit(X, y)  # a fresh fit starts from learning_rate_init

"""Tests for sk_keras_digits._persistence.old.format_1.

Format-1 files load through format 2's checks.

The files in ``tests/data/format_1`` were written by sk_keras_digits at commit
afedff9 (format 1), with the probabilities and fitted attributes it computed.
"""

import json
import pathlib
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from sk_keras_digits import ModelFileError, load, save
from sk_keras_digits._persistence import SavedNetwork
from tests._helpers import read_members, zip_bytes

DATA = pathlib.Path(__file__).parents[2] / "data" / "format_1"
CASES = [
    "sgd",
    "adam_early_stopping_strings",
    "lbfgs_multilabel",
    "random_state_pandas",
    "custom_adam",
]


@pytest.fixture(scope="module")
def X():
    return np.load(DATA / "X.npy")


@pytest.mark.parametrize("case", CASES)
def test_format_1_files_load_as_they_were_saved(case, X, tmp_path):
    expected = json.loads((DATA / "attributes.json").read_text())[case]
    est = load(DATA / f"{case}.skd")
    if case == "random_state_pandas":
        X = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
        assert list(est.feature_names_in_) == list(X.columns)
        assert isinstance(est.random_state, np.random.RandomState)
    np.testing.assert_allclose(
        est.predict_proba(X), np.load(DATA / f"{case}_proba.npy"), rtol=1e-6
    )
    for name, value in expected.items():
        got = getattr(est, name)
        got = got.tolist() if isinstance(got, np.ndarray) else got
        assert got == value, name
    if case == "custom_adam":
        assert isinstance(est.network, SavedNetwork)
    # Saved again, it is a format-2 file with the same state.
    save(est, tmp_path / "again.skd")
    with zipfile.ZipFile(tmp_path / "again.skd") as archive:
        assert json.loads(archive.read("manifest.json"))["format_version"] == 2
    again = load(tmp_path / "again.skd")
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    assert repr(again._state) == repr(est._state)


def test_format_1_state_goes_through_the_same_checks(tmp_path):
    """A tampered format-1 file is refused as a format-2 one would be."""
    source = DATA / "sgd.skd"
    members = read_members(source)
    manifest = json.loads(members["manifest.json"])
    edits = {
        "n_features_in": (
            lambda m: m["state"]["dict"].update(n_features_in_=3),
            "kernels and biases of shapes",
        ),
        "kind": (
            lambda m: m["state"]["dict"]["_label_binarizer"]["state"]["dict"].update(
                y_type_="binary"
            ),
            "2 classes for binary",
        ),
        "pos": (
            lambda m: m["params"]["dict"].update(
                random_state={
                    "random_state": {"tuple": ["MT19937", {"array": "a1"}, 700, 0, 0.0]}
                }
            ),
            "random_state|RandomState",
        ),
        "loop": (
            lambda m: m["state"]["dict"]["_loop"]["dict"].update(learning_rate=-1),
            "learning_rate should be a finite number > 0",
        ),
        "missing": (
            lambda m: m["state"]["dict"].pop("_loop"),
            "incomplete or malformed",
        ),
        "extra_key": (lambda m: m.update(extra=1), "unexpected or missing keys"),
    }
    for name, (edit, match) in edits.items():
        edited = json.loads(json.dumps(manifest))
        edit(edited)
        path = tmp_path / f"{name}.skd"
        manifest_json = json.dumps(edited)
        path.write_bytes(
            zip_bytes({**members, "manifest.json": manifest_json}, zipfile.ZIP_STORED)
        )
        with pytest.raises(ModelFileError, match=match):
            load(path)
    # Untouched, it loads (from a copy: the data folder is read only here).
    shutil.copy(source, tmp_path / "copy.skd")
    load(tmp_path / "copy.skd")


def _leaves(node, path=()):
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield (*path, key)
        yield from _leaves(value, (*path, key))


@pytest.mark.parametrize("case", ["sgd", "adam_early_stopping_strings"])
def test_fuzz_format_1_manifest(case, X, tmp_path):
    """Every single change to a format-1 manifest: refused, or self-consistent."""
    members = read_members(DATA / f"{case}.skd")
    manifest = json.loads(members["manifest.json"])
    path = tmp_path / "mutated.skd"
    refused = accepted = 0
    for where in _leaves(manifest):
        if where[0] in ("format", "format_version", "estimator", "versions"):
            continue
        for replacement in (0, -1, 10**30, {"float": "nan"}, "x", [], None):
            edited = json.loads(json.dumps(manifest))
            node = edited
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = replacement
            manifest_json = json.dumps(edited)
            path.write_bytes(
                zip_bytes(
                    {**members, "manifest.json": manifest_json}, zipfile.ZIP_STORED
                )
            )
            try:
                est = load(path)
            except ModelFileError:
                refused += 1
                continue
            accepted += 1
            proba = est.predict_proba(X)
            assert np.array_equal(
                est.predict(X), est.classes_[np.argmax(proba, axis=1)]
            )
    assert refused > 2 * accepted

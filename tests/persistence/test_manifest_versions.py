"""The manifest's library versions: Keras' is recorded whether or not a fit
imported Keras, and files that lack it (written before) still load."""

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sk_keras_digits import load
from sk_keras_digits._persistence import manifest as manifest_module
from tests._helpers import IGNORE_CONVERGENCE, read_members, zip_bytes

pytestmark = IGNORE_CONVERGENCE

KERAS = importlib.metadata.version("keras")


@pytest.mark.parametrize("imported", [True, False])
def test_the_keras_version_is_recorded_imported_or_not(monkeypatch, imported):
    """A fit served by the compilation cache never imports Keras: the version
    is the installed one's, read without importing it."""
    if imported:
        importlib.import_module("keras")
    else:
        monkeypatch.delitem(sys.modules, "keras", raising=False)
    versions = manifest_module.library_versions()
    assert versions["keras"] == KERAS
    assert ("keras" in sys.modules) == imported  # not imported to read it
    assert set(versions) == {"sk_keras_digits", "scikit-learn", "numpy"} | {
        "keras",
        "python",
    }


def test_a_file_without_the_keras_version_loads(dense, dense_file, data, tmp_path):
    """Files written before (by a process that had not imported Keras) load."""
    members = read_members(dense_file)
    manifest = json.loads(members["manifest.json"])
    assert manifest["versions"]["keras"] == KERAS
    del manifest["versions"]["keras"]
    members["manifest.json"] = json.dumps(manifest).encode()
    path = tmp_path / "older.skd"
    path.write_bytes(zip_bytes(members))
    X, _ = data
    assert np.array_equal(load(path).predict_proba(X), dense.predict_proba(X))


#: A fit on JAX, then its file's manifest: whether Keras was imported by the
#: fit, and the versions the file records.
_FIT_AND_SAVE = """
    import json, sys, zipfile
    from sklearn.datasets import load_digits
    from sk_keras_digits import KerasDigitClassifier, save

    X, y = load_digits(return_X_y=True)
    est = KerasDigitClassifier(hidden_layer_sizes=(7,), max_iter=2, random_state=0)
    est.fit(X[:100] / 16, y[:100])
    imported = "keras" in sys.modules
    save(est, sys.argv[1])
    with zipfile.ZipFile(sys.argv[1]) as archive:
        versions = json.loads(archive.read("manifest.json"))["versions"]
    print(json.dumps([imported, versions]))
"""


def test_a_file_saved_after_a_cached_jax_fit_records_keras(tmp_path):
    """A fresh process on JAX whose fit comes from a warm compilation cache
    (no Keras imported) still records Keras' version."""
    pytest.importorskip("jax")
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        TF_CPP_MIN_LOG_LEVEL="3",
        SK_KERAS_DIGITS_COMPILE_CACHE=str(tmp_path / "xla"),
    )
    runs = []
    for i in range(2):
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_FIT_AND_SAVE)]
            + [str(tmp_path / f"{i}.skd")],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(json.loads(result.stdout.splitlines()[-1]))
    (traced, first), (imported, cached) = runs
    assert traced and not imported  # the second fit came from the cache
    assert first["keras"] == cached["keras"] == KERAS

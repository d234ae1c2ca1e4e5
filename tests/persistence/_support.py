"""Networks and helpers shared by the persistence tests.

The networks live at module level, so that estimators using them pickle.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest
from sklearn.base import is_classifier

from sk_keras_digits import (
    ModelFileError,
    load,
)
from tests._networks import dropout_network  # noqa: F401 - shared here

PUBLIC_ATTRIBUTES = (
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "t_",
    "n_iter_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "n_features_in_",
    "history_",
)


# -- custom networks (module level, so that they pickle) ------------------------


def wide_network(n_features_in, n_outputs, output_activation, units=8):
    inputs = keras.Input((n_features_in,))
    hidden = keras.layers.Dense(units, activation="tanh")(inputs)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(hidden)
    return keras.Model(inputs, outputs)


def lambda_network(n_features_in, n_outputs, output_activation):
    inputs = keras.Input((n_features_in,))
    halved = keras.layers.Lambda(lambda x: x * 0.5)(inputs)
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(halved)
    return keras.Model(inputs, outputs)


class Scale(keras.layers.Layer):
    """A custom layer that is not registered with Keras."""

    def call(self, x):
        return x * 2.0


def custom_layer_network(n_features_in, n_outputs, output_activation):
    inputs = keras.Input((n_features_in,))
    outputs = keras.layers.Dense(n_outputs, activation=output_activation)(
        Scale()(inputs)
    )
    return keras.Model(inputs, outputs)


class OpenOnUnpickle:
    """A pickle payload: unpickling it creates the file at ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- helpers ---------------------------------------------------------------------
def assert_same_params(a, b, skip=()):
    """Equal parameters, but those in ``skip`` (and their nested ones)."""

    def kept(params):
        return {
            name: value
            for name, value in params.items()
            if name.split("__")[0] not in skip
        }

    pa, pb = kept(a.get_params()), kept(b.get_params())
    assert pa.keys() == pb.keys()
    for name in pa:
        if isinstance(pa[name], np.random.RandomState):
            sa, sb = pa[name].get_state(), pb[name].get_state()
            assert sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]
        else:
            assert pa[name] == pb[name], name
            assert type(pa[name]) is type(pb[name]), name


def assert_same_estimator(a, b, X):
    """Identical predictions, probabilities, labels and fitted attributes."""
    assert type(a) is type(b)
    if is_classifier(a):
        assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
        assert np.array_equal(a.classes_, b.classes_)
        assert a.classes_.dtype == b.classes_.dtype
    pred_a, pred_b = a.predict(X), b.predict(X)
    assert np.array_equal(pred_a, pred_b)
    assert pred_a.dtype == pred_b.dtype
    for name in PUBLIC_ATTRIBUTES:
        assert getattr(a, name) == getattr(b, name), name
    for name in ("coefs_", "intercepts_"):
        assert len(getattr(a, name)) == len(getattr(b, name))
        for u, v in zip(getattr(a, name), getattr(b, name), strict=True):
            assert np.array_equal(u, v) and u.dtype == v.dtype
    if hasattr(a, "feature_names_in_"):
        assert np.array_equal(a.feature_names_in_, b.feature_names_in_)
        assert a.feature_names_in_.dtype == b.feature_names_in_.dtype
    else:
        assert not hasattr(b, "feature_names_in_")


def assert_same_state(a, b):
    """Two fitted-state records are equal, arrays (and their dtypes) included."""
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            assert_same_state(u, v)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def rewrite(source, target, replace=None, drop=()):
    """Copy the model file ``source`` to ``target``, changing some members."""
    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name not in drop:
                new.writestr(name, replace.get(name, old.read(name)))
    return target


def edit_manifest(source, target, edit):
    with zipfile.ZipFile(source) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    edit(manifest)
    return rewrite(source, target, {"manifest.json": json.dumps(manifest)})


def member_data_offset(path, name):
    """Offset of the first byte of member ``name``'s data in the archive."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as file:
        file.seek(info.header_offset + 26)
        name_length = int.from_bytes(file.read(2), "little")
        extra_length = int.from_bytes(file.read(2), "little")
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def flip(data, position):
    data = bytearray(data)
    data[position] ^= 0xFF
    return bytes(data)


def run_python(script, *args, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return result


_LOAD_MEASURED = """
    import json, sys, threading, time
    import keras  # imported before measuring, as loading a custom network does
    import psutil
    from sk_keras_digits import ModelFileError, load

    process = psutil.Process()
    load(sys.argv[1])  # warm up: a valid file
    report = {}
    for path in sys.argv[2:]:
        before = process.memory_info().rss
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.0005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        problem = message = None
        try:
            load(path)
        except ModelFileError as exc:
            problem, message = exc.problem, str(exc)
        except BaseException as exc:
            problem = message = "NOT A ModelFileError: " + repr(exc)[:300]
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        report[path] = {
            "problem": problem,
            "message": message,
            "rss_growth_mib": (peak[0] - before) / 2**20,
            "seconds": seconds,
        }
    print("REPORT" + json.dumps(report))
"""


def load_measured(valid, paths):
    """Load each of ``paths`` in a fresh process (after ``valid``), measured.

    Returns ``{path: {"problem", "message", "rss_growth_mib", "seconds"}}``:
    the ``ModelFileError``'s problem and whole message (None if the file
    loaded), the growth of the peak resident memory and the time taken.
    """
    result = run_python(_LOAD_MEASURED, valid, *paths, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT", 1)[1])
    return {path: report[str(path)] for path in paths}


def assert_refused(path, match, **kwargs):
    with pytest.raises(ModelFileError, match=match) as info:
        load(path, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    return info.value


def saved_custom_file(network, data, tmp_path_factory, name):
    """The model file of a small fit of ``network`` on ``data``, in a new folder."""
    from sk_keras_digits import KerasDigitClassifier, save
    from tests._helpers import SMALL

    est = KerasDigitClassifier(**{**SMALL, "network": network}).fit(*data)
    path = tmp_path_factory.mktemp(name) / f"{name}.skd"
    save(est, path)
    return path

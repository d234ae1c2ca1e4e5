"""The model file's codecs: the schema (state and parameters), and a fuzz test of load.

The fuzz test saves small fitted estimators of every kind, classifiers and
regressors, then changes one value of the manifest or one array of
``state.npz`` at a time and loads the result: the file must be refused with a
ModelFileError, or load as a self-consistent estimator that predicts, and
refits, without crashing.
"""

import io
import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from sk_keras_digits import (
    KerasDigitClassifier,
    KerasDigitRegressor,
    ModelFileError,
    load,
    save,
)
from sk_keras_digits._persistence.errors import Refused
from sk_keras_digits._persistence.params_codec import params_from_json, params_to_json
from sk_keras_digits._persistence.state_codec import state_from_json, state_to_json
from tests._helpers import SMALL, read_members, zip_bytes
from tests._networks import dropout_network

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore::UserWarning"
)


def _targets(y, kind):
    if kind == "binary":
        return np.where(y % 2 == 0, "even", "odd").astype(object)
    if kind == "multilabel":
        return np.c_[y % 2, y > 4, y == 0].astype(int)
    if kind == "single":
        return np.full(len(y), "seven")
    if kind == "regression_2d":
        return np.c_[y / 9.0, y % 3 - 1.0]
    if kind == "counts":
        return y.astype(float)
    return y


#: Target kinds of a regressor.
_REGRESSION = ("regression_2d", "counts")


CASES = {
    "multiclass_sgd": (dict(), "multiclass"),
    "binary_adam_early_stopping": (
        dict(solver="adam", early_stopping=True, validation_fraction=0.3),
        "binary",
    ),
    "multilabel_lbfgs": (dict(solver="lbfgs", max_iter=8), "multilabel"),
    "custom_adam": (dict(solver="adam", network=dropout_network), "multiclass"),
    "random_state_sgd": (
        dict(random_state=np.random.RandomState(3), learning_rate="adaptive"),
        "multiclass",
    ),
    "keras_optimizer_class_weight": (
        dict(
            solver=keras.optimizers.RMSprop(
                keras.optimizers.schedules.ExponentialDecay(1e-2, 5, 0.9)
            ),
            class_weight={0: 3.0, 9: 0.5},
        ),
        "multiclass",
    ),
    "single_class": (dict(), "single"),
    "regressor_sgd_2d": (dict(learning_rate_init=0.05), "regression_2d"),
    "regressor_poisson_adam_early_stopping": (
        dict(
            loss="poisson",
            solver="adam",
            learning_rate_init=0.01,
            early_stopping=True,
            validation_fraction=0.3,
        ),
        "counts",
    ),
}


@pytest.fixture(scope="module")
def data(small_digits):
    X, y = small_digits
    return X[:120], y[:120]


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """Each case: its fitted estimator, file, targets."""
    X, y = data
    folder = tmp_path_factory.mktemp("fuzz")
    cases = {}
    for name, (params, kind) in CASES.items():
        targets = _targets(y, kind)
        cls = KerasDigitRegressor if kind in _REGRESSION else KerasDigitClassifier
        est = cls(**{**SMALL, **params}).fit(X, targets)
        path = folder / f"{name}.skd"
        save(est, path)
        cases[name] = (est, path, targets)
    return cases


# -- the schema ----------------------------------------------------------------------
def test_state_json_round_trip(saved):
    for est, _, _ in saved.values():
        tree, arrays = state_to_json(est._state)
        json.dumps(tree, allow_nan=False)  # strict JSON
        again = state_from_json(json.loads(json.dumps(tree)), arrays)
        assert repr(again) == repr(est._state)


def test_state_from_json_refuses_unused_arrays(saved):
    est = saved["multiclass_sgd"][0]
    tree, arrays = state_to_json(est._state)
    with pytest.raises(Refused, match=r"arrays \['spare'\] that the state never"):
        state_from_json(tree, {**arrays, "spare": np.zeros(3)})


def test_keras_optimizer_and_class_weight_params_round_trip():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    params = dict(
        solver=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-3),
        class_weight={3: 2.0, "cat": 0.5, np.int64(7): 1.5},
    )
    tree = json.loads(json.dumps(params_to_json(params), allow_nan=False))
    again = params_from_json(tree, params)
    assert type(again["solver"]) is keras.optimizers.AdamW
    assert again["solver"].weight_decay == 1e-3
    rate = again["solver"].get_config()["learning_rate"]
    assert rate["class_name"] == "ExponentialDecay"
    assert rate["config"] == schedule.get_config()
    assert again["class_weight"] == {3: 2.0, "cat": 0.5, 7: 1.5}


@pytest.mark.parametrize(
    "node, match",
    [
        ({"class_name": "system", "config": {}}, "not one of Keras' built-in"),
        ({"class_name": "Lambda", "config": {}}, "not one of Keras' built-in"),
        ({"class_name": "Optimizer", "config": {}}, "cannot rebuild"),
        (
            {"class_name": "SGD", "config": {"learning_rate": {"class_name": "Dense"}}},
            "not one of Keras' built-in schedules",
        ),
        ({"class_name": "Adam", "config": {"beta_1": "high"}}, "finite number"),
        ({"class_name": "Adam", "config": {"use_ema": "yes"}}, "True or False"),
        ({"class_name": "Adam", "config": {"use_ema": True}}, "use_ema=True"),
        ({"class_name": "Adam", "config": {"virus": 1}}, "does not take"),
        (
            {"class_name": "SGD", "config": {"weight_decay": "x"}},
            "weight_decay='x'; expected None or a finite number >= 0",
        ),
        (
            {"class_name": "SGD", "config": {"clipvalue": [1]}},
            r"clipvalue=\[1\]; expected None or a finite number > 0",
        ),
        ({"class_name": "SGD", "config": {"clipnorm": -1}}, "clipnorm=-1"),
        ({"class_name": "Adam", "config": {"loss_scale_factor": "x"}}, "loss_scale"),
        (
            {
                "class_name": "SGD",
                "config": {
                    "learning_rate": {
                        "class_name": "ExponentialDecay",
                        "config": {
                            "initial_learning_rate": -1.0,
                            "decay_steps": 10,
                            "decay_rate": 0.9,
                        },
                    }
                },
            },
            "initial_learning_rate is a finite number > 0",
        ),
    ],
)
def test_a_tampered_optimizer_is_refused_without_importing_code(node, match):
    with pytest.raises(Refused, match=match):
        params_from_json({"solver": {"keras_optimizer": node}}, ["solver"])


def test_custom_optimizers_are_not_saved():
    class MySGD(keras.optimizers.SGD):
        pass

    with pytest.raises(TypeError, match="built-in optimizers and learning-rate"):
        params_to_json({"solver": MySGD()})


@pytest.mark.parametrize(
    "mapping, match",
    [([[[1, 2], 1.0]], "invalid"), ([[1, 1.0], [1, 2.0]], "repeats a key")],
)
def test_a_tampered_class_weight_is_refused(mapping, match):
    with pytest.raises(Refused, match=match):
        params_from_json({"class_weight": {"mapping": mapping}}, ["class_weight"])


@pytest.mark.parametrize(
    "mapping, match",
    [([[42, 1.0]], "not classes"), ([[0, -3.0]], "finite non-negative")],
)
def test_a_class_weight_no_fit_accepts_is_refused_on_load(
    saved, tmp_path, mapping, match
):
    members = read_members(saved["keras_optimizer_class_weight"][1])
    manifest = json.loads(members["manifest.json"])
    manifest["params"]["class_weight"] = {"mapping": mapping}
    path = tmp_path / "edited.skd"
    path.write_bytes(
        zip_bytes({**members, "manifest.json": json.dumps(manifest).encode()})
    )
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_params_json_round_trip():
    params = dict(
        a=(1, 2),
        b=[3, np.int64(4)],
        c=np.inf,
        d=None,
        e=np.random.RandomState(5),
        f=np.array([7, 8]),
        g="x",
    )
    again = params_from_json(json.loads(json.dumps(params_to_json(params))), params)
    assert again["a"] == (1, 2) and again["b"] == [3, 4] and again["c"] == np.inf
    assert type(again["b"][1]) is np.int64
    assert np.array_equal(again["f"], [7, 8]) and again["f"].dtype == np.int64
    assert again["e"].randint(1000) == np.random.RandomState(5).randint(1000)


@pytest.mark.parametrize(
    "field, value",
    [
        ("pos", 625),
        ("pos", -1),
        ("has_gauss", 2),
        ("cached_gaussian", {"float": "nan"}),
    ],
)
def test_random_state_is_bounds_checked(field, value):
    node = params_to_json({"random_state": np.random.RandomState(0)})
    node["random_state"]["random_state"][field] = value
    with pytest.raises(Refused, match="not a valid RandomState state"):
        params_from_json(node, ["random_state"])
    node = params_to_json({"random_state": np.random.RandomState(0)})
    node["random_state"]["random_state"]["key"][3] = 2**32
    with pytest.raises(Refused, match="key should be 624 integers"):
        params_from_json(node, ["random_state"])


# -- the fuzz test ------------------------------------------------------------------
def _leaves(node, path=()):
    """Paths of every value in a JSON tree (the root excluded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), value
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*path, i), value
            yield from _leaves(value, (*path, i))


_REPLACEMENTS = {
    "zero": 0,
    "minus_one": -1,
    "huge_int": 10**30,
    "huge_float": 1e308,
    "nan": {"float": "nan"},
    "inf": {"float": "inf"},
    "string": "x",
    "list": [],
}


def _mutations(manifest):
    """Every single change to the manifest: (description, edit)."""
    for path, value in _leaves(manifest):
        if path[0] in ("format", "format_version", "estimator", "versions"):
            continue  # covered by tests/persistence/test_refusals.py
        kinds = list(_REPLACEMENTS) + ["drop"]
        if isinstance(value, dict):
            kinds.append("extra_key")
        for kind in kinds:
            yield f"{'/'.join(map(str, path))}:{kind}", (path, kind)


def _apply(manifest, path, kind):
    manifest = json.loads(json.dumps(manifest))
    node = manifest
    for key in path[:-1]:
        node = node[key]
    if kind == "drop":
        del node[path[-1]]
    elif kind == "extra_key":
        node[path[-1]]["extra"] = 1
    else:
        node[path[-1]] = _REPLACEMENTS[kind]
    return manifest


def _arrays(members):
    with np.load(io.BytesIO(members["state.npz"]), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _npz(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _array_mutations(arrays):
    for key, array in arrays.items():
        variants = {
            "int8": array.astype(np.int8) if array.dtype.kind != "U" else None,
            "complex": array.astype(np.complex128) if array.dtype.kind != "U" else None,
            "object": array.astype(object),
            "longer": np.concatenate([array.ravel(), array.ravel()[:1]]),
            "flat": array.ravel()[:-1] if array.size > 1 else None,
            "nan": None,
        }
        if array.dtype.kind == "f":
            nan = array.copy()
            nan.flat[0] = np.nan
            variants["nan"] = nan
        for kind, value in variants.items():
            if value is not None:
                yield f"{key}:{kind}", key, value


def check_consistent(est, X, targets):
    """The loaded estimator agrees with itself; return it."""
    if isinstance(est, KerasDigitRegressor):
        check_consistent_regressor(est, X, targets)
        return
    proba = est.predict_proba(X)
    pred = est.predict(X)
    classes = est.classes_
    assert proba.shape == (X.shape[0], max(len(classes), 2))
    model = np.asarray(est.model_(X.astype(est.coefs_[0].dtype)))
    if est.n_outputs_ == 1:
        np.testing.assert_allclose(model[:, 0], proba[:, 1], rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(model, proba, rtol=1e-4, atol=1e-5)
    if est.out_activation_ == "softmax":
        assert np.array_equal(pred, classes[np.argmax(proba, axis=1)])
    elif np.ndim(targets) == 2:
        assert np.array_equal(pred, (proba > 0.5).astype(pred.dtype))
    elif len(classes) == 1:  # as MLPClassifier: always the one class
        assert np.array_equal(pred, np.repeat(classes, len(X)))
    else:
        assert np.array_equal(pred, classes[(proba[:, 1] > 0.5).astype(int)])
    assert est.out_activation_ == (
        "softmax" if len(classes) > 2 and np.ndim(targets) == 1 else "logistic"
    )


def check_consistent_regressor(est, X, targets):
    """A loaded regressor predicts its network's outputs, one per target."""
    pred = est.predict(X)
    assert pred.shape == np.shape(targets)
    assert est.n_outputs_ == (1 if np.ndim(targets) == 1 else targets.shape[1])
    model = np.asarray(est.model_(X.astype(est.coefs_[0].dtype)))
    np.testing.assert_allclose(
        model, pred.reshape(len(X), -1), rtol=1e-4, atol=1e-5, equal_nan=True
    )
    assert (
        est.out_activation_ == {"squared_error": "identity", "poisson": "exp"}[est.loss]
    )
    if est.loss == "poisson":
        assert (pred[np.isfinite(pred)] >= 0).all()


def _check(est, X, targets, name, failures):
    try:
        check_consistent(est, X, targets)
    except Exception as exc:
        failures.append(f"{name}: inconsistent: {type(exc).__name__}: {exc}"[:300])


def _try_load(path, name, failures):
    """The loaded estimator, None if refused; other errors go to ``failures``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(path)
    except ModelFileError as exc:
        assert str(path) in str(exc)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    return None


# Mutations loaded and checked per case, drawn deterministically.
N_MUTATIONS = {
    "custom_adam": 60,
    "keras_optimizer_class_weight": 150,
    "regressor_sgd_2d": 200,
    "regressor_poisson_adam_early_stopping": 200,
}
N_MUTATIONS_DEFAULT = 600
# Mutations of a regressor's targets and loss, always loaded: what tells a
# regressor's file from a classifier's.
_ALWAYS = (("state", "labels"), ("params", "loss"))
N_REFITS = 4


@pytest.mark.parametrize("case", [c for c in CASES if c != "random_state_sgd"])
def test_fuzz_manifest_and_arrays(case, saved, data, tmp_path):
    X, _ = data
    est, source, targets = saved[case]
    members = read_members(source)
    manifest = json.loads(members["manifest.json"])
    rng = np.random.RandomState(sum(map(ord, case)))
    mutations = list(_mutations(manifest))
    count = N_MUTATIONS.get(case, N_MUTATIONS_DEFAULT)
    drawn = set(rng.permutation(len(mutations))[:count])
    if case.startswith("regressor"):
        drawn |= {
            i for i, (_, (where, _)) in enumerate(mutations) if where[:2] in _ALWAYS
        }
    chosen = [mutations[i] for i in sorted(drawn)]
    path = tmp_path / "mutated.skd"
    accepted, refused, failures = [], 0, []
    for name, (where, kind) in chosen:
        mutated = _apply(manifest, where, kind)
        path.write_bytes(zip_bytes({**members, "manifest.json": json.dumps(mutated)}))
        loaded = _try_load(path, name, failures)
        if loaded is None:
            refused += 1
            continue
        _check(loaded, X, targets, name, failures)
        accepted.append((name, loaded))
    arrays = _arrays(members)
    for name, key, value in _array_mutations(arrays):
        for declare in (False, True):
            if declare and value.dtype.hasobject:
                continue
            edited = json.loads(json.dumps(manifest))
            if declare:
                edited["arrays"][key] = {
                    "dtype": value.dtype.str,
                    "shape": list(value.shape),
                }
            path.write_bytes(
                zip_bytes(
                    {
                        **members,
                        "manifest.json": json.dumps(edited),
                        "state.npz": _npz({**arrays, key: value}),
                    }
                )
            )
            loaded = _try_load(path, name, failures)
            if loaded is None:
                refused += 1
                continue
            _check(loaded, X, targets, name, failures)
            accepted.append((f"{name}:declared={declare}", loaded))
    assert not failures, "\n".join(failures)
    # Most single changes are refused; those accepted were harmless.
    assert refused > 2 * len(accepted), [name for name, _ in accepted]
    # A few accepted estimators refit (guarded: an exception is fine, a crash not).
    for i in rng.permutation(len(accepted))[:N_REFITS]:
        name, loaded = accepted[i]
        loaded.set_params(max_iter=2, max_fun=20)
        try:
            loaded.fit(X[:60], targets[:60])
        except (ValueError, TypeError, OverflowError) as exc:
            print(f"{name}: refit raised {type(exc).__name__}: {exc}")
        else:
            check_consistent(loaded, X, targets)
    print(
        f"{case}: {refused} refused, {len(accepted)} accepted:",
        [n for n, _ in accepted],
    )


REFIT_SCRIPT = """
    import sys, warnings
    import numpy as np
    from sk_keras_digits import ModelFileError, load
    warnings.simplefilter("ignore")
    X = np.load(sys.argv[1])
    y = np.load(sys.argv[2])
    for path in sys.argv[3:]:
        try:
            est = load(path)
        except ModelFileError:
            print("refused", flush=True)
            continue
        est.set_params(max_iter=2).fit(X, y)
        est.predict(X)
        print("refitted", flush=True)
"""


def test_fuzz_random_state_refits_in_a_subprocess(saved, data, tmp_path):
    """Changed RandomState fields: refused, or a refit that does not crash."""
    X, y = data
    _, source, targets = saved["random_state_sgd"]
    members = read_members(source)
    manifest = json.loads(members["manifest.json"])
    node = manifest["params"]["random_state"]["random_state"]
    edits = [
        ("pos", 625),
        ("pos", 624),
        ("pos", 10**6),
        ("pos", -1),
        ("pos", 0),
        ("has_gauss", 2),
        ("has_gauss", 1),
        ("cached_gaussian", {"float": "nan"}),
        ("cached_gaussian", 1e308),
        ("key", node["key"][:-1]),
        ("key", [2**32] + node["key"][1:]),
        ("key", [0] * 624),
    ]
    paths = []
    for i, (field, value) in enumerate(edits):
        edited = json.loads(json.dumps(manifest))
        edited["params"]["random_state"]["random_state"][field] = value
        path = tmp_path / f"state_{i}.skd"
        path.write_bytes(zip_bytes({**members, "manifest.json": json.dumps(edited)}))
        paths.append(path)
    np.save(tmp_path / "X.npy", X[:60])
    np.save(tmp_path / "y.npy", targets[:60])
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(REFIT_SCRIPT),
            tmp_path / "X.npy",
            tmp_path / "y.npy",
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = result.stdout.split()
    assert outcomes == [
        "refused",
        "refitted",
        "refused",
        "refused",
        "refitted",
        "refused",
        "refitted",
        "refused",
        "refitted",
        "refused",
        "refused",
        "refitted",
    ]

"""Tests for sk_keras_digits._persistence.pipeline_file: whole pipelines in a file.

Their final step a classifier or a regressor.
"""

import io
import json
import zipfile

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

from sk_keras_digits import (
    KerasDigitClassifier,
    KerasDigitRegressor,
    ModelFileError,
    load,
    save,
)
from sk_keras_digits._persistence.pipeline_file import trusted_steps
from tests._helpers import IGNORE_CONVERGENCE, SMALL, read_members, zip_bytes
from tests.persistence._regression import SMALL_REGRESSION

pytestmark = IGNORE_CONVERGENCE


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:200], y[:200]


@pytest.fixture(scope="module")
def pipeline(data):
    return make_pipeline(MinMaxScaler(), KerasDigitClassifier(**SMALL)).fit(*data)


@pytest.fixture(scope="module")
def pipeline_file(pipeline, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.skd"
    save(pipeline, path)
    return path


def test_pipeline_round_trip(pipeline, pipeline_file, data):
    X, _ = data
    loaded = load(pipeline_file)
    assert type(loaded) is Pipeline
    assert [name for name, _ in loaded.steps] == [
        "minmaxscaler",
        "kerasdigitclassifier",
    ]
    assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert np.array_equal(loaded.predict(X), pipeline.predict(X))
    assert np.array_equal(loaded[0].data_max_, pipeline[0].data_max_)
    content = read_members(pipeline_file)
    assert sorted(content) == ["manifest.json", "steps/0.skops", "steps/1.skd"]
    manifest = json.loads(content["manifest.json"])
    assert manifest["estimator"] == "sklearn.pipeline.Pipeline"
    assert [step["kind"] for step in manifest["steps"]] == ["skops", "model"]
    # The classifier's member is a model file of its own.
    nested = io.BytesIO(content["steps/1.skd"])
    with zipfile.ZipFile(nested) as archive:
        assert archive.namelist() == ["manifest.json", "state.npz", "model.keras"]


def test_grid_search_best_estimator_and_passthrough(data, tmp_path):
    X, y = data
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("skip", "passthrough"),
            ("clf", KerasDigitClassifier(**SMALL)),
        ]
    )
    search = GridSearchCV(pipe, {"clf__hidden_layer_sizes": [(4,), (6,)]}, cv=2)
    search.fit(X, y)
    save(search.best_estimator_, tmp_path / "best.skd")
    loaded = load(tmp_path / "best.skd")
    assert loaded.named_steps["skip"] == "passthrough"
    assert np.array_equal(loaded.predict_proba(X), search.predict_proba(X))


def test_save_refuses_untrusted_steps(data, tmp_path):
    X, y = data
    pipe = make_pipeline(
        FunctionTransformer(np.log1p), KerasDigitClassifier(**SMALL)
    ).fit(X, y)
    with pytest.raises(TypeError, match="FunctionTransformer is not among"):
        save(pipe, tmp_path / "pipe.skd")
    pipe = make_pipeline(MinMaxScaler(), KerasDigitClassifier(**SMALL))
    pipe.set_params(memory=str(tmp_path)).fit(X, y)
    with pytest.raises(TypeError, match="memory"):
        save(pipe, tmp_path / "pipe.skd")
    assert not (tmp_path / "pipe.skd").exists()
    assert "sklearn.preprocessing._data.MinMaxScaler" in trusted_steps()


@pytest.mark.parametrize(
    "step, match",
    [
        (FunctionTransformer(np.log1p), "FunctionTransformer, not one of the"),
        (LogisticRegression(), "not one of the trusted step types"),
    ],
    ids=["function", "classifier"],
)
def test_load_refuses_untrusted_steps(step, match, pipeline_file, data, tmp_path):
    X, y = data
    step.fit(X, y)
    content = {**read_members(pipeline_file), "steps/0.skops": skops.io.dumps(step)}
    path = tmp_path / "tampered.skd"
    path.write_bytes(zip_bytes(content))
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_load_refuses_malformed_pipelines(pipeline_file, tmp_path):
    content = read_members(pipeline_file)
    manifest = json.loads(content["manifest.json"])
    path = tmp_path / "bad.skd"
    path.write_bytes(zip_bytes({**content, "extra": b"1"}))
    with pytest.raises(ModelFileError, match=r"unexpected \['extra'\]"):
        load(path)
    bad = json.loads(json.dumps(manifest))
    bad["steps"][0]["member"] = "steps/1.skd"
    path.write_bytes(zip_bytes({**content, "manifest.json": json.dumps(bad)}))
    with pytest.raises(ModelFileError, match=r"steps\[0\] is invalid"):
        load(path)
    # A pipeline as a step's model file: nesting is refused.
    nested = {**content, "steps/1.skd": content["manifest.json"]}
    path.write_bytes(zip_bytes(nested))
    with pytest.raises(ModelFileError, match="steps/1.skd|not a zip"):
        load(path)
    again = io.BytesIO()
    with zipfile.ZipFile(again, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    path.write_bytes(zip_bytes({**content, "steps/1.skd": again.getvalue()}))
    with pytest.raises(ModelFileError, match="nesting is refused"):
        load(path)
    # A tampered classifier step: the classifier's checks apply.
    inner = {}
    with zipfile.ZipFile(io.BytesIO(content["steps/1.skd"])) as archive:
        inner = {name: archive.read(name) for name in archive.namelist()}
    inner_manifest = json.loads(inner["manifest.json"])
    inner_manifest["n_features_in"] = 3
    inner["manifest.json"] = json.dumps(inner_manifest).encode()
    step = io.BytesIO()
    with zipfile.ZipFile(step, "w") as archive:
        for name, data in inner.items():
            archive.writestr(name, data)
    path.write_bytes(zip_bytes({**content, "steps/1.skd": step.getvalue()}))
    with pytest.raises(ModelFileError, match="step 'kerasdigitclassifier'.*shapes"):
        load(path)


def test_skops_member_counts_against_max_bytes(pipeline_file, tmp_path):
    """A skops member inflating past the budget is refused before skops reads it."""
    content = read_members(pipeline_file)
    skops_member = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content["steps/0.skops"])) as archive:
        with zipfile.ZipFile(skops_member, "w", zipfile.ZIP_DEFLATED) as copy:
            arrays = sorted(set(archive.namelist()) - {"schema.json"})
            for name in ["schema.json", *arrays[1:]]:
                copy.writestr(name, archive.read(name))
            # One referenced array, padded to 20 MiB.
            copy.writestr(arrays[0], archive.read(arrays[0]) + bytes(20 * 2**20))
    path = tmp_path / "padded.skd"
    path.write_bytes(zip_bytes({**content, "steps/0.skops": skops_member.getvalue()}))
    with pytest.raises(ModelFileError, match=r"\.npy .*max_bytes=8388608"):
        load(path, max_bytes=8 * 2**20)


def test_load_refuses_untrusted_objects_inside_a_trusted_step(
    pipeline, pipeline_file, tmp_path
):
    scaler = MinMaxScaler().fit(np.ones((3, 64)))
    scaler.helper_ = json.dumps  # a function: code, which skops does not trust
    content = {**read_members(pipeline_file), "steps/0.skops": skops.io.dumps(scaler)}
    path = tmp_path / "tampered.skd"
    path.write_bytes(zip_bytes(content))
    with pytest.raises(ModelFileError, match=r"helper_: json.dumps .*not allowed"):
        load(path)
    with pytest.raises(TypeError, match="json.dumps"):
        save(make_pipeline(scaler, pipeline[-1]), tmp_path / "again.skd")


def test_regressor_pipeline_round_trip(regression, tmp_path):
    X, Y = regression
    X = 3 * X + 1  # for the scaler to scale
    pipe = make_pipeline(StandardScaler(), KerasDigitRegressor(**SMALL_REGRESSION))
    pipe.fit(X, Y)
    path = tmp_path / "regressor.skd"
    save(pipe, path)
    loaded = load(path)
    assert type(loaded[-1]) is KerasDigitRegressor
    assert np.array_equal(loaded.predict(X), pipe.predict(X))
    assert loaded.score(X, Y) == pipe.score(X, Y)
    content = read_members(path)
    step = json.loads(read_members(content["steps/1.skd"])["manifest.json"])
    assert step["estimator"] == "sk_keras_digits.KerasDigitRegressor"
    # The regressor step's checks apply: its loss is its state's.
    step["params"]["loss"] = "poisson"
    inner = {**read_members(content["steps/1.skd"]), "manifest.json": json.dumps(step)}
    path.write_bytes(zip_bytes({**content, "steps/1.skd": zip_bytes(inner)}))
    with pytest.raises(
        ModelFileError, match=r"step 'kerasdigitregressor': state.labels.loss"
    ):
        load(path)


@pytest.mark.parametrize(
    "steps",
    [
        [StandardScaler()],
        [MinMaxScaler(), StandardScaler()],
        [MinMaxScaler(), "passthrough"],
    ],
    ids=["scaler", "scalers", "passthrough_last"],
)
def test_a_pipeline_without_a_final_model_is_refused(steps, data, tmp_path):
    X, y = data
    pipe = make_pipeline(*steps).fit(X, y)
    with pytest.raises(TypeError, match="final step is a KerasDigitClassifier"):
        save(pipe, tmp_path / "no_model.skd")
    assert not (tmp_path / "no_model.skd").exists()


def test_load_refuses_a_pipeline_without_a_final_model(pipeline_file, tmp_path):
    content = read_members(pipeline_file)
    manifest = json.loads(content["manifest.json"])
    manifest["steps"] = manifest["steps"][:1]
    del content["steps/1.skd"]
    content["manifest.json"] = json.dumps(manifest).encode()
    path = tmp_path / "no_model.skd"
    path.write_bytes(zip_bytes(content))
    with pytest.raises(ModelFileError, match="the last step should be a model"):
        load(path)


@pytest.mark.parametrize(
    "attribute",
    ["fit", "fit_transform", "inverse_transform", "get_feature_names_out", "__class__"],
)
def test_a_step_state_hiding_its_class_attribute_is_refused(
    attribute, pipeline, pipeline_file, tmp_path
):
    """A fitted step's state never shadows a method: a later call would fail."""
    scaler = MinMaxScaler().fit(np.ones((3, 64)))
    scaler.__dict__[attribute] = 1
    content = {**read_members(pipeline_file), "steps/0.skops": skops.io.dumps(scaler)}
    path = tmp_path / "shadowed.skd"
    path.write_bytes(zip_bytes(content))
    with pytest.raises(ModelFileError, match=f"{attribute}'?, which would hide"):
        load(path)


def test_the_consistency_probe_is_bounded_by_max_bytes_not_by_steps(small_digits):
    """Each step's probe row costs its width: their sum is bounded by the
    budget, however many steps a file declares."""
    from sklearn.preprocessing import Binarizer

    from sk_keras_digits._persistence.archive import Budget
    from sk_keras_digits._persistence.errors import Refused
    from sk_keras_digits._persistence.pipeline_file import check_consistent

    X, y = small_digits
    steps = [(f"b{i}", Binarizer()) for i in range(10)]
    pipe = Pipeline([*steps, ("clf", KerasDigitClassifier(**SMALL))]).fit(X, y)
    check_consistent(pipe, Budget(8 * 640))  # 10 steps of 64 features
    with pytest.raises(Refused, match="step 'b9': the steps up to it take 640"):
        check_consistent(pipe, Budget(8 * 639))

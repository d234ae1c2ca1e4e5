"""Hostile pipeline files: refused quickly, with bounded memory, never crashing.

Each hostile file is generated here, from a valid pipeline's file, and is
small; loading it must raise a short :class:`ModelFileError` in under a second
with under 64 MiB of extra resident memory (measured in a fresh process, as
for the model-file bombs of ``test_bombs.py``).
"""

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, PolynomialFeatures, StandardScaler

from sk_keras_digits import KerasDigitClassifier, ModelFileError, load, save
from tests._helpers import IGNORE_CONVERGENCE, SMALL, read_members, zip_bytes
from tests.persistence._support import load_measured

pytestmark = IGNORE_CONVERGENCE


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    X = X[:200].copy()
    X[::7, 3] = np.nan  # so that the imputer's indicator has a feature
    return X, y[:200]


@pytest.fixture(scope="module")
def pipeline(data):
    return make_pipeline(
        SimpleImputer(add_indicator=True),
        MinMaxScaler(),
        KerasDigitClassifier(**SMALL),
    ).fit(*data)


@pytest.fixture(scope="module")
def pipeline_file(pipeline, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.skd"
    save(pipeline, path)
    return path


def with_imputer(pipeline_file, schema, arrays=None):
    """The pipeline file's bytes, its imputer step (step 0) replaced."""
    content = read_members(pipeline_file.read_bytes())
    step = read_members(content["steps/0.skops"])
    if arrays is not None:
        step = {"schema.json": step["schema.json"], **arrays}
    step["schema.json"] = json.dumps(schema).encode()
    return zip_bytes({**content, "steps/0.skops": zip_bytes(step)})


def imputer_schema(pipeline_file):
    content = read_members(pipeline_file.read_bytes())
    return json.loads(read_members(content["steps/0.skops"])["schema.json"])


def skops_state(obj):
    """The skops state of ``obj`` and its arrays."""
    import skops.io

    step = read_members(skops.io.dumps(obj))
    state = json.loads(step.pop("schema.json"))
    del state["protocol"], state["_skops_version"]
    return state, step


def make_bombs(pipeline, pipeline_file, data):
    """The hostile pipeline files of issue 13 (item 5): {name: bytes}."""
    X, _ = data
    schema = imputer_schema(pipeline_file)
    attrs = schema["content"]["content"]
    bombs = {}
    # 1. One 8 MiB array referenced 80 times, under 80 different __id__s.
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(2**20))
    step = read_members(read_members(pipeline_file.read_bytes())["steps/0.skops"])
    arrays = {name: data for name, data in step.items() if name != "schema.json"}
    bomb = json.loads(json.dumps(schema))
    for i in range(80):
        state = {
            "__class__": "ndarray",
            "__module__": "numpy",
            "__loader__": "NdArrayNode",
            "type": "numpy",
            "file": "bomb.npy",
            "__id__": 10**9 + i,
        }
        bomb["content"]["content"][f"junk_{i}"] = state
        key_type = dict(bomb["content"]["key_types"]["content"][0])
        bomb["content"]["key_types"]["content"].append(key_type)
    bombs["repeated_array"] = with_imputer(
        pipeline_file, bomb, {**arrays, "bomb.npy": buffer.getvalue()}
    )
    # 2. schema.json expanding to 24 MiB: 200,000 small objects in a list.
    bomb = json.loads(json.dumps(schema))
    item = dict(attrs["n_features_in_"])
    bomb["content"]["content"]["junk_"] = {
        "__class__": "list",
        "__module__": "builtins",
        "__loader__": "ListNode",
        "content": [item] * 200_000,
        "__id__": 10**9,
    }
    bomb["content"]["key_types"]["content"].append(
        dict(bomb["content"]["key_types"]["content"][0])
    )
    bombs["schema_expansion"] = with_imputer(pipeline_file, bomb)
    # 3. An estimator, then a NumPy ufunc, as the imputer's indicator_.
    for name, nested in (
        ("nested_estimator", StandardScaler().fit(X[:, :3])),
        ("nested_ufunc", np.add),
    ):
        bomb = json.loads(json.dumps(schema))
        state, extra = skops_state(nested)
        bomb["content"]["content"]["indicator_"] = state
        bombs[name] = with_imputer(pipeline_file, bomb, {**arrays, **extra})
    # 4. A pipeline nested 1000 deep, as each level's classifier step.
    manifest = json.loads(read_members(pipeline_file.read_bytes())["manifest.json"])
    manifest["steps"] = [{"name": "clf", "kind": "model", "member": "steps/0.skd"}]
    level = pipeline_file.read_bytes()
    for _ in range(1000):
        level = zip_bytes(
            {"manifest.json": json.dumps(manifest).encode(), "steps/0.skd": level}
        )
    bombs["nested_1000"] = level
    # 5. PolynomialFeatures whose stated degrees would enumerate (and
    # allocate) a row of billions of columns.
    polynomial = make_pipeline(PolynomialFeatures(2), KerasDigitClassifier(**SMALL))
    polynomial_file = pipeline_file.parent / "polynomial.skd"
    save(polynomial.fit(X[:, :3], data[1]), polynomial_file)
    for name, changes in (
        ("polynomial_width", {"degree": 10**6, "_max_degree": 10**6}),
        ("polynomial_degrees", {"_max_degree": 10**6}),
        ("polynomial_output", {"n_output_features_": 10**10}),
    ):
        content = read_members(polynomial_file.read_bytes())
        step = read_members(content["steps/0.skops"])
        schema = json.loads(step["schema.json"])
        for i, (key, value) in enumerate(changes.items()):
            node = schema["content"]["content"][key]
            node["content"] = json.dumps(value)
            node["__id__"] = 10**9 + i  # skops shares one id among equal ints
        step["schema.json"] = json.dumps(schema).encode()
        content["steps/0.skops"] = zip_bytes(step)
        bombs[name] = zip_bytes(content)
    return bombs


BOMB_PROBLEMS = {
    "repeated_array": "bomb.npy' is referenced by several arrays",
    "schema_expansion": (
        "schema.json (declares|holds more than) .*1048576 bytes it may hold \\(the most"
    ),
    "nested_estimator": "indicator_: sklearn.preprocessing._data.StandardScaler "
    ".*not allowed here",
    "nested_ufunc": "indicator_: numpy.add .*not allowed here",
    "nested_1000": "step 'clf': it holds a pipeline: nesting is refused",
    "polynomial_width": "n_output_features_=10 is not what its parameters give",
    "polynomial_degrees": r"fitted degrees \(0, 1000000\) are not its degree=2",
    "polynomial_output": "n_output_features_=10000000000 is not what",
}


def test_hostile_pipeline_files_are_refused_quickly_with_bounded_memory(
    pipeline, pipeline_file, data, tmp_path
):
    """Each file: small, refused in under 1 s, under 64 MiB, a short message."""
    import re

    bombs = make_bombs(pipeline, pipeline_file, data)
    assert set(bombs) == set(BOMB_PROBLEMS)
    paths = {}
    for name, content in bombs.items():
        assert len(content) < 2 * 2**20, name
        paths[name] = tmp_path / f"{name}.skd"
        paths[name].write_bytes(content)
    report = load_measured(pipeline_file, list(paths.values()))
    outcomes = {name: report[path] for name, path in paths.items()}
    print(outcomes)
    for name, outcome in outcomes.items():
        problem = outcome["message"]
        assert problem is not None, (name, outcome)
        assert re.search(BOMB_PROBLEMS[name], problem), (name, outcome)
        assert len(problem) < 500, (name, outcome)
        assert outcome["seconds"] < 1, (name, outcome)
        assert outcome["rss_growth_mib"] < 64, (name, outcome)


def test_legitimate_nested_transformers_load(data, tmp_path):
    """MissingIndicator (SimpleImputer), StandardScaler (PowerTransformer)..."""
    from sklearn.preprocessing import PowerTransformer, QuantileTransformer

    X, y = data
    pipe = make_pipeline(
        SimpleImputer(add_indicator=True),
        PowerTransformer(),
        KerasDigitClassifier(**SMALL),
    ).fit(X, y)
    save(pipe, tmp_path / "nested.skd")
    loaded = load(tmp_path / "nested.skd")
    assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert type(loaded[0].indicator_).__name__ == "MissingIndicator"
    # No indicator_ (None), and a RandomState as a parameter.
    pipe = make_pipeline(
        SimpleImputer(strategy="median"),
        QuantileTransformer(n_quantiles=20, random_state=np.random.RandomState(0)),
        KerasDigitClassifier(**SMALL),
    ).fit(X, y)
    save(pipe, tmp_path / "plain.skd")
    loaded = load(tmp_path / "plain.skd")
    assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert loaded[0].indicator_ is None


# -- property-based: mutated schema.json values ----------------------------------
def value_paths(state, path=()):
    """The path of every value in a JSON tree (containers included)."""
    yield path
    if isinstance(state, dict):
        for key, value in state.items():
            yield from value_paths(value, (*path, key))
    elif isinstance(state, list):
        for i, value in enumerate(state):
            yield from value_paths(value, (*path, i))


def replaced(state, path, value):
    if not path:
        return value
    state = list(state) if isinstance(state, list) else dict(state)
    state[path[0]] = replaced(state[path[0]], path[1:], value)
    return state


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def mutation_inputs(pipeline_file):
    schema = imputer_schema(pipeline_file)
    paths = list(value_paths(schema))
    # Values found in the schema itself: ids, member names, loaders, classes.
    leaves = [get(schema, p) for p in paths]
    found = sorted({json.dumps(v) for v in leaves if not isinstance(v, (dict, list))})
    # The JSON text of each attribute stored as a JSON primitive.
    texts = [
        (*p, "content")
        for p in paths
        if isinstance(node := get(schema, p), dict) and node.get("is_json") is True
    ]
    return schema, paths, texts, [json.loads(v) for v in found]


def get(state, path):
    for key in path:
        state = state[key]
    return state


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(choices=st.data())
def test_mutated_schema_loads_consistently_or_is_refused(
    choices, mutation_inputs, pipeline_file, data, tmp_path
):
    """Any value of schema.json replaced: a working pipeline or ModelFileError."""
    schema, paths, texts, found = mutation_inputs
    if choices.draw(st.booleans(), label="an attribute's JSON text"):
        path = choices.draw(st.sampled_from(texts), label="path")
        value = choices.draw(st.builds(json.dumps, JSON_VALUES), label="value")
    else:
        path = choices.draw(st.sampled_from(paths), label="path")
        value = choices.draw(st.sampled_from(found) | JSON_VALUES, label="value")
    file = tmp_path / "mutated.skd"
    file.write_bytes(with_imputer(pipeline_file, replaced(schema, path, value)))
    X = np.nan_to_num(data[0][:5])
    try:
        loaded = load(file)
    except ModelFileError as exc:
        assert len(str(exc)) < 500 + len(str(file))
        return
    assert type(loaded) is Pipeline
    proba = loaded.predict_proba(X)
    assert proba.shape == (len(X), 10)


def _random_state_nodes(node):
    if isinstance(node, dict):
        if node.get("__loader__") == "RandomStateNode":
            yield node
        for value in node.values():
            yield from _random_state_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _random_state_nodes(value)


@pytest.mark.parametrize("pos", [625, 2**20, 2**31 - 1])
def test_a_steps_random_state_past_its_key_is_refused(data, tmp_path, pos):
    """NumPy does not check a RandomState's position: one past its key's end
    crashed the next fit of the loaded pipeline (SIGSEGV)."""
    from sklearn.decomposition import PCA

    pipe = make_pipeline(
        PCA(5, svd_solver="randomized", random_state=np.random.RandomState(0)),
        KerasDigitClassifier(**SMALL),
    ).fit(np.nan_to_num(data[0]), data[1])
    save(pipe, tmp_path / "valid.skd")
    content = read_members((tmp_path / "valid.skd").read_bytes())
    step = read_members(content["steps/0.skops"])
    schema = json.loads(step["schema.json"])
    (node,) = _random_state_nodes(schema)
    node["content"]["content"]["state"]["content"]["pos"]["content"] = str(pos)
    step["schema.json"] = json.dumps(schema).encode()
    hostile = tmp_path / "hostile.skd"
    hostile.write_bytes(zip_bytes({**content, "steps/0.skops": zip_bytes(step)}))
    with pytest.raises(
        ModelFileError, match=f"RandomState no generator can be in: pos .*{pos}"
    ):
        load(hostile)

"""Pipelines in a model file: estimator steps as model files, others through skops.

A fitted :class:`~sklearn.pipeline.Pipeline` is saved as a zip archive whose
``manifest.json`` names the pipeline's parameters and its steps, in order,
each step being a member of its own:

- ``steps/<i>.skd``: a :class:`~sk_keras_digits.KerasDigitClassifier` or
  :class:`~sk_keras_digits.KerasDigitRegressor`, as the complete model file
  :func:`~sk_keras_digits.save` writes for it, loaded with every check of
  :func:`~sk_keras_digits.load`;
- ``steps/<i>.skops``: a scikit-learn transformer, in ``skops``' format,
  which is read without pickle. Only the types of :func:`trusted_steps` are
  accepted (an explicit list, never "anything"), and within them, at any
  depth, only arrays, numbers, strings, containers and the nested
  transformers of :data:`~.skops_schema.NESTED_STEPS`
  (see :mod:`.skops_schema`);
- ``"passthrough"`` or ``None`` steps are stored in the manifest.

A model step's file must hold an estimator: a pipeline there is refused
from its manifest, before anything else of it is read. Every member is
decompressed within the same ``max_bytes`` budget as a single estimator's
file; a ``skops`` member's ``schema.json`` is bounded (:data:`SCHEMA_LIMIT`)
and parsed once, and each of its arrays is read once, counted, before
``skops`` builds the step. The loaded pipeline must then pass one row of zeros
through its transformers (:func:`check_consistent`).
"""

import io
import json
import zipfile

import numpy as np

from .._names import qualified_name
from .archive import LARGER_MAX_BYTES, check_names, open_zip, zip_bytes
from .errors import Refused
from .estimator_file import estimator_members, estimator_name, load_step
from .json_values import MAX_DEPTH, loads
from .manifest import HEADER_KEYS, MANIFEST, PIPELINE, header
from .params_codec import random_state_problems
from .skops_internals import construct
from .skops_schema import check_schema, is_member_name

#: Most bytes a step's ``schema.json`` may hold (a fitted step's takes 2-10
#: KB; a step fitted on named features adds about 200 bytes per name).
SCHEMA_LIMIT = 1 << 20

_MANIFEST_KEYS = {*HEADER_KEYS, "params", "steps"}
_PARAMS = {"verbose", "transform_input"}


def trusted_steps():
    """The scikit-learn step types a pipeline's model file may hold, by name.

    Stateless or array-only transformers: none holds a function or an
    arbitrary object.

    Returns
    -------
    types : dict of str to type
    """
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (
        Binarizer,
        MaxAbsScaler,
        MinMaxScaler,
        Normalizer,
        PolynomialFeatures,
        PowerTransformer,
        QuantileTransformer,
        RobustScaler,
        StandardScaler,
    )

    types = (
        Binarizer,
        MaxAbsScaler,
        MinMaxScaler,
        Normalizer,
        PCA,
        PolynomialFeatures,
        PowerTransformer,
        QuantileTransformer,
        RobustScaler,
        SimpleImputer,
        StandardScaler,
        TruncatedSVD,
        VarianceThreshold,
    )
    return {qualified_name(cls): cls for cls in types}


# ---------------------------------------------------------------------- save
def pipeline_members(pipeline):
    """The members of the model file of a fitted pipeline.

    Parameters
    ----------
    pipeline : Pipeline

    Returns
    -------
    members : list of (str, bytes)
    """
    import skops.io
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(pipeline)
    params = pipeline.get_params(deep=False)
    steps = params.pop("steps")
    if params.pop("memory", None) is not None:
        raise TypeError(
            "save cannot save a Pipeline with memory set (a cache, not a model): "
            "set memory=None first."
        )
    transform_input = params.get("transform_input")
    if transform_input is not None and not (
        isinstance(transform_input, list)
        and all(isinstance(v, str) for v in transform_input)
    ):
        raise TypeError(
            f"save cannot save transform_input={transform_input!r}: a list of "
            "strings or None is expected."
        )
    final = steps[-1][1] if steps else None
    if estimator_name(final) is None:
        raise TypeError(
            "save expects a Pipeline whose final step is a KerasDigitClassifier "
            f"or a KerasDigitRegressor, got {type(final).__name__} "
            f"({str(final)[:60]}). Use joblib.dump for this pipeline."
        )
    trusted = trusted_steps()
    members, described = [], []
    for i, (name, step) in enumerate(steps):
        if step is None or (isinstance(step, str) and step == "passthrough"):
            described.append({"name": name, "kind": "passthrough", "value": step})
            continue
        if estimator_name(step) is not None:
            member, kind = f"steps/{i}.skd", "model"
            data = zip_bytes(estimator_members(step))
        else:
            qualified = qualified_name(step)
            if qualified not in trusted:
                raise TypeError(
                    f"save cannot save the step {name!r}: {qualified} is not among "
                    f"the step types load trusts ({sorted(trusted)}). Use "
                    "joblib.dump for this pipeline."
                )
            member, kind = f"steps/{i}.skops", "skops"
            data = skops.io.dumps(step)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                schema = json.loads(archive.read("schema.json"))
                arrays = [n for n in archive.namelist() if n != "schema.json"]
            try:
                check_schema(schema, trusted, arrays)
            except Refused as exc:
                raise TypeError(
                    f"save cannot save the step {name!r}: {exc} load would refuse "
                    "it. Use joblib.dump for this pipeline."
                ) from None
        described.append({"name": name, "kind": kind, "member": member})
        members.append((member, data))
    manifest = {
        **header(PIPELINE),
        "params": {
            "verbose": bool(params.get("verbose", False)),
            "transform_input": transform_input,
        },
        "steps": described,
    }
    return [(MANIFEST, json.dumps(manifest, indent=1).encode()), *members]


# ---------------------------------------------------------------------- load
def load_pipeline(archive, budget, manifest, path, options):
    """The pipeline a model file holds.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The model file.
    budget : Budget
        Bounds the bytes its members decompress to, steps included.
    manifest : dict
        Its manifest (format already checked).
    path : str
        The file, for messages.
    options : LoadOptions
        For the model steps (classifiers and regressors).

    Returns
    -------
    pipeline : Pipeline
    """
    from sklearn.pipeline import Pipeline

    if set(manifest) != _MANIFEST_KEYS:
        raise Refused(
            "manifest.json of a pipeline has unexpected or missing keys "
            f"{sorted(set(manifest) ^ _MANIFEST_KEYS)}."
        )
    params, described = manifest["params"], manifest["steps"]
    transform_input = params.get("transform_input") if type(params) is dict else None
    if (
        type(params) is not dict
        or set(params) != _PARAMS
        or type(params["verbose"]) is not bool
        or not (
            transform_input is None
            or (
                type(transform_input) is list
                and all(type(v) is str for v in transform_input)
            )
        )
    ):
        raise Refused(
            "manifest.json: params should be {'verbose': bool, 'transform_input': "
            f"null or a list of strings}}, got {str(params)[:200]}."
        )
    if type(described) is not list or not described:
        raise Refused("manifest.json: steps should be a non-empty list.")
    last = described[-1]
    if type(last) is not dict or last.get("kind") != "model":
        raise Refused(
            "manifest.json: the last step should be a model (a "
            "KerasDigitClassifier or KerasDigitRegressor), got "
            f"{str(last)[:200]}."
        )
    members = []
    for i, step in enumerate(described):
        kind = step.get("kind") if type(step) is dict else None
        expected = {
            "model": {"name", "kind", "member"},
            "skops": {"name", "kind", "member"},
            "passthrough": {"name", "kind", "value"},
        }.get(kind if type(kind) is str else None)
        suffix = {"model": ".skd", "skops": ".skops"}.get(kind)
        if (
            expected is None
            or set(step) != expected
            or type(step["name"]) is not str
            or (suffix and step["member"] != f"steps/{i}{suffix}")
            or (kind == "passthrough" and step["value"] not in (None, "passthrough"))
        ):
            raise Refused(f"manifest.json: steps[{i}] is invalid: {str(step)[:200]}.")
        if suffix:
            members.append(step["member"])
    check_names(archive, [MANIFEST, *members], "the pipeline's file")
    steps = []
    for step in described:
        name, kind = step["name"], step["kind"]
        if kind == "passthrough":
            steps.append((name, step["value"]))
            continue
        what = f"member '{step['member']}'"
        data = budget.read(archive, step["member"], budget.left, what)
        if kind == "model":
            try:
                estimator = load_step(data, path, options, budget)
            except Refused as exc:
                raise Refused(f"step {_label(name)}: {exc}") from exc
            if estimator_name(estimator) is None:
                raise Refused(
                    f"step {_label(name)} holds a pipeline: nesting is refused."
                )
        else:
            estimator = _load_skops(budget, data, name, what)
        steps.append((name, estimator))
    pipeline = Pipeline(steps, memory=None, **params)
    try:
        pipeline._validate_params()
        pipeline._validate_steps()
    except (TypeError, ValueError) as exc:
        raise Refused(f"the pipeline's steps are invalid: {str(exc)[:200]}") from exc
    check_consistent(pipeline, budget)
    return pipeline


def _load_skops(budget, data, name, what):
    """A scikit-learn step from its ``skops`` bytes: bounded, trusted types only.

    ``schema.json`` (at most :data:`SCHEMA_LIMIT` bytes) is parsed once and
    walked by :func:`~.skops_schema.check_schema` before any
    array is decompressed; ``skops`` then builds the step from that parsed
    schema and from the members already read and counted, each read once.
    """
    what = f"step {_label(name)} ({what})"
    with open_zip(data, what) as archive:
        names = archive.namelist()
        arrays = [member for member in names if member != "schema.json"]
        odd = [member for member in arrays if not is_member_name(member)]
        if "schema.json" not in names or odd:
            raise Refused(
                f"{what} should hold schema.json and .npy arrays; found "
                f"{names[:5]}{'...' if len(names) > 5 else ''}."
            )
        limit = min(SCHEMA_LIMIT, budget.left)
        hint = budget.hint if limit < SCHEMA_LIMIT else " (the most a step's may hold)"
        text = budget.read(archive, "schema.json", limit, f"{what}: schema.json", hint)
        schema = loads(text, f"{what}: schema.json", limit=100, utf8=False)
        del text
        try:
            declared, types = check_schema(schema, trusted_steps(), arrays)
        except Refused as exc:
            raise Refused(f"{what}: {exc}") from exc
        content = {}
        for member in arrays:
            content[member] = budget.read(
                archive, member, budget.left, f"{what}: {member}", budget.hint
            )
    try:
        step = construct(schema, content, sorted(types))
    except Refused:
        raise
    except Exception as exc:  # skops' and NumPy's errors on a malformed step
        problem = str(exc)[:150] or type(exc).__name__
        raise Refused(f"{what} cannot be read ({problem}).") from exc
    if qualified_name(step) != declared:
        raise Refused(
            f"{what} is a {qualified_name(step)}, not the {declared} its "
            "schema declares."
        )
    for random_state in _random_states(step):
        _, _, pos, has_gauss, cached = random_state.get_state()
        problems = random_state_problems(int(pos), int(has_gauss), float(cached))
        if problems:
            raise Refused(
                f"{what} holds a RandomState no generator can be in: "
                f"{'; '.join(problems)}."
            )
    return step


def _random_states(value, depth=0):
    """The RandomState objects in a built step: its attributes, those of the
    estimators it holds, and their lists, tuples and dicts (its schema's depth
    bounds theirs)."""
    if isinstance(value, np.random.RandomState):
        yield value
        return
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        items = vars(value).values()
    else:
        return
    if depth < MAX_DEPTH:
        for item in items:
            yield from _random_states(item, depth + 1)


def _label(name):
    """A step's name for a message: quoted, at most 60 characters of it."""
    return repr(name if len(name) <= 60 else name[:60] + "...")


def check_consistent(pipeline, budget):
    """Refuse a loaded pipeline whose steps do not fit together.

    Each step's parameters must be valid, and one row of zeros must pass
    through every transformer, each giving the width the next step expects.
    The widths of all the steps' rows add up to at most ``max_bytes`` in
    float64 values: the probe's time follows the file's budget, not its
    number of steps.

    Parameters
    ----------
    pipeline : Pipeline
    budget : Budget
        Bounds the probe row's size.
    """
    import warnings

    steps = [(n, s) for n, s in pipeline.steps if s not in (None, "passthrough")]
    if not steps:
        return
    limit = max(budget.left // 8, 1)
    width = getattr(steps[0][1], "n_features_in_", None)
    if type(width) is not int or not 1 <= width <= limit:
        raise Refused(
            f"step {_label(steps[0][0])}: n_features_in_ should be a positive integer "
            f"within max_bytes, got {str(width)[:40]}."
        )
    X = np.zeros((1, width))
    probed = 0
    for i, (name, step) in enumerate(steps):
        expected = getattr(step, "n_features_in_", None)
        if type(expected) is not int or expected != X.shape[1]:
            raise Refused(
                f"step {_label(name)} expects {str(expected)[:40]} features, but the "
                f"steps before it give {X.shape[1]}."
            )
        if i == len(steps) - 1 and not hasattr(step, "transform"):
            break
        _check_output_width(name, step, budget)
        probed += X.shape[1]
        if probed > limit:
            raise Refused(
                f"step {_label(name)}: the steps up to it take {probed} features "
                f"in all, more than the {limit} values that max_bytes allows to "
                f"check them with. {LARGER_MAX_BYTES}."
            )
        try:
            step._validate_params()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                X = step.transform(X)
        except Exception as exc:  # a fitted state no fit could have produced
            problem = str(exc)[:150] or type(exc).__name__
            raise Refused(f"step {_label(name)} cannot transform ({problem}).") from exc
        if type(X) is not np.ndarray or X.ndim != 2 or X.shape[0] != 1:
            raise Refused(
                f"step {_label(name)} gives a {type(X).__name__} of shape "
                f"{getattr(X, 'shape', None)}, not one dense row."
            )


def _check_output_width(name, step, budget):
    """Refuse a step whose declared output would not fit in ``max_bytes``.

    ``PolynomialFeatures`` computes its output width from its parameters and
    enumerates every output column in ``transform``: the width a file states
    must be the one its parameters give, and one row of it must fit in what
    is left of the budget (checked without enumerating anything).
    """
    from sklearn.preprocessing import PolynomialFeatures

    if type(step) is not PolynomialFeatures:
        return
    limit = max(budget.left // 8, 1)
    width = _polynomial_width(step, limit)
    stated = getattr(step, "n_output_features_", None)
    degree = step.degree
    degrees = (0, degree) if isinstance(degree, int) else tuple(degree)
    used = (getattr(step, "_min_degree", None), getattr(step, "_max_degree", None))
    if used != degrees:
        # transform enumerates the columns by these, not by ``degree``.
        raise Refused(
            f"step {_label(name)}: its fitted degrees {str(used)[:60]} are not "
            f"its degree={str(degree)[:40]}."
        )
    if width is None or type(stated) is not int or stated != width:
        raise Refused(
            f"step {_label(name)}: n_output_features_={str(stated)[:40]} is not "
            f"what its parameters give within max_bytes ({limit} columns at most)."
        )


def _polynomial_width(step, limit):
    """Output width of a fitted PolynomialFeatures, or None past ``limit``."""
    import math

    n = step.n_features_in_
    degree = step.degree
    low, high = (0, degree) if isinstance(degree, int) else tuple(degree)
    if not all(isinstance(d, int) and 0 <= d for d in (low, high)) or low > high:
        return None
    start = max(low, 1)
    if step.interaction_only:
        high = min(high, n)  # no interaction of more features than there are
    width = 1 if step.include_bias else 0
    if high - start + 1 > limit:
        return None
    if n == 1:
        return width + max(high - start + 1, 0)
    # With two or more features the terms grow with d: few iterations.
    for d in range(start, high + 1):
        width += math.comb(n, d) if step.interaction_only else math.comb(n + d - 1, d)
        if width > limit:
            return None
    return width

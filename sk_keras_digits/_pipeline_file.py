"""Pipelines in a model file: classifier steps as model files, others through skops.

A fitted :class:`~sklearn.pipeline.Pipeline` is saved as a zip archive whose
``manifest.json`` names the pipeline's parameters and its steps, in order,
each step being a member of its own:

- ``steps/<i>.skd``: a :class:`~sk_keras_digits.KerasDigitClassifier`, as the
  complete model file :func:`~sk_keras_digits.save` writes for it, loaded
  with every check of :func:`~sk_keras_digits.load`;
- ``steps/<i>.skops``: a scikit-learn transformer, in ``skops``' format,
  which is read without pickle. Only the types of :func:`trusted_steps` are
  accepted (an explicit list, never "anything"), and within them only the
  types ``skops`` itself trusts plus :data:`TRUSTED_NESTED`;
- ``"passthrough"`` or ``None`` steps are stored in the manifest.

Every member is decompressed within the same ``max_bytes`` budget as a single
estimator's file; a ``skops`` member's content is counted before ``skops``
reads it.
"""

import io
import json
import zipfile

from ._archive import Refused, check_names, open_zip, read_member
from ._model_file import FORMAT_NAME, FORMAT_VERSION

#: The ``estimator`` of a pipeline's manifest.
PIPELINE = "sklearn.pipeline.Pipeline"

#: Types that ``skops`` may find inside a trusted step besides those it trusts
#: by default (scikit-learn estimators, NumPy arrays and scalars, builtins).
TRUSTED_NESTED = ("numpy.dtype",)

_MANIFEST_KEYS = {
    "format",
    "format_version",
    "estimator",
    "versions",
    "params",
    "steps",
}
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
    return {_qualified_name(cls): cls for cls in types}


def _qualified_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------- save
def pipeline_members(pipeline, estimator_members):
    """The members of the model file of a fitted pipeline.

    Parameters
    ----------
    pipeline : Pipeline
    estimator_members : callable
        Gives the members of a classifier's model file.

    Returns
    -------
    members : list of (str, bytes)
    """
    import skops.io
    from sklearn.utils.validation import check_is_fitted

    from ._classifier import KerasDigitClassifier
    from ._persistence import library_versions

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
    trusted = trusted_steps()
    members, described = [], []
    for i, (name, step) in enumerate(steps):
        if step is None or (isinstance(step, str) and step == "passthrough"):
            described.append({"name": name, "kind": "passthrough", "value": step})
            continue
        if isinstance(step, KerasDigitClassifier):
            member, kind = f"steps/{i}.skd", "model"
            data = _zip(estimator_members(step))
        else:
            qualified = _qualified_name(type(step))
            if qualified not in trusted:
                raise TypeError(
                    f"save cannot save the step {name!r}: {qualified} is not among "
                    f"the step types load trusts ({sorted(trusted)}). Use "
                    "joblib.dump for this pipeline."
                )
            member, kind = f"steps/{i}.skops", "skops"
            data = skops.io.dumps(step)
            untrusted = set(skops.io.get_untrusted_types(data=data))
            if untrusted - set(TRUSTED_NESTED):
                raise TypeError(
                    f"save cannot save the step {name!r}: it holds objects of the "
                    f"types {sorted(untrusted - set(TRUSTED_NESTED))}, which load "
                    "does not trust. Use joblib.dump for this pipeline."
                )
        described.append({"name": name, "kind": kind, "member": member})
        members.append((member, data))
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": PIPELINE,
        "versions": library_versions(),
        "params": {
            "verbose": bool(params.get("verbose", False)),
            "transform_input": transform_input,
        },
        "steps": described,
    }
    return [("manifest.json", json.dumps(manifest, indent=1).encode()), *members]


# ---------------------------------------------------------------------- load
def load_pipeline(reader, manifest, load_model):
    """The pipeline a model file holds.

    Parameters
    ----------
    reader : sk_keras_digits._persistence._Reader
        Reads the archive's members within the file's budget.
    manifest : dict
        Its manifest (format already checked).
    load_model : callable
        Loads a classifier's model file from its bytes.

    Returns
    -------
    pipeline : Pipeline
    """
    from sklearn.pipeline import Pipeline

    from ._classifier import KerasDigitClassifier

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
    check_names(reader.archive, ["manifest.json", *members], "the pipeline's file")
    steps = []
    for step in described:
        name, kind = step["name"], step["kind"]
        if kind == "passthrough":
            steps.append((name, step["value"]))
            continue
        what = f"member '{step['member']}'"
        data = reader.read(reader.archive, step["member"], reader.budget.left, what)
        if kind == "model":
            try:
                estimator = load_model(data)
            except Refused as exc:
                raise Refused(f"step {name!r}: {exc}") from exc
            if not isinstance(estimator, KerasDigitClassifier):
                raise Refused(f"step {name!r} holds a pipeline: nesting is refused.")
        else:
            estimator = _load_skops(reader, data, name, what)
        steps.append((name, estimator))
    pipeline = Pipeline(steps, memory=None, **params)
    try:
        pipeline._validate_params()
        pipeline._validate_steps()
    except (TypeError, ValueError) as exc:
        raise Refused(f"the pipeline's steps are invalid: {exc}") from exc
    return pipeline


def _load_skops(reader, data, name, what):
    """A scikit-learn step from its ``skops`` bytes: bounded, trusted types only."""
    import skops.io

    budget = reader.budget
    hint = (
        f"; that is what is left of max_bytes={budget.max_bytes}. If you trust "
        "the file, load it with a larger max_bytes"
    )
    schema = None
    archive = open_zip(data, what)
    with archive:
        for member in archive.namelist():
            # Count what skops will decompress, within the budget.
            content = read_member(
                archive, member, budget.left, f"{what}: {member}", hint
            )
            budget.left -= len(content)
            if member == "schema.json":
                schema = content
    trusted = trusted_steps()
    try:
        schema = json.loads(schema)
        declared = f"{schema['__module__']}.{schema['__class__']}"
    except Exception as exc:
        raise Refused(f"{what} is not a skops file ({str(exc)[:200]}).") from exc
    if declared not in trusted:
        raise Refused(
            f"step {name!r} is a {str(declared)[:200]}, not one of the trusted step "
            f"types {sorted(trusted)}."
        )
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
    except Exception as exc:
        raise Refused(f"{what} is not a skops file ({str(exc)[:200]}).") from exc
    if untrusted - set(TRUSTED_NESTED):
        raise Refused(
            f"step {name!r} holds objects of the types "
            f"{sorted(untrusted - set(TRUSTED_NESTED))[:10]}, which are not trusted."
        )
    try:
        step = skops.io.loads(data, trusted=sorted(untrusted))
    except Exception as exc:
        raise Refused(f"{what} cannot be read ({str(exc)[:200]}).") from exc
    if _qualified_name(type(step)) != declared:
        raise Refused(
            f"step {name!r} is a {_qualified_name(type(step))}, not the "
            f"{declared} its schema declares."
        )
    return step

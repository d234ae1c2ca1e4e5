"""The public API's docstrings, checked as scikit-learn checks its own.

scikit-learn's ``sklearn/tests/test_docstrings.py`` runs numpydoc's validation
over every public class, method, property and function, ignoring the codes
its rules list (reproduced in :func:`_kept_errors`), and
``sklearn/tests/test_docstring_parameters.py`` checks that an estimator's
fitted attributes are the ones its class docstring documents. The same checks
run here over this package's public API: ``sk_keras_digits`` and
``sk_keras_digits.tutorial``.
"""

import importlib
import inspect

import pytest
from numpydoc import docscrape
from numpydoc.validate import validate
from sklearn.datasets import make_classification

from sk_keras_digits import KerasDigitClassifier, KerasDigitRegressor

PUBLIC_MODULES = ("sk_keras_digits", "sk_keras_digits.tutorial")


def _public_objects():
    """(import path, class, member) of each public object of the API.

    A class gives (path, class, None), its members (path, class, name), a
    function (path, None, "function"), as scikit-learn's rules name them.
    """
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                path = f"{obj.__module__}.{obj.__qualname__}"
                yield path, obj, None
                for member in sorted(dir(obj)):
                    if member.startswith("_") or _inherited_from_builtins(obj, member):
                        continue
                    value = getattr(obj, member)
                    if callable(value) or isinstance(value, property):
                        yield f"{path}.{member}", obj, member
            elif inspect.isfunction(obj):
                yield f"{obj.__module__}.{obj.__qualname__}", None, "function"


def _inherited_from_builtins(cls, member):
    """Whether ``member`` comes from Python's own classes (an exception's)."""
    owner = next(klass for klass in cls.__mro__ if member in vars(klass))
    return owner.__module__ == "builtins"


def _kept_errors(errors, cls, member):
    """numpydoc's errors that scikit-learn's rules do not ignore."""
    for code, message in errors:
        # The first line of Returns may name the value; the summary may start
        # after a blank line; a blank line may follow the docstring's text.
        if code in ("RT02", "GL01", "GL02"):
            continue
        # Properties have no parameters nor a signature to parse.
        if (
            code in ("PR02", "GL08")
            and cls is not None
            and member is not None
            and isinstance(getattr(cls, member), property)
        ):
            continue
        # An extended summary, See Also and Examples: classes' docstrings only.
        if member is not None and code in ("EX01", "SA01", "ES01"):
            continue
        yield code, message


PUBLIC_OBJECTS = list(_public_objects())


def test_the_public_api_is_collected():
    paths = [path for path, _, _ in PUBLIC_OBJECTS]
    assert "sk_keras_digits._classifier.KerasDigitClassifier.coefs_" in paths
    assert "sk_keras_digits._regressor.KerasDigitRegressor.partial_fit" in paths
    assert "sk_keras_digits._persistence.api.load" in paths
    assert not any(path.endswith(".with_traceback") for path in paths)


@pytest.mark.parametrize(
    "path, cls, member", PUBLIC_OBJECTS, ids=[p for p, _, _ in PUBLIC_OBJECTS]
)
def test_docstring_passes_numpydoc_validation(path, cls, member):
    result = validate(path)
    errors = list(_kept_errors(result["errors"], cls, member))
    assert not errors, f"{path}:\n" + "\n".join(
        f"  {code}: {message}" for code, message in errors
    )


@pytest.mark.parametrize("Estimator", [KerasDigitClassifier, KerasDigitRegressor])
def test_fitted_attributes_are_the_documented_ones(Estimator):
    # scikit-learn's test_fit_docstring_attributes, as it runs for MLP's.
    documented = docscrape.ClassDoc(Estimator)["Attributes"]
    X, y = make_classification(
        n_samples=20, n_features=3, n_redundant=0, n_classes=2, random_state=2
    )
    estimator = Estimator(max_iter=2, random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning: 2 iterations
        estimator.fit(X, y)

    for attribute in documented:
        if "only " not in " ".join(attribute.desc).lower():
            assert hasattr(estimator, attribute.name), attribute.name

    fitted = [name for name in vars(estimator) if name.endswith("_")]
    for name in dir(Estimator):
        if isinstance(getattr(Estimator, name), property):
            try:
                getattr(estimator, name)
            except AttributeError:
                continue
            fitted.append(name)
    public = {name for name in fitted if not name.startswith("_")}
    assert public - {attribute.name for attribute in documented} == set()

"""scikit-learn's own MLP tests, run against KerasDigitClassifier and -Regressor.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is
copied to a temporary folder, its import of ``MLPClassifier`` and
``MLPRegressor`` is swapped for ``from sk_keras_digits import
KerasDigitClassifier as MLPClassifier, KerasDigitRegressor as MLPRegressor``
and its tests run with pytest in a subprocess (so that file's warning filters
and configuration stay there). Each test that uses either estimator must
pass, except the documented ``EXPECTED_EXCEPTIONS`` below, which are
deselected by test id. Tests that use neither (none, in scikit-learn 1.9) are
not run, being no test of the estimators.
"""

import ast
import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sklearn

import sk_keras_digits

SKLEARN_TEST_FILE = Path(sklearn.__file__).parent.joinpath(
    "neural_network", "tests", "test_mlp.py"
)

# Test id (in test_mlp.py) -> why KerasDigitClassifier cannot pass it. Only
# tests of MLPClassifier's private internals (beyond `_optimizer.learning_rate`
# and `_no_improvement_count`, which the estimators show too) belong here.
EXPECTED_EXCEPTIONS = {
    "test_gradient": (
        "Calls MLPClassifier's private `_loss_grad_lbfgs` (its NumPy "
        "`_forward_pass` and `_backprop`) to check them against finite "
        "differences; the gradients here come from TensorFlow's automatic "
        "differentiation of the Keras network."
    ),
    "test_fit": (
        "Assembles MLPClassifier's fitted state by hand before a partial_fit: "
        "assigns `coefs_`, `n_outputs_`, `t_`, `loss_curve_` and its private "
        "internals `_coef_velocity`, `_intercept_velocity`, `_coef_grads` and "
        "`_no_improvement_count`. The estimator's fitted attributes are "
        "properties that cannot be assigned, over its one fitted state "
        "(`_state`), which only fit, partial_fit and load produce."
    ),
}

#: scikit-learn's estimators -> ours, as the swapped import binds them.
ESTIMATORS = {
    "MLPClassifier": "KerasDigitClassifier",
    "MLPRegressor": "KerasDigitRegressor",
}
_REPLACEMENT = "from sk_keras_digits import " + ", ".join(
    f"{ours} as {theirs}" for theirs, ours in ESTIMATORS.items()
)
_SUBPROCESS_TIMEOUT = 540  # seconds; below the suite's 600 s per-test timeout

# Written next to the copy: drops the tests of neither estimator and the
# expected exceptions, and records what it saw (before any other
# deselection) in selection_report.json.
_CONFTEST = """\
import json
from pathlib import Path

import pytest

import sk_keras_digits

_HERE = Path(__file__).parent
_SELECTION = json.loads((_HERE / "selection.json").read_text())


@pytest.fixture
def global_random_seed():
    # scikit-learn's conftest seeds with 42 unless asked for other seeds.
    return 42


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    other = set(_SELECTION["other"])
    exceptions = set(_SELECTION["exceptions"])
    report = {
        "sk_keras_digits": sk_keras_digits.__file__,
        "collected": [],
        "other": [],
        "exceptions": [],
    }
    keep, dropped = [], []
    for item in items:
        report["collected"].append(item.name)
        if item.originalname in other:
            reason = "other"
        elif item.name in exceptions:
            reason = "exceptions"
        else:
            keep.append(item)
            continue
        report[reason].append(item.name)
        dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
    (_HERE / "selection_report.json").write_text(json.dumps(report))
"""


def swap_imports(source):
    """Return ``source`` with its ``MLPClassifier`` and ``MLPRegressor`` made ours.

    The module-level ``from sklearn.neural_network import ...`` statement that
    imports them loses those names, and a line importing
    ``KerasDigitClassifier as MLPClassifier, KerasDigitRegressor as
    MLPRegressor`` follows it.

    Parameters
    ----------
    source : str
        Text of scikit-learn's ``test_mlp.py``.

    Returns
    -------
    swapped : str
        The text with the import swapped.

    Raises
    ------
    ValueError
        If ``source`` does not import both estimators exactly once, from
        ``sklearn.neural_network`` at module level under their own names, or
        if the swapped text still reaches scikit-learn's estimators some other
        way.
    """
    tree = ast.parse(source)
    imports = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and node.module == "sklearn.neural_network"
        and any(alias.name in ESTIMATORS for alias in node.names)
    ]
    names = [alias for node in imports for alias in node.names]
    imported = sorted(alias.name for alias in names if alias.name in ESTIMATORS)
    if len(imports) != 1 or imported != sorted(ESTIMATORS):
        raise ValueError(
            "Expected scikit-learn's test_mlp.py to import MLPClassifier and "
            "MLPRegressor once, with one module-level 'from sklearn.neural_network "
            f"import ...'; found {len(imports)} such statement(s) importing "
            f"{imported}. The import swap needs updating for this scikit-learn "
            f"({sklearn.__version__})."
        )
    node = imports[0]
    if any(alias.name in ESTIMATORS and alias.asname for alias in node.names):
        raise ValueError(
            "Expected scikit-learn's test_mlp.py to import MLPClassifier and "
            f"MLPRegressor under their own names; got {ast.unparse(node)!r}."
        )
    others = [alias for alias in node.names if alias.name not in ESTIMATORS]
    lines = source.splitlines(keepends=True)
    replacement = [_REPLACEMENT + "\n"]
    if others:
        node.names = others
        replacement.insert(0, ast.unparse(node) + "\n")
    lines[node.lineno - 1 : node.end_lineno] = replacement
    swapped = "".join(lines)
    _check_swapped(swapped)
    return swapped


def _check_swapped(source):
    """Raise a ValueError if ``source`` can still reach scikit-learn's MLPs."""
    tree = ast.parse(source)
    bindings = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            name in ESTIMATORS
            for alias in node.names
            for name in (alias.name, alias.asname)
        )
    ]
    attributes = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ESTIMATORS
    ]
    if bindings != [_REPLACEMENT] or attributes:
        raise ValueError(
            "After the import swap, test_mlp.py must name MLPClassifier and "
            f"MLPRegressor only through {_REPLACEMENT!r}; it binds them with "
            f"{bindings} and reaches them as attributes in {attributes}."
        )


def estimator_tests(source):
    """Names of the module-level test functions that use either estimator.

    A test uses one when its body or decorators name ``MLPClassifier`` or
    ``MLPRegressor``, or a module-level function or variable that (in turn)
    does.

    Parameters
    ----------
    source : str
        Text of scikit-learn's ``test_mlp.py``.

    Returns
    -------
    used, other : list of str
        The test functions that use an estimator and those that do not.
    """
    tree = ast.parse(source)
    definitions = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            definitions[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        definitions.setdefault(name.id, node)

    def names(node):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}

    reaching = set(ESTIMATORS)
    while True:
        more = {
            name
            for name, node in definitions.items()
            if name not in reaching and names(node) & reaching
        }
        if not more:
            break
        reaching |= more
    tests = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    used = [name for name in tests if name in reaching]
    other = [name for name in tests if name not in reaching]
    return used, other


def _read_sklearn_tests():
    if not SKLEARN_TEST_FILE.is_file():
        raise FileNotFoundError(
            f"scikit-learn {sklearn.__version__} has no {SKLEARN_TEST_FILE}: "
            "install a scikit-learn that ships its tests (the PyPI wheels do)."
        )
    return SKLEARN_TEST_FILE.read_text(encoding="utf-8")


SKLEARN_SOURCE = _read_sklearn_tests()
ESTIMATOR_TESTS, OTHER_TESTS = estimator_tests(SKLEARN_SOURCE)


def _outcome(testcase):
    """'passed', or the junit element's tag and message (failure, error...)."""
    for child in testcase:
        if child.tag in ("failure", "error", "skipped"):
            message = child.get("message", "") or (child.text or "")
            return f"{child.tag}: {message.strip()[:1500]}"
    return "passed"


@pytest.fixture(scope="module")
def sklearn_mlp_run(tmp_path_factory):
    """Run the swapped copy of test_mlp.py once; return what happened."""
    folder = tmp_path_factory.mktemp("sklearn_mlp")
    (folder / "test_mlp.py").write_text(swap_imports(SKLEARN_SOURCE), encoding="utf-8")
    (folder / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    (folder / "selection.json").write_text(
        json.dumps(
            {
                "other": OTHER_TESTS,
                "exceptions": sorted(EXPECTED_EXCEPTIONS),
            }
        )
    )
    # An ini file of its own pins the rootdir and keeps this repository's
    # pytest configuration out; FutureWarnings are errors, as in this suite.
    (folder / "pytest.ini").write_text(
        textwrap.dedent(
            """\
            [pytest]
            filterwarnings =
                error::FutureWarning
            """
        )
    )
    package_root = str(Path(sk_keras_digits.__file__).parent.parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    }
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *filter(None, [env.get("PYTHONPATH")])]
    )
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    junit = folder / "junit.xml"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_mlp.py",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfEs",
            f"--junitxml={junit}",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT,
    )
    output = (completed.stdout + completed.stderr)[-6000:]
    assert junit.is_file(), f"pytest wrote no junit report:\n{output}"
    results = {}
    for testcase in ET.parse(junit).iter("testcase"):
        results[testcase.get("name")] = _outcome(testcase)
    report_file = folder / "selection_report.json"
    assert report_file.is_file(), f"test_mlp.py was not collected:\n{output}"
    return {
        "results": results,
        "selection": json.loads(report_file.read_text()),
        "output": output,
    }


def test_runs_this_checkout(sklearn_mlp_run):
    assert sklearn_mlp_run["selection"]["sk_keras_digits"] == sk_keras_digits.__file__


@pytest.mark.parametrize(
    "name", [name for name in ESTIMATOR_TESTS if name not in EXPECTED_EXCEPTIONS]
)
def test_sklearn_mlp_test_passes(sklearn_mlp_run, name):
    results = {
        test_id: outcome
        for test_id, outcome in sklearn_mlp_run["results"].items()
        if test_id.split("[")[0] == name
    }
    assert results, f"scikit-learn's {name} did not run:\n{sklearn_mlp_run['output']}"
    failed = {test_id: o for test_id, o in results.items() if o != "passed"}
    assert not failed, "\n\n".join(f"{k}\n{v}" for k, v in failed.items())


def test_expected_exceptions_are_collected_and_not_run(sklearn_mlp_run):
    # A renamed or removed scikit-learn test must not leave a stale exception.
    selection = sklearn_mlp_run["selection"]
    assert sorted(selection["exceptions"]) == sorted(EXPECTED_EXCEPTIONS)
    assert not set(EXPECTED_EXCEPTIONS) & set(sklearn_mlp_run["results"])
    assert {name.split("[")[0] for name in EXPECTED_EXCEPTIONS} <= set(ESTIMATOR_TESTS)


def test_every_estimator_test_is_run_or_excepted(sklearn_mlp_run):
    selection = sklearn_mlp_run["selection"]
    ran = set(sklearn_mlp_run["results"])
    left_out = {
        test_id for key in ("other", "exceptions") for test_id in selection[key]
    }
    assert ran | left_out == set(selection["collected"])
    assert not ran & left_out
    # Both estimators' tests ran: those of each parametrisation too.
    for ours in ESTIMATORS.values():
        assert any(ours in test_id for test_id in ran), ours


def test_swap_fails_loudly_without_the_import():
    source = "from sklearn.neural_network import MLPRegressor\n"
    with pytest.raises(ValueError, match="import MLPClassifier and MLPRegressor"):
        swap_imports(source)
    aliased = "from sklearn.neural_network import MLPClassifier as C, MLPRegressor\n"
    with pytest.raises(ValueError, match="under their own names"):
        swap_imports(aliased)
    sneaky = (
        "from sklearn.neural_network import MLPClassifier, MLPRegressor\n"
        "import sklearn.neural_network\n"
        "def test_x():\n"
        "    sklearn.neural_network.MLPRegressor()\n"
    )
    with pytest.raises(ValueError, match="as attributes"):
        swap_imports(sneaky)


def test_swap_keeps_the_other_names():
    source = (
        "import numpy as np\n"
        "from sklearn.neural_network import (\n"
        "    BernoulliRBM,\n"
        "    MLPClassifier,\n"
        "    MLPRegressor,\n"
        ")\n"
        "X = np.ones(2)\n"
    )
    assert swap_imports(source) == (
        "import numpy as np\n"
        "from sklearn.neural_network import BernoulliRBM\n"
        f"{_REPLACEMENT}\n"
        "X = np.ones(2)\n"
    )

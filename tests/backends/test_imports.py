"""Keras and the backend libraries load without touching the user's generators."""

import ast
import json
import pathlib

import sk_keras_digits
from sk_keras_digits._backends import MODULES

#: The libraries whose imports draw from the global generators.
LIBRARIES = ("keras", "tensorflow", "jax", "jaxlib")

# Runs the steps named in NAMES in one fresh process, each between
# two readings of NumPy's and Python's global generators (seeded by the user,
# as a script would), and prints, per step, whether the generators moved and
# which of the libraries the step imported.
_STEPS = """
import json, pickle, random, sys
import numpy as np
from sklearn.datasets import load_digits
import sk_keras_digits as skd
from tests._networks import SmallDense

X, y = load_digits(return_X_y=True)
X, y = X[:120] / 16, y[:120]
folder = FOLDER
steps = {
    "fit": lambda: skd.KerasDigitClassifier(max_iter=2, random_state=0).fit(X, y),
    "save": lambda: skd.save(
        skd.KerasDigitClassifier(max_iter=2, random_state=0).fit(X, y),
        folder + "/default.skd",
    ),
    "save custom": lambda: skd.save(
        skd.KerasDigitClassifier(network=SmallDense(), max_iter=2, random_state=0)
        .fit(X, y),
        folder + "/custom.skd",
    ),
    "load": lambda: globals().update(est=skd.load(folder + "/default.skd")),
    "predict": lambda: est.predict_proba(X),
    "model_": lambda: est.model_,
    "load custom": lambda: globals().update(est=skd.load(folder + "/custom.skd")),
}


def states():
    return pickle.dumps((np.random.get_state(), random.getstate()))


np.random.seed(12345)
random.seed(12345)
report = []
for name in NAMES:
    loaded = {m for m in LIBRARIES if m in sys.modules}
    before = states()
    steps[name]()
    report.append(
        [name, states() == before, sorted(
            m for m in LIBRARIES if m in sys.modules and m not in loaded
        )]
    )
print(json.dumps(report))
"""


def _run_steps(run_on, backend, folder, names):
    script = (
        _STEPS.replace("FOLDER", repr(str(folder)))
        .replace("NAMES", repr(names))
        .replace("LIBRARIES", repr(LIBRARIES))
    )
    result = run_on(backend, script, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: (kept, new) for name, kept, new in json.loads(result.stdout)}


def test_first_uses_keep_the_global_generators(run_on, backend, tmp_path, monkeypatch):
    """In fresh processes, each way the package first imports Keras or the
    backend (a fit that traces, a fit read from the compilation cache, a
    model file's custom network, ``model_``) leaves NumPy's and Python's
    global generators where the user's seeds put them."""
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", str(tmp_path / "xla"))
    first = _run_steps(run_on, backend, tmp_path, ["fit", "save", "save custom"])
    library = "jax" if backend == "jax" else "tensorflow"
    assert {"keras", library} <= set(first["fit"][1])
    # A fit read from the cache imports JAX but not Keras; TensorFlow traces.
    later = _run_steps(run_on, backend, tmp_path, ["fit", "load", "predict", "model_"])
    custom = _run_steps(run_on, backend, tmp_path, ["load custom", "predict"])
    if backend == "jax":
        assert later["fit"][1] == ["jax", "jaxlib"]
        assert later["model_"][1] == ["keras"]
    assert custom["load custom"][1], "the custom network's file imports Keras"
    for report in (first, later, custom):
        for name, (kept, _) in report.items():
            assert kept, f"{name!r} moved a global random generator"


def _imports_of(tree):
    """``(line, top-level module)`` of each import statement in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def test_keras_and_backends_are_imported_only_through_the_guard():
    """No ``import keras`` (or a backend library) statement in the package: its
    modules call ``import_keras()`` / ``imported()``; only the backend modules,
    themselves imported through ``imported()``, import their library, as do
    their own parts (``_backends/jax_executables.py``, imported by them)."""
    root = pathlib.Path(sk_keras_digits.__file__).parent
    backend_modules = {name.rsplit(".", 1)[-1] for name in MODULES.values()}
    for path in root.rglob("*.py"):
        allowed = set()
        backend = path.stem.split("_")[0]
        if path.parent.name == "_backends" and backend in backend_modules:
            allowed = {"tensorflow", "jax", "jaxlib"}
        tree = ast.parse(path.read_text(), str(path))
        for line, module in _imports_of(tree):
            if module in LIBRARIES and module not in allowed:
                where = f"{path.relative_to(root)}:{line}"
                raise AssertionError(f"{where} imports {module} directly")


_THREADS = """
import random, threading, time
import numpy as np
from sklearn.datasets import load_digits
from sk_keras_digits import KerasDigitClassifier

X, y = load_digits(return_X_y=True)
X, y = X[:150] / 16, y[:150]
np.random.seed(0)
draws, errors, stop = [], [], threading.Event()


def user():  # a thread of the user's, drawing from NumPy's global generator
    while not stop.is_set():
        draws.append(np.random.random())
        time.sleep(0.002)


def fit(width):
    try:
        KerasDigitClassifier(hidden_layer_sizes=(width,), max_iter=2).fit(X, y)
    except Exception as exc:
        errors.append(repr(exc))


drawing = threading.Thread(target=user)
drawing.start()
fits = [threading.Thread(target=fit, args=(w,)) for w in (3, 5, 9, 17)]
for thread in fits:
    thread.start()
for thread in fits:
    thread.join()
stop.set()
drawing.join()
assert not errors, errors
assert len(draws) == len(set(draws)), f"{len(draws) - len(set(draws))} repeated"
print("ok", len(draws))
"""


def test_first_fits_in_threads_import_the_backend_once_and_repeat_no_draw(
    run_on, backend, monkeypatch
):
    """Four threads' first fits, in a fresh process, while a user's thread draws
    from NumPy's generator: each fit waits for the backend a thread is
    importing (none sees it half made), and no draw of the user's thread is
    undone to be repeated."""
    monkeypatch.setenv("SK_KERAS_DIGITS_COMPILE_CACHE", "off")
    result = run_on(backend, _THREADS, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")

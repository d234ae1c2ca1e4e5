"""Tests of benchmarks/: its options, summary, writers and benchmark pieces."""

import copy
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from sk_keras_digits.tutorial import load_split

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RUN_PY = BENCHMARKS / "run.py"
MODULES = ("settings", "peers", "measurements", "summary", "run")


@pytest.fixture(scope="module")
def bench():
    """The modules of benchmarks/ (not a package), imported as run.py does.

    ``python benchmarks/run.py`` imports its sibling modules from its folder,
    first on ``sys.path``; the same here, for the imports only.
    """
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return types.SimpleNamespace(
            **{name: importlib.import_module(name) for name in MODULES}
        )
    finally:
        sys.path.remove(str(BENCHMARKS))


def _times(**medians):
    return {
        name: {"median": m, "min": m, "n": 1, "values": [m]}
        for name, m in medians.items()
    }


@pytest.fixture
def fake_report(bench):
    """A full report with made-up numbers: every target met but two."""
    results = {
        "fit": {
            "times": _times(ours=0.024, mlp=0.08, keras=1.7, sklearn_wrapper=1.8),
            "interleaved": _times(ours=0.07, mlp=0.09),
        },
        "keras_optimizer": {
            "times": _times(ours=0.12, adam=0.1),
            "epochs": {"ours": [50], "adam": [50]},
        },
        "first_fit": {
            "times": _times(ours=0.3, mlp=0.1, keras=2.0),
            "imports": _times(ours=4.0, mlp=1.0, keras=3.5),
        },
        "first_fit_warm": {"times": _times(ours=0.15, mlp=0.1)},
        "lbfgs_fit": {
            "times": _times(ours=0.09, mlp=0.1),
            "iterations": {"ours": [200], "mlp": [200]},
        },
        # A target by backend (3 on TensorFlow): 2.67.
        "cold_script": {
            "times": _times(ours=4.0, mlp=1.5),
            "scores": {"ours": [0.93], "mlp": [0.92]},
            "children": {
                "ours": {"backend": "tensorflow", "tensorflow_imported": True},
                "mlp": {"backend": None, "tensorflow_imported": False},
            },
        },
        # 4 ms / 1 ms: misses the target of 1.
        "predict_proba_1": {"rows": 1, "times": _times(ours=4e-3, mlp=1e-3)},
        "predict_proba_797": {"rows": 797, "times": _times(ours=3e-4, mlp=3e-4)},
        "grid_search": {
            "sizes": [[5], [60]],
            "cv": 5,
            "times": _times(ours=1.5, mlp=3.9, scikeras=58.0),
            "best": {
                "ours": {"hidden_layer_sizes": [60], "score": 0.95},
                "mlp": {"hidden_layer_sizes": [60], "score": 0.96},
            },
        },
        "large_adam": {"times": _times(ours=10.0, mlp=20.0)},
        # KerasDigitRegressor against MLPRegressor: 0.2 and 0.8.
        "regressor_fit": {
            "n_samples": 331,
            "n_features": 10,
            "times": _times(ours=0.02, mlp=0.1),
            "epochs": {"ours": [100], "mlp": [100]},
            "max_weight_difference": 2.2e-16,
            "test_r2": {"ours": 0.35, "mlp": 0.35},
        },
        "regressor_predict": {"rows": 111, "times": _times(ours=8e-5, mlp=1e-4)},
        "check_estimator": {
            "times": _times(ours=5.0, mlp=4.4, scikeras=15.6),
            "counts": {
                "ours": {"passed": 65, "failed": 0, "skipped": 2, "xfail": 0},
                "mlp": {"passed": 65, "failed": 0, "skipped": 2, "xfail": 0},
                "scikeras": {"passed": 58, "failed": 7, "skipped": 2, "xfail": 0},
            },
            "failed": {"ours": [], "mlp": [], "scikeras": ["check_fit2d_1sample"]},
        },
        "memory": {
            "warmup_fits": 20,
            "fits": 300,
            "max_iter": 10,
            "ours": {"rss_before_mb": 800, "rss_after_mb": 812, "growth_mb": 12.0},
            "mlp": {"rss_before_mb": 812, "rss_after_mb": 812, "growth_mb": 0.0},
        },
        # ours - reference loop = -0.02: misses the target of 0.01.
        "accuracy": {
            "seeds": [0, 1],
            "mean": {
                "ours": 0.90,
                "ours_keras_init": 0.915,
                "mlp": 0.91,
                "keras": 0.92,
                "core": 0.92,
            },
            "std": {
                "ours": 0.01,
                "ours_keras_init": 0.01,
                "mlp": 0.01,
                "keras": 0.01,
                "core": 0.01,
            },
        },
    }
    return {
        "meta": {
            "date": "2026-01-01T00:00:00+00:00",
            "command": "python benchmarks/run.py",
            "quick": False,
            "skip_peers": False,
            "note": "Other agents were running | on this machine.",
            "machine": bench.summary.machine_info(),
            "load_average": {"start": 1.0, "end": 2.0},
        },
        "config": {"quick": False},
        "results": results,
        "summary": bench.summary.summarize(results, "tensorflow"),
    }


def results_of(report):
    return report["results"]


def _rst_doctree(text):
    docutils_core = pytest.importorskip("docutils.core")
    # halt_level=2: any docutils warning (bad table, bad markup) raises.
    return docutils_core.publish_doctree(
        text, settings_overrides={"halt_level": 2, "report_level": 2}
    )


def test_summarize_computes_ratios_and_verdicts(bench, fake_report):
    rows = {row["key"]: row for row in fake_report["summary"]}
    assert [row["key"] for row in fake_report["summary"]] == [
        key for key, *_ in bench.settings.TARGETS
    ]
    assert rows["fit"]["value"] == pytest.approx(0.3)
    assert rows["fit"]["ok"] is True
    # The Keras optimizer's fit is compared with solver="adam", not with MLP.
    assert rows["keras_optimizer"]["reference"] == 0.1
    assert rows["keras_optimizer"]["value"] == pytest.approx(1.2)
    assert rows["keras_optimizer"]["ok"] is True
    assert rows["first_fit"]["value"] == pytest.approx(3.0)
    assert rows["first_fit"]["ok"] is True
    assert rows["first_fit_warm"]["value"] == pytest.approx(1.5)
    assert rows["lbfgs_fit"]["value"] == pytest.approx(0.9)
    assert rows["lbfgs_fit"]["ok"] is True
    # A target by backend: TensorFlow's.
    assert rows["cold_script"]["value"] == pytest.approx(4.0 / 1.5)
    assert rows["cold_script"]["target"] == 3.0
    assert rows["cold_script"]["ok"] is True
    jax_rows = {
        r["key"]: r for r in bench.summary.summarize(results_of(fake_report), "jax")
    }
    assert jax_rows["cold_script"]["target"] == 2.0
    assert jax_rows["cold_script"]["ok"] is False
    # Without a backend: the limits by backend, no verdict.
    plain = {r["key"]: r for r in bench.summary.summarize(results_of(fake_report))}
    assert plain["cold_script"]["target"] == {"tensorflow": 3.0, "jax": 2.0}
    assert plain["cold_script"]["ok"] is None
    assert rows["large_adam"]["value"] == pytest.approx(0.5)
    # The regressor's rows divide by MLPRegressor's times, the "mlp" entry.
    assert rows["regressor_fit"]["reference"] == 0.1
    assert rows["regressor_fit"]["value"] == pytest.approx(0.2)
    assert rows["regressor_fit"]["target"] == 1.0
    assert rows["regressor_fit"]["ok"] is True
    assert rows["regressor_predict"]["value"] == pytest.approx(0.8)
    assert rows["regressor_predict"]["ok"] is True
    assert rows["predict_proba_1"]["value"] == pytest.approx(4.0)
    assert rows["predict_proba_1"]["ok"] is False
    assert rows["memory"]["value"] == 12.0 and rows["memory"]["ok"] is True
    # Accuracy compares ours with the reference Keras loop, in absolute value.
    assert rows["accuracy"]["value"] == pytest.approx(-0.02)
    assert rows["accuracy"]["ok"] is False
    assert rows["accuracy"]["reference"] == 0.92


def test_summarize_marks_missing_figures(bench, fake_report):
    results = copy.deepcopy(fake_report["results"])
    del results["memory"]
    del results["accuracy"]["mean"]["core"]
    rows = {row["key"]: row for row in bench.summary.summarize(results)}
    assert rows["memory"]["ok"] is None and rows["memory"]["value"] is None
    assert rows["accuracy"]["ok"] is None
    assert rows["accuracy"]["ours"] == 0.90
    assert rows["fit"]["ok"] is True


def test_tables_and_text(bench, fake_report):
    table = bench.summary.target_table(fake_report["summary"])
    assert table[0] == ["figure", "ours", "reference", "ratio", "target", "ok"]
    assert len(table) == len(bench.settings.TARGETS) + 1
    verdicts = [row[-1] for row in table[1:]]
    assert verdicts.count("NO") == 2 and verdicts.count("yes") == 13
    cold = {row[0]: row for row in table}[
        "cold script: python -c importing, fitting and scoring (warm cache)"
    ]
    assert cold[1:] == ["4.00 s", "1.50 s", "2.67", "<= 3", "yes"]
    text = bench.summary.format_text("Targets", table).splitlines()
    # The command line's text table: title, rule, header, rule, rows, rule.
    assert text[0] == "Targets" and text[2].startswith("figure ")
    rule = text[1]
    assert text[3] == text[-1] == rule and len(text) == len(table) + 4
    assert all(len(line) <= len(rule) for line in text[2:])
    peers = bench.summary.peers_table(fake_report["results"])
    assert peers[0][1:] == [header for _, header in bench.settings.PEERS]
    row = {r[0]: r for r in peers}["check_estimator passed / failed / skipped"]
    assert row[1] == "65 / 0 / 2" and row[-1] == "58 / 7 / 2" and row[3] == "-"
    row = {r[0]: r for r in peers}["regressor fit, diabetes (MLP: MLPRegressor)"]
    assert row[1:3] == ["0.020 s", "0.100 s"] and row[3:] == ["-", "-", "-"]
    assert bench.summary.fmt_seconds(0.0801) == "0.080 s"
    assert bench.summary.fmt_seconds(1.2e-4) == "0.12 ms"
    assert bench.summary.fmt_seconds(58.0) == "58.00 s"
    lines = bench.summary.details(fake_report)
    assert any(
        line.startswith("Cold script") and "ratio 2.67" in line for line in lines
    )
    assert "L-BFGS fits (alternating): iterations ours [200], MLPClassifier [200]." in (
        lines
    )
    regressor = next(line for line in lines if line.startswith("Regressor fits"))
    assert "331 x 10" in regressor and "ratio 0.20" in regressor
    assert "epochs ours [100], MLPRegressor [100]" in regressor
    assert "weight difference of the last fits 2.2e-16" in regressor
    title = bench.summary.targets_title("jax")
    assert title.startswith("JAX backend.")
    assert bench.summary.peers_title("tensorflow").endswith("TensorFlow backend")


def test_format_rst_is_valid_restructuredtext(bench, fake_report):
    text = bench.summary.format_rst(fake_report)
    doctree = _rst_doctree(text)
    tables = [node for node in doctree.findall() if node.tagname == "table"]
    # The backends' table (one column here: a report without a backend is
    # TensorFlow's), then the run's targets and absolute figures.
    assert len(tables) == 3
    rendered = doctree.astext()
    assert "check_fit2d_1sample" in rendered  # underscores escaped, not links
    assert "Other agents were running | on this machine." in rendered
    assert "NO" in rendered and "<= 0.5" in rendered


def test_write_json_and_rst(bench, fake_report, tmp_path):
    out = tmp_path / "results" / "latest.json"
    bench.summary.write_json(fake_report, out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(fake_report))
    assert list(out.parent.iterdir()) == [out]  # no .tmp left behind
    rst = tmp_path / "docs" / "table.rst"
    bench.summary.write_rst(fake_report, rst)
    _rst_doctree(rst.read_text())


def _backend_report(report, backend, date, fit_ours=0.024, **meta):
    """A copy of ``report`` measured on ``backend`` at ``date``."""
    report = copy.deepcopy(report)
    report["meta"].update(
        backend=backend,
        date=date,
        command=f"python benchmarks/run.py --backend {backend}",
        **meta,
    )
    report["results"]["fit"]["times"]["ours"] = _times(ours=fit_ours)["ours"]
    return report


def test_rst_has_a_column_per_backend_from_the_results_folder(
    bench, fake_report, tmp_path
):
    summary = bench.summary
    results = tmp_path / "results"
    jax = _backend_report(
        fake_report,
        "jax",
        "2026-01-02T00:00:00+00:00",
        fit_ours=0.016,
        skipped_peers={"scikeras": "scikeras needs TensorFlow"},
    )
    reports = {
        "latest-tensorflow.json": _backend_report(
            fake_report, "tensorflow", "2026-01-03T00:00:00+00:00"
        ),
        "latest-jax.json": jax,
        # Older: left out.
        "old-tensorflow.json": _backend_report(
            fake_report, "tensorflow", "2025-12-01T00:00:00+00:00", fit_ours=0.16
        ),
        # A report of the versions without a backend: TensorFlow's, older.
        "latest.json": fake_report,
        # Newer, but a smoke run and a partial run: left out of full runs.
        "quick-jax.json": _backend_report(
            fake_report, "jax", "2026-02-01T00:00:00+00:00", quick=True
        ),
        "partial-jax.json": _backend_report(
            fake_report, "jax", "2026-02-01T00:00:00+00:00", only=["fit"]
        ),
    }
    for name, report in reports.items():
        summary.write_json(report, results / name)
    (results / "other.json").write_text('{"not": "a report"}')
    (results / "broken.json").write_text("{")

    latest = summary.latest_reports(results)
    assert [summary.report_backend(r) for r in latest] == ["tensorflow", "jax"]
    assert latest[0]["meta"]["date"].startswith("2026-01-03")
    assert latest[1]["meta"]["date"].startswith("2026-01-02")
    quick = summary.latest_reports(results, quick=True)
    assert [summary.report_backend(r) for r in quick] == ["jax"]
    # The run being written wins a tie of dates.
    current = _backend_report(jax, "jax", jax["meta"]["date"], fit_ours=0.02)
    again = summary.latest_reports(results, current=current)
    assert again[1] is current

    table = summary.backend_table(latest)
    assert table[0] == ["figure", "target", "TensorFlow", "JAX"]
    rows = {row[0]: row[1:] for row in table[1:]}
    assert len(rows) == len(bench.settings.TARGETS)
    assert rows["fit, tutorial configuration, 2nd and later fits"] == [
        "<= 0.35",
        "0.30 (yes)",
        "0.20 (yes)",
    ]
    assert rows["predict_proba, 1 row"][1:] == ["4.00 (NO)", "4.00 (NO)"]
    cold = rows["cold script: python -c importing, fitting and scoring (warm cache)"]
    assert cold == ["<= 3 TensorFlow, <= 2 JAX", "2.67 (yes)", "2.67 (NO)"]

    rst = tmp_path / "docs" / "table.rst"
    summary.write_rst(latest, rst)
    doctree = _rst_doctree(rst.read_text())
    tables = [node for node in doctree.findall() if node.tagname == "table"]
    assert len(tables) == 1 + 2 * 2  # backends, then each backend's two
    header = next(node for node in tables[0].findall() if node.tagname == "thead")
    assert [
        entry.astext() for entry in header.findall() if entry.tagname == "entry"
    ] == ["figure", "target", "TensorFlow", "JAX"]
    rubrics = [node.astext() for node in doctree.findall() if node.tagname == "rubric"]
    assert rubrics == ["TensorFlow backend", "JAX backend"]
    rendered = doctree.astext()
    assert "python benchmarks/run.py --backend jax" in rendered
    assert "scikeras left out on JAX: scikeras needs TensorFlow." in rendered
    assert "JAX backend. Targets" in rendered


def test_backend_option(bench, monkeypatch):
    parse = bench.run.parse_args
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert parse([]).backend == "tensorflow"
    assert parse(["--backend", "jax"]).backend == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert parse([]).backend == "jax"
    assert parse(["--backend", "tensorflow"]).backend == "tensorflow"
    with pytest.raises(SystemExit):
        parse(["--backend", "torch"])
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(SystemExit):
        parse([])  # a backend the benchmark does not know, from the environment
    assert parse(["--backend", "jax"]).backend == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    args = parse(["--only", "fit, first_fit", "--quick"])
    assert args.only == ["fit", "first_fit"] and args.quick
    assert parse(["--only", "regressor"]).only == ["regressor"]
    with pytest.raises(SystemExit):
        parse(["--only", "fit,nothing"])
    # One JSON file per backend and kind of run.
    assert bench.settings.default_out("jax").name == "latest-jax.json"
    assert bench.settings.default_out("tensorflow", quick=True).name == (
        "quick-tensorflow.json"
    )
    # Keras, once imported, keeps its backend: another one is refused.
    import keras

    running = keras.backend.backend()
    bench.run._check_keras_backend(running)
    with pytest.raises(SystemExit, match="fresh process"):
        bench.run._check_keras_backend("jax" if running != "jax" else "tensorflow")


def test_peers_by_backend(bench):
    peers = bench.peers
    assert peers.active_peers(True, "tensorflow") == peers.KERAS_PEERS
    assert peers.active_peers(True, "jax") == ("keras", "sklearn_wrapper")
    assert peers.active_peers(False, "jax") == ()
    assert peers.active_peers(["scikeras", "keras"], "jax") == ("keras", "scikeras")
    assert set(peers.skipped_peers("jax")) == {"scikeras"}
    assert peers.skipped_peers("tensorflow") == {}


def _env_without_backend():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    return env


def test_importing_the_benchmark_imports_no_keras():
    """run.py imports its modules before --backend sets KERAS_BACKEND."""
    code = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import run; "
        "loaded = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        timeout=120,
        env=_env_without_backend(),
    )


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_jax_run_imports_no_tensorflow(tmp_path):
    """A JAX run and the fresh processes it starts stay off TensorFlow."""
    out = tmp_path / "partial.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN_PY),
            "--backend",
            "jax",
            "--quick",
            "--skip-peers",
            "--only",
            "first_fit",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env_without_backend(),  # the option alone sets the backend
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    meta = report["meta"]
    assert meta["backend"] == "jax"
    assert meta["command"].startswith("python benchmarks/run.py --backend jax")
    assert meta["only"] == ["first_fit"]
    assert meta["tensorflow_imported"] is False
    assert "jax" in meta["machine"]["versions"]
    children = report["results"]["first_fit"]["children"]
    # The first-fit processes inherited the backend.
    assert children["ours"] == {
        "backend": "jax",
        "keras_imported": True,  # import_backend imports it ahead of the fit
        "tensorflow_imported": False,
    }
    assert children["mlp"] == {
        "backend": None,
        "keras_imported": False,
        "tensorflow_imported": False,
    }
    assert "JAX backend. Targets" in proc.stdout
    assert "Absolute figures (medians), JAX backend" in proc.stdout
    assert list(tmp_path.iterdir()) == [out]  # no RST for a partial run


def test_cold_script_runs_in_a_fresh_process(bench):
    result = bench.measurements.bench_cold_script(
        {"cold_script_repeats": 1}, models=("mlp",)
    )
    assert result["times"]["mlp"]["n"] == 1
    assert result["times"]["mlp"]["median"] > 0
    assert 0.8 < result["scores"]["mlp"][0] <= 1
    assert result["children"]["mlp"] == {
        "backend": None,
        "keras_imported": False,
        "tensorflow_imported": False,
    }
    json.dumps(result)


def test_benchmark_pieces_on_real_data(bench, tmp_path):
    """Each in-process benchmark on real fits, with tiny repeats."""
    cfg = dict(
        bench.settings.SETTINGS["quick"],
        fit_repeats=1,
        predict_calls_1=5,
        predict_calls_797=2,
        grid_sizes=[(5,)],
        grid_cv=2,
        memory_warmup=1,
        memory_fits=3,
        memory_max_iter=2,
        accuracy_seeds=1,
    )
    data = load_split()
    assert [a.shape[0] for a in data] == [1000, 1000, 797, 797]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning
        results = {
            "fit": bench.measurements.bench_fit(cfg, data, peers=False),
            **bench.measurements.bench_predict(cfg, data, peers=False),
            "grid_search": bench.measurements.bench_grid(cfg, data, peers=False),
            "memory": bench.measurements.bench_memory(cfg, data),
            "accuracy": bench.measurements.bench_accuracy(cfg, data, peers=False),
            "large_adam": bench.measurements.bench_large_fit(
                dict(cfg, large_fit_samples=400)
            ),
        }
    assert results["large_adam"]["n_samples"] == 400
    for key in (
        "fit",
        "predict_proba_1",
        "predict_proba_797",
        "grid_search",
        "large_adam",
    ):
        assert set(results[key]["times"]) == {"ours", "mlp"}
        for stat in results[key]["times"].values():
            assert stat["median"] > 0 and stat["n"] >= 1
    assert results["predict_proba_797"]["rows"] == 797
    assert results["grid_search"]["best"]["ours"]["hidden_layer_sizes"] == [5]
    assert results["memory"]["ours"]["rss_before_mb"] > 0
    assert len(results["memory"]["ours"]["trace_mb"]) == 3
    assert 0.8 < results["accuracy"]["mean"]["ours"] <= 1
    assert 0.8 < results["accuracy"]["mean"]["ours_keras_init"] <= 1
    assert 0.8 < results["accuracy"]["mean"]["core"] <= 1
    assert (
        abs(results["accuracy"]["mean"]["ours"] - results["accuracy"]["mean"]["mlp"])
        < 0.1
    )
    rows = {row["key"]: row for row in bench.summary.summarize(results)}
    assert rows["fit"]["ok"] in (True, False)
    assert rows["check_estimator"]["ok"] is None  # not run here
    json.dumps(results)  # every figure is plain JSON


def _measured_on_real_data(bench, key, measure, estimators):
    """One quick ``measure`` on the digits: its result, checked as a figure.

    The result times each of ``estimators``; its summary row for ``key`` has
    a verdict, and it is plain JSON.
    """
    cfg = dict(bench.settings.SETTINGS["quick"], fit_repeats=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning
        result = measure(cfg, load_split())
    assert set(result["times"]) == set(estimators)
    assert all(stat["median"] > 0 for stat in result["times"].values())
    rows = {row["key"]: row for row in bench.summary.summarize({key: result})}
    assert rows[key]["ok"] in (True, False)
    json.dumps(result)
    return result


def test_keras_optimizer_benchmark_on_real_data(bench):
    result = _measured_on_real_data(
        bench,
        "keras_optimizer",
        bench.measurements.bench_keras_optimizer,
        ("ours", "adam"),
    )
    epochs = result["epochs"]["ours"] + result["epochs"]["adam"]
    assert all(1 <= n <= 50 for n in epochs)


def test_lbfgs_benchmark_on_real_data(bench):
    result = _measured_on_real_data(
        bench, "lbfgs_fit", bench.measurements.bench_lbfgs, ("ours", "mlp")
    )
    # tol=0: both run L-BFGS-B's 200 iterations (or stop at its own limits).
    iterations = result["iterations"]["ours"] + result["iterations"]["mlp"]
    assert all(100 <= n <= 200 for n in iterations)


def test_regressor_benchmark_on_real_data(bench):
    X, y, X_test, y_test = bench.measurements.regression_split()
    assert X.shape == (331, 10) and X_test.shape == (111, 10)
    np.testing.assert_allclose([X.mean(), y.mean(), y.std()], [0, 0, 1], atol=1e-12)
    cfg = dict(
        bench.settings.SETTINGS["quick"],
        regressor_fit_repeats=1,
        regressor_predict_calls=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning
        result = bench.measurements.bench_regressor(cfg)
    fit, predict = result["regressor_fit"], result["regressor_predict"]
    for figure in (fit, predict):
        assert set(figure["times"]) == {"ours", "mlp"}
        assert all(stat["median"] > 0 for stat in figure["times"].values())
    assert predict["rows"] == 111 and predict["times"]["ours"]["n"] == 2
    # The same work: every epoch run by both, to the same weights.
    max_iter = bench.settings.REGRESSOR["max_iter"]
    assert fit["epochs"] == {"ours": [max_iter], "mlp": [max_iter]}
    assert fit["max_weight_difference"] < 1e-7
    assert fit["test_r2"]["ours"] == pytest.approx(fit["test_r2"]["mlp"], abs=1e-6)
    rows = {row["key"]: row for row in bench.summary.summarize(result)}
    assert rows["regressor_fit"]["ok"] in (True, False)
    assert rows["regressor_predict"]["ok"] in (True, False)
    assert rows["fit"]["ok"] is None  # not run here
    json.dumps(result)


def test_first_fit_child_runs_in_a_fresh_process(bench):
    proc = subprocess.run(
        [sys.executable, str(RUN_PY), "--first-fit-child", "mlp"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["which"] == "mlp"
    assert result["first_fit"] > 0 and result["import"] > 0
    assert result["backend"] is None and result["tensorflow"] is False


def test_peers_fit_the_tutorial_network(bench, digits):
    pytest.importorskip("scikeras")
    import keras

    X, y = digits[0][:200], digits[1][:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peers' own deprecation warnings
        model = bench.peers.keras_fit(X, keras.utils.to_categorical(y, 10), seed=0)
        wrapper = bench.peers.sklearn_wrapper().fit(X, y)
        sk = bench.peers.scikeras().fit(X, y)
        proba = {
            "keras": model.predict(X, verbose=0),
            "sklearn_wrapper": wrapper.decision_function(X),
            "scikeras": sk.predict_proba(X),
        }
        # The grid's parameter reaches scikeras' model function.
        narrow = bench.peers.scikeras().set_params(hidden_layer_sizes=(5,)).fit(X, y)
    assert [layer.units for layer in model.layers[1:]] == [15, 10]
    assert [layer.units for layer in narrow.model_.layers[1:]] == [5, 10]
    for name, p in proba.items():
        assert p.shape == (200, 10), name
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-4, err_msg=name)
        assert np.mean(p.argmax(axis=1) == y) > 0.5, name

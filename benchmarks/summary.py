"""The summary of a run: targets met, tables, side figures, JSON and RST.

:func:`summarize` compares the figures with the targets of
:data:`settings.TARGETS`; :func:`target_table` and :func:`peers_table` give
them as rows of strings, printed by :func:`format_text`; :func:`write_json`
keeps every number, one file per backend. The docs' ``benchmark_table.rst``
(:func:`write_rst`) is rendered from the latest report of each backend
(:func:`latest_reports`): :func:`backend_table` puts their compared values
side by side, one column per backend, then each backend's own tables follow.
"""

import json
import os
import platform
from importlib import metadata
from pathlib import Path

from settings import (
    BACKEND_DISTRIBUTIONS,
    BACKENDS,
    COMPARED_ACCURACY,
    PEERS,
    RATIO_REFERENCE,
    TARGETS,
)

from sk_keras_digits.tutorial import Table

#: Titles of the targets table and of the absolute figures (see
#: :func:`targets_title` and :func:`peers_title`, which name the backend).
TARGETS_TITLE = (
    "Targets, measured side by side. Reference: MLPClassifier for the "
    "ratios (MLPRegressor for the regressor's, solver='adam' for the Keras "
    "optimizer's); for the "
    "accuracy, the reference Keras loop (the "
    "estimator's training written as plain per-batch Keras steps)"
)
PEERS_TITLE = "Absolute figures (medians)"
BACKENDS_TITLE = (
    "Compared values by backend (ratio ours / reference; RSS growth in MB; "
    "accuracy difference), target met or not, from the latest run on each"
)


def backend_name(backend):
    """The printed name of a backend: 'TensorFlow', 'JAX' (else as given)."""
    return BACKENDS.get(backend, backend)


def report_backend(report):
    """The backend a report was measured on (reports without one: TensorFlow)."""
    return report.get("meta", {}).get("backend") or "tensorflow"


def targets_title(backend):
    """:data:`TARGETS_TITLE`, naming the backend."""
    return f"{backend_name(backend)} backend. {TARGETS_TITLE}"


def peers_title(backend):
    """:data:`PEERS_TITLE`, naming the backend."""
    return f"{PEERS_TITLE}, {backend_name(backend)} backend"


def _median(results, key, name):
    """Median seconds of ``name`` for figure ``key``, or None."""
    try:
        return results[key]["times"][name]["median"]
    except (KeyError, TypeError):
        return None


def _limit(limit, backend):
    """A target's limit on ``backend`` (limits may differ by backend)."""
    if isinstance(limit, dict):
        return limit if backend is None else limit.get(backend)
    return limit


def summarize(results, backend=None):
    """One row per target: the figures, the compared value and whether it passes.

    Parameters
    ----------
    results : dict
        The ``results`` of a run (figure key -> measurements); missing
        figures give rows with ``None`` values.
    backend : str, default=None
        The backend the figures were measured on, for a target whose limit
        depends on it; None keeps such limits as their dict, with no verdict.

    Returns
    -------
    rows : list of dict
        ``key``, ``figure``, ``kind``, ``unit``, ``ours``, ``reference``
        (MLPClassifier's figure, or the one :data:`RATIO_REFERENCE` names),
        ``value`` (the ratio, the absolute figure or the difference compared
        with the target), ``target`` (the limit; None for a figure without
        a target) and ``ok`` (bool, or None when a figure is missing or has
        no target).
    """
    rows = []
    for key, figure, kind, limit in TARGETS:
        limit = _limit(limit, backend)
        row = {"key": key, "figure": figure, "kind": kind, "target": limit}
        if kind == "ratio":
            row["unit"] = "s"
            row["ours"] = _median(results, key, "ours")
            row["reference"] = _median(results, key, RATIO_REFERENCE.get(key, "mlp"))
            if row["ours"] is not None and row["reference"]:
                row["value"] = row["ours"] / row["reference"]
        elif kind == "absolute":
            row["unit"] = "MB"
            memory = results.get(key) or {}
            row["ours"] = (memory.get("ours") or {}).get("growth_mb")
            row["reference"] = (memory.get("mlp") or {}).get("growth_mb")
            row["value"] = row["ours"]
        else:
            row["unit"] = ""
            means = (results.get("accuracy") or {}).get("mean", {})
            ours_key, reference_key = COMPARED_ACCURACY[key]
            row["ours"] = means.get(ours_key)
            row["reference"] = means.get(reference_key)
            if row["ours"] is not None and row["reference"] is not None:
                row["value"] = row["ours"] - row["reference"]
        value = row.setdefault("value", None)
        if value is None or limit is None or isinstance(limit, dict):
            row["ok"] = None
        elif kind == "difference":
            row["ok"] = bool(abs(value) <= limit)
        else:
            row["ok"] = bool(value <= limit)
        rows.append(row)
    return rows


def fmt_seconds(seconds):
    """A duration with a readable unit: '0.083 s', '0.12 ms', '1.4 s'."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds:.3f} s"
    return f"{seconds * 1e3:.3g} ms"


def _fmt_figure(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return fmt_seconds(value)
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.4f}"


#: How the compared value and the target of a row read, by kind of target.
_ROW_FORMATS = {
    "ratio": ("{:.2f}", "<= {:g}"),
    "absolute": ("{:.1f} MB", "<= {:g} MB"),
    "difference": ("{:+.4f}", "within {:g}"),
}


def _fmt_value(row):
    value = row["value"]
    return "-" if value is None else _ROW_FORMATS[row["kind"]][0].format(value)


def _fmt_target(row):
    target = row["target"]
    if target is None:
        return "none"
    form = _ROW_FORMATS[row["kind"]][1]
    if isinstance(target, dict):
        return ", ".join(
            f"{form.format(limit)} {backend_name(backend)}"
            for backend, limit in target.items()
        )
    return form.format(target)


def _fmt_ok(row):
    if row["target"] is None:
        return "-"
    return {True: "yes", False: "NO", None: "n/a"}[row["ok"]]


def target_table(rows):
    """The targets as rows of strings, a header first."""
    table = [["figure", "ours", "reference", "ratio", "target", "ok"]]
    for row in rows:
        table.append(
            [
                row["figure"],
                _fmt_figure(row["ours"], row["unit"]),
                _fmt_figure(row["reference"], row["unit"]),
                _fmt_value(row),
                _fmt_target(row),
                _fmt_ok(row),
            ]
        )
    return table


def peers_table(results):
    """Absolute figures of every estimator, as rows of strings, a header first."""
    table = [["figure"] + [header for _, header in PEERS]]
    timed_rows = [
        ("fit", "fit, tutorial configuration (2nd and later)"),
        ("first_fit", "first fit in a process (after imports)"),
        ("first_fit_warm", "first fit, warm compilation cache"),
        ("cold_script", "cold script (python -c: import, fit, score)"),
        ("lbfgs_fit", "fit, tutorial network, solver='lbfgs'"),
        ("predict_proba_1", "predict_proba, 1 row"),
        ("predict_proba_797", "predict_proba, 797 rows"),
        ("grid_search", "GridSearchCV 5x5, Pipeline"),
        ("large_adam", "fit, 55,000 x 784, adam, 5 epochs"),
        ("regressor_fit", "regressor fit, diabetes (MLP: MLPRegressor)"),
        ("regressor_predict", "regressor predict, 111 rows (MLP: MLPRegressor)"),
        ("check_estimator", "check_estimator, whole suite"),
    ]
    for key, label in timed_rows:
        table.append(
            [label] + [fmt_seconds(_median(results, key, name)) for name, _ in PEERS]
        )
    counts = (results.get("check_estimator") or {}).get("counts", {})
    table.append(
        ["check_estimator passed / failed / skipped"]
        + [
            "{passed} / {failed} / {skipped}".format(**counts[name])
            if name in counts
            else "-"
            for name, _ in PEERS
        ]
    )
    means = (results.get("accuracy") or {}).get("mean", {})
    table.append(
        ["mean test accuracy"]
        + [f"{means[name]:.4f}" if name in means else "-" for name, _ in PEERS]
    )
    return table


def details(report):
    """Side figures that explain the targets, as sentences.

    Parameters
    ----------
    report : dict
        A run's report (``config`` and ``results``); missing figures are left
        out.

    Returns
    -------
    lines : list of str
    """
    results, cfg = report["results"], report.get("config", {})
    meta = report.get("meta", {})
    backend = report_backend(report)
    lines = []
    for name, note in (meta.get("skipped_peers") or {}).items():
        header = dict(PEERS).get(name, name)
        lines.append(f"{header} left out on {backend_name(backend)}: {note}.")
    fit = results.get("fit") or {}
    inter = fit.get("interleaved") or {}
    if "ours" in inter and "mlp" in inter:
        o, m = inter["ours"]["median"], inter["mlp"]["median"]
        lines.append(
            f"Fits interleaved (ours, MLP, ours, ...): ours {fmt_seconds(o)}, "
            f"MLPClassifier {fmt_seconds(m)}, ratio {o / m:.2f}; the target row "
            "times each in its own block."
        )
    imports = (results.get("first_fit") or {}).get("imports") or {}
    if imports:
        lines.append(
            "Imports before the first fit, in a fresh process: "
            + ", ".join(
                f"{header} {fmt_seconds(imports[name]['median'])}"
                for name, header in PEERS
                if name in imports
            )
            + "."
        )
    cold = results.get("cold_script") or {}
    cold_times = cold.get("times") or {}
    if "ours" in cold_times and "mlp" in cold_times:
        o, m = cold_times["ours"], cold_times["mlp"]
        scores = cold.get("scores") or {}
        child = (cold.get("children") or {}).get("ours") or {}
        lines.append(
            "Cold script (a fresh python -c: interpreter start, imports, the "
            "digits, one fit of the tutorial configuration, the test score; "
            "the compilation cache warm from a run before), "
            f"median of {o['n']}: ours {fmt_seconds(o['median'])}, "
            f"MLPClassifier {fmt_seconds(m['median'])}, ratio "
            f"{o['median'] / m['median']:.2f}"
            + (
                f"; test accuracy ours {scores['ours'][0]:.4f}, MLPClassifier "
                f"{scores['mlp'][0]:.4f}"
                if scores.get("ours") and scores.get("mlp")
                else ""
            )
            + (
                "; ours imported Keras"
                if child.get("keras_imported")
                else "; ours did not import Keras (its program came from the cache)"
                if "keras_imported" in child
                else ""
            )
            + "."
        )
    if backend != "tensorflow" and "tensorflow_imported" in meta:
        imported = [
            f"{key} ({name})"
            for key in ("first_fit", "cold_script")
            for name, child in ((results.get(key) or {}).get("children") or {}).items()
            if child.get("tensorflow_imported")
        ]
        if meta["tensorflow_imported"]:
            step = meta.get("tensorflow_imported_at")
            imported.insert(
                0,
                "the benchmark's own process"
                + (f" (first during the {step} step)" if step else ""),
            )
        lines.append(
            "TensorFlow imported by: " + ", ".join(imported) + "."
            if imported
            else "TensorFlow was imported neither by the run nor by its fresh "
            "processes."
        )
    grid = results.get("grid_search") or {}
    if grid.get("best"):
        lines.append(
            f"GridSearchCV searched hidden_layer_sizes in "
            f"{[tuple(s) for s in grid['sizes']]} with cv={grid['cv']}; best: "
            + ", ".join(
                f"{header} {tuple(grid['best'][name]['hidden_layer_sizes'])} "
                f"({grid['best'][name]['score']:.3f})"
                for name, header in PEERS
                if name in grid["best"]
            )
            + "."
        )
    lbfgs = results.get("lbfgs_fit") or {}
    iterations = lbfgs.get("iterations") or {}
    if iterations.get("ours") and iterations.get("mlp"):
        lines.append(
            f"L-BFGS fits (alternating): iterations ours "
            f"{sorted(set(iterations['ours']))}, MLPClassifier "
            f"{sorted(set(iterations['mlp']))}."
        )
    regressor = results.get("regressor_fit") or {}
    reg_times = regressor.get("times") or {}
    if "ours" in reg_times and "mlp" in reg_times:
        o, m = reg_times["ours"]["median"], reg_times["mlp"]["median"]
        epochs = regressor.get("epochs") or {}
        r2 = regressor.get("test_r2") or {}
        text = (
            f"Regressor fits (KerasDigitRegressor, MLPRegressor, alternating), "
            f"diabetes data standardised, {regressor.get('n_samples')} x "
            f"{regressor.get('n_features')}, median of {reg_times['ours']['n']}: "
            f"ours {fmt_seconds(o)}, MLPRegressor {fmt_seconds(m)}, ratio "
            f"{o / m:.2f}"
        )
        if epochs.get("ours") and epochs.get("mlp"):
            text += (
                f"; epochs ours {sorted(set(epochs['ours']))}, MLPRegressor "
                f"{sorted(set(epochs['mlp']))}"
            )
        if regressor.get("max_weight_difference") is not None:
            text += (
                "; largest weight difference of the last fits "
                f"{regressor['max_weight_difference']:.1e}"
            )
        if "ours" in r2 and "mlp" in r2:
            text += f"; test R^2 ours {r2['ours']:.4f}, MLPRegressor {r2['mlp']:.4f}"
        lines.append(text + ".")
    failed = (results.get("check_estimator") or {}).get("failed") or {}
    for name, header in PEERS:
        if failed.get(name):
            lines.append(
                f"check_estimator checks failed by {header}: "
                + ", ".join(failed[name])
                + "."
            )
    memory = results.get("memory") or {}
    if "ours" in memory:
        growth = ", ".join(
            f"{header} {memory[name]['growth_mb']:+.1f} MB (from "
            f"{memory[name]['rss_before_mb']:.0f} MB)"
            for name, header in PEERS
            if name in memory
        )
        lines.append(
            f"Memory: resident set size growth over {memory['fits']} consecutive "
            f"fits with max_iter={memory['max_iter']}, after "
            f"{memory['warmup_fits']} warm-up fits: {growth}."
        )
    accuracy = results.get("accuracy") or {}
    if accuracy.get("mean"):
        mean, std = accuracy["mean"], accuracy["std"]
        text = (
            f"Accuracy over {len(accuracy['seeds'])} seeds (mean +- std): "
            + ", ".join(
                f"{header} {mean[name]:.4f} +- {std[name]:.4f}"
                for name, header in PEERS
                if name in mean
            )
        )
        if "mlp" in mean:
            text += f"; ours - MLPClassifier {mean['ours'] - mean['mlp']:+.4f}"
        if "core" in mean:
            text += f"; reference Keras loop {mean['core']:.4f} +- {std['core']:.4f}"
        if "ours_keras_init" in mean:
            text += (
                "; ours on the tutorial's Keras network with Keras' initialisers "
                f"(network=) {mean['ours_keras_init']:.4f} +- "
                f"{std['ours_keras_init']:.4f} (plain Keras trains without "
                "the L2 penalty or Nesterov momentum, in float32)"
            )
        lines.append(text + ".")
    if cfg.get("quick"):
        lines.append(
            "Quick smoke run: fewer repeats, a smaller grid and fewer fits for "
            "memory than the targets name; not a measurement against them."
        )
    return lines


def format_text(title, table):
    """A list of string rows, a header first, as a plain-text table.

    Parameters
    ----------
    title : str
        Printed above the table.
    table : list of list of str
        The header, then the rows.

    Returns
    -------
    text : str
        The command line's text table (:meth:`~sk_keras_digits.tutorial.Table.to_text`).
    """
    return Table(title=title, header=table[0], rows=table[1:]).to_text()


def rst_escape(text):
    """Text with reStructuredText's inline markup characters escaped."""
    for char in "\\*|`_":
        text = text.replace(char, "\\" + char)
    return text


def _rst_list_table(title, table):
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in table:
        for i, cell in enumerate(row):
            text = rst_escape(cell) or "\\"
            lines.append(f"   {'* -' if i == 0 else '  -'} {text}")
    return "\n".join(lines)


def machine_info(backend=None):
    """CPU, platform and library versions (read without importing them).

    Parameters
    ----------
    backend : str, default=None
        The versions of its libraries are recorded (those of every backend of
        :data:`settings.BACKEND_DISTRIBUTIONS` when None).

    Returns
    -------
    info : dict
        ``cpu_model``, ``cpu_count``, ``cpus_usable``, ``platform``,
        ``python`` and ``versions`` (distribution -> version or None).
    """
    if backend is None:
        extra = [d for dists in BACKEND_DISTRIBUTIONS.values() for d in dists]
    else:
        extra = list(BACKEND_DISTRIBUTIONS.get(backend, ()))
    versions = {}
    for dist in ("numpy", "scipy", "scikit-learn", *extra, "keras", "sk-keras-digits"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu_model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def backend_table(reports):
    """The compared value of each target, one column per backend.

    Parameters
    ----------
    reports : list of dict
        One report per backend (see :func:`latest_reports`); each one's
        targets are summarised again from its ``results``.

    Returns
    -------
    table : list of list of str
        A header (figure, target, then the backends' names), then one row per
        target: the value and, for a target, whether it is met, as
        ``"0.50 (yes)"``.
    """
    table = [["figure", "target"] + [backend_name(report_backend(r)) for r in reports]]
    summaries = [
        {
            row["key"]: row
            for row in summarize(r.get("results") or {}, report_backend(r))
        }
        for r in reports
    ]
    for row in summarize({}):
        cells = [row["figure"], _fmt_target(row)]
        for summary in summaries:
            measured = summary[row["key"]]
            cell = _fmt_value(measured)
            if measured["value"] is not None and measured["target"] is not None:
                cell += f" ({_fmt_ok(measured)})"
            cells.append(cell)
        table.append(cells)
    return table


def _backend_order(backend):
    names = list(BACKENDS)
    return (names.index(backend) if backend in names else len(names), backend)


def latest_reports(folder, quick=False, current=None):
    """The latest report of each backend among the JSON files of a folder.

    Parameters
    ----------
    folder : path-like
        Where the runs wrote their JSON (``benchmarks/results``); files that
        are not reports are ignored.
    quick : bool, default=False
        Keep ``--quick`` runs (True) or full runs (False); runs of only some
        figures (``--only``) are left out.
    current : dict, default=None
        A report to count in even if it was written elsewhere (the run
        being written); it wins a tie of dates.

    Returns
    -------
    reports : list of dict
        The newest (by ``meta.date``) of each backend, in the order of
        :data:`settings.BACKENDS`; a report without a backend counts as
        TensorFlow's.
    """
    candidates = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        meta = report.get("meta") if isinstance(report, dict) else None
        if not isinstance(meta, dict) or "results" not in report:
            continue
        if bool(meta.get("quick")) == quick and not meta.get("only"):
            candidates.append(report)
    if current is not None:
        candidates.append(current)
    newest = {}
    for report in candidates:
        backend = report_backend(report)
        date = report["meta"].get("date") or ""
        if backend not in newest or date >= (newest[backend]["meta"].get("date") or ""):
            newest[backend] = report
    return [newest[b] for b in sorted(newest, key=_backend_order)]


def _rst_run(report):
    """One backend's part of the RST page: the run, its tables, side figures."""
    meta = report["meta"]
    machine = meta["machine"]
    backend = report_backend(report)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    load = meta.get("load_average") or {}
    mode = "quick smoke run" if meta.get("quick") else "full run"
    if meta.get("skip_peers"):
        mode += ", peers skipped"
    lines = [
        f".. rubric:: {backend_name(backend)} backend",
        "",
        f"Measured on {meta['date']} ({mode}) with ``{meta['command']}``: "
        f"{machine['cpu_model'] or 'unknown CPU'}, {machine['cpus_usable']} usable "
        f"of {machine['cpu_count']} CPUs, Python {machine['python']}, {versions}.",
    ]
    if load:
        lines[-1] += (
            f" Load average (1 min) {load.get('start') or 0:.2f} at the start, "
            f"{load.get('end') or 0:.2f} at the end."
        )
    if meta.get("note"):
        lines += ["", rst_escape(meta["note"])]
    lines += [
        "",
        _rst_list_table(
            targets_title(backend),
            target_table(summarize(report["results"], backend)),
        ),
        "",
        _rst_list_table(peers_title(backend), peers_table(report["results"])),
        "",
    ]
    lines += [f"* {rst_escape(line)}" for line in details(report)] + [""]
    return lines


def format_rst(reports):
    """The reStructuredText page fragment shown by the docs.

    Parameters
    ----------
    reports : dict or list of dict
        A run's report, as written to JSON (``meta``, ``results``), or one
        report per backend (see :func:`latest_reports`).

    Returns
    -------
    text : str
        :func:`backend_table` (one column per backend), then each backend's
        run: the machine and date, its targets, its absolute figures and its
        side figures.
    """
    if isinstance(reports, dict):
        reports = [reports]
    reports = sorted(reports, key=lambda r: _backend_order(report_backend(r)))
    lines = [
        ".. This file is written by benchmarks/run.py; do not edit it by hand.",
        "",
        "The latest run on each backend Keras was configured with "
        "(``python benchmarks/run.py --backend NAME``); each is described "
        "below the table.",
        "",
        _rst_list_table(BACKENDS_TITLE, backend_table(reports)),
        "",
    ]
    for report in reports:
        lines += _rst_run(report)
    return "\n".join(lines)


def write_json(report, path):
    """Write the report as indented JSON (atomically, through a .tmp file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_rst(reports, path):
    """Write :func:`format_rst` of the reports (one, or one per backend)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_rst(reports))

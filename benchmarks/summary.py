"""The summary of a run: targets met, tables, side figures, JSON and RST.

:func:`summarize` compares the figures with the targets of
:data:`settings.TARGETS`; :func:`target_table` and :func:`peers_table` give
them as rows of strings, printed by :func:`format_text` and written into the
docs' ``benchmark_table.rst`` by :func:`write_rst`; :func:`write_json` keeps
every number.
"""

import json
import os
import platform
from importlib import metadata
from pathlib import Path

from settings import COMPARED_ACCURACY, PEERS, RATIO_REFERENCE, TARGETS

from sk_keras_digits.tutorial import Table

#: Titles of the targets table and of the absolute figures.
TARGETS_TITLE = (
    "Targets, measured side by side. Reference: MLPClassifier for the "
    "ratios (solver='adam' for the Keras optimizer's); for the "
    "accuracy, the reference Keras loop (the "
    "estimator's training written as plain per-batch Keras steps)"
)
PEERS_TITLE = "Absolute figures (medians)"


def _median(results, key, name):
    """Median seconds of ``name`` for figure ``key``, or None."""
    try:
        return results[key]["times"][name]["median"]
    except (KeyError, TypeError):
        return None


def summarize(results):
    """One row per target: the figures, the compared value and whether it passes.

    Parameters
    ----------
    results : dict
        The ``results`` of a run (figure key -> measurements); missing
        figures give rows with ``None`` values.

    Returns
    -------
    rows : list of dict
        ``key``, ``figure``, ``kind``, ``unit``, ``ours``, ``reference``
        (MLPClassifier's figure, or the one :data:`RATIO_REFERENCE` names),
        ``value`` (the ratio, the absolute figure or the difference compared
        with the target), ``target`` (the limit) and
        ``ok`` (bool, or None when a figure is missing).
    """
    rows = []
    for key, figure, kind, limit in TARGETS:
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
        if value is None:
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
    return _ROW_FORMATS[row["kind"]][1].format(row["target"])


def _fmt_ok(ok):
    return {True: "yes", False: "NO", None: "n/a"}[ok]


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
                _fmt_ok(row["ok"]),
            ]
        )
    return table


def peers_table(results):
    """Absolute figures of every estimator, as rows of strings, a header first."""
    table = [["figure"] + [header for _, header in PEERS]]
    timed_rows = [
        ("fit", "fit, tutorial configuration (2nd and later)"),
        ("first_fit", "first fit in a process (after imports)"),
        ("predict_proba_1", "predict_proba, 1 row"),
        ("predict_proba_797", "predict_proba, 797 rows"),
        ("grid_search", "GridSearchCV 5x5, Pipeline"),
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
    lines = []
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


def machine_info():
    """CPU, platform and library versions (read without importing them)."""
    versions = {}
    for dist in (
        "numpy",
        "scipy",
        "scikit-learn",
        "tensorflow",
        "keras",
        "scikeras",
        "sk-keras-digits",
    ):
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


def format_rst(report):
    """The reStructuredText page fragment shown by the docs.

    Parameters
    ----------
    report : dict
        A run's report, as written to JSON (``meta``, ``results``,
        ``summary``).

    Returns
    -------
    text : str
    """
    meta = report["meta"]
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    load = meta.get("load_average") or {}
    mode = "quick smoke run" if meta.get("quick") else "full run"
    if meta.get("skip_peers"):
        mode += ", peers skipped"
    lines = [
        ".. This file is written by benchmarks/run.py; do not edit it by hand.",
        "",
        f"Measured on {meta['date']} ({mode}) with ``{meta['command']}``: "
        f"{machine['cpu_model'] or 'unknown CPU'}, {machine['cpus_usable']} usable "
        f"of {machine['cpu_count']} CPUs, Python {machine['python']}, {versions}.",
    ]
    if load:
        lines[-1] += (
            f" Load average (1 min) {load.get('start', 0):.2f} at the start, "
            f"{load.get('end', 0):.2f} at the end."
        )
    if meta.get("note"):
        lines += ["", meta["note"]]
    lines += [
        "",
        _rst_list_table(TARGETS_TITLE, target_table(report["summary"])),
        "",
        _rst_list_table(PEERS_TITLE, peers_table(report["results"])),
        "",
    ]
    lines += [f"* {rst_escape(line)}" for line in details(report)] + [""]
    return "\n".join(lines)


def write_json(report, path):
    """Write the report as indented JSON (atomically, through a .tmp file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_rst(report, path):
    """Write :func:`format_rst` of the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_rst(report))

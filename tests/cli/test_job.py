"""Tests for the ``sk-keras-digits`` command's job: tables, figures, report."""

import errno
import io
import os
import re
import sys
from html.parser import HTMLParser

import matplotlib.image
from matplotlib.figure import Figure

from sk_keras_digits._cli._figures import FIGURES
from sk_keras_digits._cli._main import main
from sk_keras_digits._cli._parser import QUICK
from sk_keras_digits._cli._report import REPORT_NAME


def test_module_quick_run_is_quiet(tmp_path, run_module):
    """A whole --quick run in a fresh process: tables on stdout, nothing on
    stderr (no TensorFlow start-up log, no warnings, no progress bar off a
    terminal)."""
    result = run_module("--quick", "--out", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Tutorial: 64-15-10 network" in result.stdout
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(FIGURES)


# ---------------------------------------------------------------- quick, in-process
class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])
        if tag == "table":
            self.tables += 1


def _row(out, name):
    match = re.search(rf"^{re.escape(name)}\s+(.*)$", out, re.MULTILINE)
    assert match, f"no row {name!r} in:\n{out}"
    return match.group(1).split()


def test_quick_run_prints_tables_and_writes_figures_and_report(capsys, tmp_path):
    out_dir = tmp_path / "report"
    status = main(["--quick", "--out", str(out_dir), "--no-progress"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ""  # --no-progress
    out = captured.out

    # Table 1: the tutorial fits, one row per model, accuracy then times.
    assert "Tutorial: 64-15-10 network on the first 1000 digits, tested on " in out
    assert "the other 797 (1 seed)" in out
    for name in ["KerasDigitClassifier", "MLPClassifier"]:
        cells = _row(out, name)
        accuracy, _, median, first = (
            float(cells[0]),
            cells[1],
            *map(float, cells[2:4]),
        )
        assert 0.85 <= accuracy <= 1.0
        assert 0 < median < 30 and 0 < first < 60

    # Table 2: the grid search, one row per hidden size.
    assert "Grid search over hidden_layer_sizes: 3-fold CV accuracy" in out
    for size in QUICK["hidden_sizes"]:
        cells = _row(out, str(size))
        keras_mean, _, keras_sd, mlp_mean, _, mlp_sd, keras_fit, mlp_fit = cells
        assert 0.5 < float(keras_mean) <= 1 and 0.5 < float(mlp_mean) <= 1
        assert 0 <= float(keras_sd) < 0.2 and 0 <= float(mlp_sd) < 0.2
        assert float(keras_fit) > 0 and float(mlp_fit) > 0

    # Table 3: the best size of each search and its test accuracy.
    assert "Best hidden size of each search" in out
    best = re.findall(r"^(KerasDigitClassifier|MLPClassifier)\s+(\d+)\s+", out, re.M)
    assert {size for _, size in best} <= {str(s) for s in QUICK["hidden_sizes"]}
    assert re.search(r"^Done in \d+\.\d s\.$", out, re.MULTILINE)

    # Figures: five PNGs, each an image with content.
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert pngs == sorted(FIGURES) and len(pngs) >= 4
    for name in pngs:
        image = matplotlib.image.imread(out_dir / name)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05
    assert f"Figures ({len(pngs)}):" in out

    # The report: every figure by relative path, the three tables, the numbers.
    report = out_dir / "report.html"
    assert f"Report: {report}" in out
    html = report.read_text(encoding="utf-8")
    parser = _Images()
    parser.feed(html)
    assert sorted(parser.sources) == sorted(FIGURES)
    assert parser.tables == 3
    assert str(tmp_path) not in html
    for cell in _row(out, "KerasDigitClassifier")[:1]:
        assert f"<td>{cell}</td>" in html
    assert "quick (--quick)" in html


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(monkeypatch, capsys, tmp_path):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status = main(
        ["--quick", "--seeds", "1", "--hidden-sizes", "5", "--out", str(tmp_path)]
    )
    assert status == 0
    bar = terminal.getvalue()
    # tqdm redraws the bar with carriage returns: stage names and step counts.
    assert "\r" in bar
    assert "tutorial: KerasDigitClassifier seed 0" in bar
    assert "grid search: MLPClassifier" in bar
    steps = 2 * 1 + 2 * (1 * QUICK["cv"] + 1) + len(FIGURES) + 1
    # The bar is redrawn at most every 0.1 s, so its last frame may be any
    # count; it must never run past the total (tqdm then drops the total).
    counts = [int(n) for n in re.findall(rf"(\d+)/{steps}\b", bar)]
    assert counts and max(counts) <= steps
    assert "step [" not in bar  # the format tqdm falls back to past the total
    assert "Tutorial: 64-15-10 network" in capsys.readouterr().out


def test_a_figure_failing_midway_keeps_the_earlier_output(
    monkeypatch, capsys, tmp_path
):
    """The disk fills up while the third figure is saved: the figures saved
    before it are replaced whole, the failed one and the rest of the earlier
    output are left as they were, no temporary file is left behind, and the
    error is one line naming the file."""
    names = [*FIGURES, REPORT_NAME]
    for name in names:
        (tmp_path / name).write_bytes(b"earlier, complete " + name.encode())
    calls = []
    savefig = Figure.savefig

    def fill_the_disk(fig, target, *args, **kwargs):
        calls.append(target)
        if len(calls) < 3:
            return savefig(fig, target, *args, **kwargs)
        data = b"\x89PNG\r\n\x1a\n truncated"
        if isinstance(target, (str, os.PathLike)):
            with open(target, "wb") as file:
                file.write(data)
        else:
            target.write(data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", fill_the_disk)
    status = main(
        ["--quick", "--seeds", "1", "--hidden-sizes", "5", "--cv", "2"]
        + ["--images", "4", "--no-progress", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert status == 1
    failed = tmp_path / list(FIGURES)[2]
    assert err == (
        f"sk-keras-digits: error: could not write {failed}: "
        f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}\n"
    )
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # no temporary left
    for name in names[:2]:  # saved before the disk filled up: new and whole
        assert matplotlib.image.imread(tmp_path / name).shape[0] > 100
    for name in names[2:]:
        assert (tmp_path / name).read_bytes() == b"earlier, complete " + name.encode()

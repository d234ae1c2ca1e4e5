"""Tests for the ``sk-keras-digits`` command."""

import io
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest

from sk_keras_digits import __version__
from sk_keras_digits._cli import FIGURES, FULL, QUICK, main, parse_args

OPTIONS = [
    "--out",
    "--quick",
    "--seeds",
    "--hidden-sizes",
    "--cv",
    "--images",
    "--no-progress",
    "--version",
    "--help",
]


def _run_module(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "sk_keras_digits", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ------------------------------------------------------------ options, in-process
def test_help_documents_every_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sk-keras-digits")
    for option in OPTIONS:
        assert option in out
    assert "default: ./sk-keras-digits-report" in out
    assert "Exit status: 0 on success, 2 for a bad option" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sk-keras-digits {__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--cv", "1"], "argument --cv: expected an integer >= 2, got 1"),
        (["--seeds", "two"], "argument --seeds: expected an integer >= 1, got 'two'"),
        (["--hidden-sizes", "5", "0"], "argument --hidden-sizes: expected an integer"),
        (["--images"], "argument --images: expected one argument"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sk-keras-digits")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file(capsys, tmp_path):
    path = tmp_path / "taken.txt"
    path.write_text("not a folder")
    assert main(["--quick", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--out '{path}' is an existing file; expected a folder" in err
    assert path.read_text() == "not a folder"


def test_out_below_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    assert main(["--out", str(tmp_path / "file" / "sub")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


def test_parse_args_quick_defaults_and_explicit_options(tmp_path):
    out = tmp_path / "a" / "b"
    settings = parse_args(["--quick", "--out", str(out)])
    assert out.is_dir()  # created, with its parents
    assert settings.out == out
    assert (settings.seeds, settings.cv, settings.images) == (
        QUICK["seeds"],
        QUICK["cv"],
        QUICK["images"],
    )
    assert settings.hidden_sizes == QUICK["hidden_sizes"]
    assert settings.progress and settings.quick

    settings = parse_args(
        ["--quick", "--out", str(out), "--seeds", "3", "--hidden-sizes", "9", "4", "9"]
    )
    assert settings.seeds == 3
    assert settings.hidden_sizes == (4, 9)  # sorted, duplicates dropped
    assert settings.cv == QUICK["cv"]

    settings = parse_args(["--out", str(out), "--no-progress"])
    assert settings.hidden_sizes == FULL["hidden_sizes"]
    assert (settings.seeds, settings.cv) == (FULL["seeds"], FULL["cv"])
    assert not settings.progress and not settings.quick


def test_default_out_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = parse_args([])
    assert settings.out == Path("sk-keras-digits-report")
    assert (tmp_path / "sk-keras-digits-report").is_dir()


# ----------------------------------------------------------------- subprocesses
def test_module_help_is_fast_and_does_not_import_tensorflow(tmp_path):
    result = _run_module("--help", timeout=60)
    assert result.returncode == 0
    assert "usage: sk-keras-digits" in result.stdout
    assert result.stderr == ""
    code = textwrap.dedent(
        f"""
        import sys
        from sk_keras_digits._cli import parse_args
        parse_args(["--quick", "--out", {str(tmp_path / "o")!r}])
        print(sorted(m for m in ("tensorflow", "keras", "matplotlib")
                     if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_module_bad_option_exit_code():
    result = _run_module("--quick", "--cv", "zero", timeout=60)
    assert result.returncode == 2
    assert "argument --cv: expected an integer >= 2, got 'zero'" in result.stderr
    assert result.stdout == ""


def test_module_quick_run_is_quiet(tmp_path):
    """A whole --quick run in a fresh process: tables on stdout, nothing on
    stderr (no TensorFlow start-up log, no warnings, no progress bar off a
    terminal)."""
    result = _run_module("--quick", "--out", str(tmp_path), timeout=300)
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


def test_quick_run_with_an_impossible_cv_fails_with_status_1(capsys, tmp_path):
    # More folds than the smallest class has members in the training digits.
    status = main(["--quick", "--cv", "500", "--out", str(tmp_path), "--no-progress"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("sk-keras-digits: error: ValueError: ")
    assert "n_splits=500" in err


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

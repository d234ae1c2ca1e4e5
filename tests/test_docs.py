"""The documentation builds without a warning, gallery included."""

import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
#: Build outputs that must not be copied from a previous local build.
BUILD_OUTPUTS = ("_build", "auto_examples", "gen_modules", "sg_execution_times.rst")


def test_docs_build_without_warnings(tmp_path):
    # Build a copy, so that the gallery's and autosummary's generated sources
    # are not written into the checkout.
    shutil.copytree(
        ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*BUILD_OUTPUTS)
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    html = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", "html", "docs", str(html)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "WARNING" not in result.stderr

    # The gallery ran: one page per example, each with its figures.
    assert len(EXAMPLES) >= 4
    for name in EXAMPLES:
        page = (html / "auto_examples" / f"{name}.html").read_text(encoding="utf-8")
        figures = sorted((html / "_images").glob(f"sphx_glr_{name}_0*.png"))
        assert figures, f"no figure from {name}"
        for figure in figures:
            assert figure.name in page
            image = matplotlib.image.imread(figure)
            assert image.shape[0] > 100 and image[..., :3].std() > 0.05
    tutorial = (html / "auto_examples" / "plot_1_tutorial.html").read_text(
        encoding="utf-8"
    )
    assert "KerasDigitClassifier test accuracy: 0.9" in tutorial
    assert "Iteration 3, loss = " in tutorial  # verbose output, captured

    # The user guide, the API reference and the pages that embed generated text.
    for page in [
        "getting_started",
        "parameters",
        "custom_networks",
        "labels",
        "persistence",
        "performance",
        "scaling",
        "command_line",
        "plotting",
        "developers",
        "api",
    ]:
        assert (html / f"{page}.html").is_file(), page
    for name in [
        "KerasDigitClassifier",
        "NetworkBuilder",
        "dask_backend",
        "save",
        "load",
        "plot_predictions",
        "plot_learning_curves",
        "plot_grid_search",
    ]:
        api_page = html / "gen_modules" / f"sk_keras_digits.{name}.html"
        assert f'id="sk_keras_digits.{name}"' in api_page.read_text(encoding="utf-8")
    command_line = (html / "command_line.html").read_text(encoding="utf-8")
    assert "usage: sk-keras-digits" in command_line
    assert "--hidden-sizes" in command_line
    performance = (html / "performance.html").read_text(encoding="utf-8")
    assert "benchmarks/run.py" in performance

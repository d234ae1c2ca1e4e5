"""Tests for the command line's report: text tables, HTML tables, report.html."""

import errno
import os
from html.parser import HTMLParser

import pytest
from matplotlib.figure import Figure

from sk_keras_digits._cli._report import REPORT_NAME, Table, write_report


def _table():
    return Table(
        title="Scores",
        header=["model", "accuracy"],
        rows=[["Keras", "0.920"], ["MLPClassifier", "0.9"]],
        notes=["Mean over 5 seeds."],
    )


def test_table_to_text_aligns_columns():
    text = _table().to_text()
    lines = text.splitlines()
    assert lines[0] == "Scores"
    assert lines[2] == "model          accuracy"
    # First column left-aligned, the others right-aligned.
    assert lines[4] == "Keras             0.920"
    assert lines[5] == "MLPClassifier       0.9"
    assert lines[1] == lines[3] == lines[6] == "-------------  --------"
    assert lines[-1] == "Mean over 5 seeds."


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="Row 1 of table 'T' has 1 cells; expected 2"):
        Table(title="T", header=["a", "b"], rows=[["1", "2"], ["3"]])


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_table_to_html_escapes_cells():
    table = Table(title="a < b", header=["x"], rows=[["<script>"]])
    html = table.to_html()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    parser = _Collector()
    parser.feed(html)
    assert [t for t, _ in parser.tags].count("td") == 1
    assert "a < b" in parser.text


def test_write_report_links_figures_relatively(tmp_path):
    for name in ["one.png", "two.png"]:
        Figure(figsize=(1, 1)).savefig(tmp_path / name)
    path = write_report(
        tmp_path,
        title="Run & results",
        tables=[_table(), Table(title="Second", header=["k"], rows=[["v"]])],
        figures=[("one.png", "First figure"), ("two.png", "Second figure")],
        details=[("Seeds", 5)],
    )
    assert path == tmp_path / REPORT_NAME
    parser = _Collector()
    parser.feed(path.read_text(encoding="utf-8"))
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert [img["src"] for img in images] == ["one.png", "two.png"]
    assert [img["alt"] for img in images] == ["First figure", "Second figure"]
    assert [t for t, _ in parser.tags].count("table") == 2
    text = "".join(parser.text)
    assert "Run & results" in text
    assert "MLPClassifier" in text
    assert "Mean over 5 seeds." in text
    assert "Seeds" in text


def test_write_report_missing_figure(tmp_path):
    with pytest.raises(FileNotFoundError, match="figure 'gone.png', which is not"):
        write_report(tmp_path, title="t", tables=[], figures=[("gone.png", "c")])
    assert not (tmp_path / REPORT_NAME).exists()


def test_write_report_that_fails_keeps_the_earlier_report(tmp_path, monkeypatch):
    """A full disk, reported as the report is flushed: the earlier report is
    left whole, nothing else is left behind, and the error names the file."""
    Figure(figsize=(1, 1)).savefig(tmp_path / "one.png")
    report = tmp_path / REPORT_NAME
    report.write_text("<p>earlier, complete</p>", encoding="utf-8")

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        write_report(tmp_path, title="t", tables=[_table()], figures=[("one.png", "c")])
    assert str(info.value) == (
        f"could not write {report}: [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}"
    )
    assert report.read_text(encoding="utf-8") == "<p>earlier, complete</p>"
    assert sorted(os.listdir(tmp_path)) == ["one.png", REPORT_NAME]

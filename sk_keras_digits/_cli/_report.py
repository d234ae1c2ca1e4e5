"""The command line's report: tables as text for the terminal, and as HTML.

:class:`Table` holds one table of results and renders it as aligned plain text
(printed by ``sk-keras-digits``) or as an HTML table; :func:`write_report`
writes ``report.html``, which shows the tables and the figures saved next to
it (referenced by relative paths, so the folder can be moved or zipped),
whole or not at all (:func:`._files.write_text`).
"""

import html
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ._files import write_text

REPORT_NAME = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
caption { caption-side: top; text-align: left; font-weight: 600;
          padding-bottom: 0.3rem; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; margin-top: 0.3rem; }
.note { color: #555; }
"""


@dataclass
class Table:
    """A table of results with a title, a header and rows of cells.

    ``sk-keras-digits`` prints its results as these tables, and writes them
    into its HTML report; scripts can show their own results the same way.

    Parameters
    ----------
    title : str
        What the table shows; printed above it.
    header : list of str
        Column names.
    rows : list of list of str
        Cells, already formatted, one list per row (as long as ``header``).
    notes : list of str, default=[]
        Sentences printed under the table.

    See Also
    --------
    sk_keras_digits.tutorial.grid_search : The tutorial's grid search, whose
        results the command line shows in a table.

    Examples
    --------
    >>> from sk_keras_digits.tutorial import Table
    >>> table = Table("Test accuracy", ["model", "accuracy"], [["ours", "0.92"]])
    >>> print(table.to_text())
    Test accuracy
    -----  --------
    model  accuracy
    -----  --------
    ours       0.92
    -----  --------
    """

    title: str
    header: list
    rows: list
    notes: list = field(default_factory=list)

    def __post_init__(self):
        for i, row in enumerate(self.rows):
            if len(row) != len(self.header):
                raise ValueError(
                    f"Row {i} of table {self.title!r} has {len(row)} cells; "
                    f"expected {len(self.header)} (one per column of the header)."
                )

    def to_text(self):
        """The table as aligned plain text, title and notes included.

        Returns
        -------
        text : str
            The title, the header and rows in aligned columns between rules,
            then the notes wrapped to 88 characters.
        """
        cells = [list(map(str, self.header))] + [list(map(str, r)) for r in self.rows]
        widths = [max(len(row[j]) for row in cells) for j in range(len(self.header))]

        def line(row):
            first = row[0].ljust(widths[0])
            rest = [
                cell.rjust(width)
                for cell, width in zip(row[1:], widths[1:], strict=True)
            ]
            return "  ".join([first, *rest]).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [self.title, rule, line(cells[0]), rule]
        lines += [line(row) for row in cells[1:]]
        lines.append(rule)
        width = max(len(rule), 88)
        lines += [textwrap.fill(note, width=width) for note in self.notes]
        return "\n".join(lines)

    def to_html(self):
        """The table as an HTML ``<table>`` with a caption, notes after it.

        Returns
        -------
        html : str
            A ``<table>`` whose caption is the title, followed by one
            ``<p class="note">`` per note; every cell is HTML-escaped.
        """
        esc = html.escape
        head = "".join(f"<th>{esc(str(h))}</th>" for h in self.header)
        body = "\n".join(
            "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        notes = "".join(f'<p class="note">{esc(n)}</p>' for n in self.notes)
        return (
            f"<table>\n<caption>{esc(self.title)}</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
            f"{notes}"
        )


def write_report(out_dir, *, title, tables, figures, details=()):
    """Write ``report.html`` into ``out_dir``, showing tables and figures.

    Parameters
    ----------
    out_dir : str or Path
        The folder holding the figures; the report is written there.
    title : str
        Title of the page.
    tables : list of Table
        Tables, in order.
    figures : list of (str, str)
        ``(file name, caption)`` of each figure, the file in ``out_dir``.
    details : list of (str, str), default=()
        ``(name, value)`` facts about the run (settings, versions, timing).

    Returns
    -------
    path : Path
        The report written.

    Raises
    ------
    OutputError
        If the report cannot be written (an earlier one is left as it was).
    """
    out_dir = Path(out_dir)
    esc = html.escape
    for name, _ in figures:
        if not (out_dir / name).is_file():
            raise FileNotFoundError(
                f"The report references figure {name!r}, which is not in {out_dir}."
            )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if details:
        parts.append("<dl>")
        for name, value in details:
            parts.append(f"<dt>{esc(name)}</dt><dd>{esc(str(value))}</dd>")
        parts.append("</dl>")
    parts.append("<h2>Results</h2>")
    parts += [table.to_html() for table in tables]
    parts.append("<h2>Figures</h2>")
    for name, caption in figures:
        src = esc(Path(name).as_posix(), quote=True)
        parts.append(
            f'<figure><img src="{src}" alt="{esc(caption, quote=True)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    parts += ["</body>", "</html>", ""]
    return write_text(out_dir / REPORT_NAME, "\n".join(parts))

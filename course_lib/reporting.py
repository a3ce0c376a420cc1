"""Reporting: a notebook's recorded metrics, and the plain-text / Markdown tables the course prints.

A notebook calls :func:`record_metrics` in its results cell. The metrics are shown as a table and
attached to the cell's output under the MIME type :data:`METRICS_MIME`, so they travel inside the
executed notebook (``build/dayNN_*.ipynb``); ``course run`` reads them back with
:func:`extract_metrics` and writes ``build/metrics.json``.

:func:`render_table` is the one table renderer of the package (metrics, probe results, the leaderboard,
``course run``'s summary); :func:`strip_ansi` removes terminal colour codes from tracebacks.
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real

METRICS_MIME = "application/vnd.course.metrics+json"
_DAY = re.compile(r"^day\d{2}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI terminal escape sequences (the colours of IPython tracebacks)."""
    return _ANSI.sub("", text)


def render_table(header, rows, markdown: bool = False, align: str | None = None, rule: bool = True) -> str:
    """Render rows of cells as an aligned plain-text table or a Markdown table.

    Args:
        header: the column titles, a sequence of ``n`` strings.
        rows: sequences of ``n`` cells each (converted with ``str``).
        markdown: a Markdown pipe table instead of aligned text.
        align: one character per column, ``"l"`` or ``"r"`` (default: the first column left, the others
            right, as for a name followed by numbers).
        rule: in plain text, a line of dashes under the header.

    Returns:
        The table, lines joined by newlines, no trailing newline.

    Raises:
        ValueError: a row whose length differs from the header's, or an ``align`` of the wrong length.
    """
    header = [str(cell) for cell in header]
    rows = [[str(cell) for cell in row] for row in rows]
    n = len(header)
    align = align or "l" + "r" * (n - 1)
    if len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align must have one 'l' or 'r' per column ({n}), got {align!r}")
    for row in rows:
        if len(row) != n:
            raise ValueError(f"row {row!r} has {len(row)} cells, the header has {n}")
    if markdown:
        marks = "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"
        return "\n".join(["| " + " | ".join(header) + " |", marks] + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(n)]
    lines = ["  ".join(cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)).rstrip()
             for row in [header, *rows]]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def record_metrics(day: str, metrics: dict, display: bool = True) -> dict[str, float]:
    """Validate, display and attach a day's metrics to the current cell's output.

    Args:
        day: ``"day01"`` ... ``"day10"``.
        metrics: mapping of metric name (letters, digits, ``_ . -``) to a finite real number
            (floats rounded to 6 significant digits; ints kept as ints).
        display: show the table (with the machine-readable MIME bundle) in the notebook.

    Returns:
        The validated metrics (a new dict).

    Raises:
        ValueError: a bad day name, metric name, or a value that is not a finite number.
    """
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise ValueError(f"day must look like 'day01', got {day!r}")
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"metric name {name!r} must start with a letter and use letters, digits, '_', '.', '-'")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise ValueError(f"metric {name!r} must be a finite number, got {value!r}")
        clean[name] = int(value) if isinstance(value, Integral) else float(f"{float(value):.6g}")
    if display:
        _display(day, clean)
    return clean


def format_metrics(metrics: dict) -> str:
    """Plain-text two-column table of metric names and values."""
    if not metrics:
        return "(no metrics)"
    rows = [(name, f"{value:g}" if isinstance(value, float) else str(value)) for name, value in metrics.items()]
    return render_table(("metric", "value"), rows, align="ll", rule=False).split("\n", 1)[1]


def _display(day: str, metrics: dict) -> None:
    text = f"{day} metrics\n{format_metrics(metrics)}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({METRICS_MIME: {"day": day, "metrics": metrics}, "text/plain": text}, raw=True)
            return
    except ImportError:  # plain Python without IPython
        pass
    print(text)


def extract_metrics(notebook) -> dict[str, dict]:
    """Collect every :func:`record_metrics` output of an executed notebook.

    Args:
        notebook: an ``nbformat`` notebook node (or a dict of the same shape).

    Returns:
        ``{day: {name: value}}``; several calls for the same day are merged in cell order.
    """
    found: dict[str, dict] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(METRICS_MIME)
            if isinstance(payload, dict) and isinstance(payload.get("metrics"), dict):
                found.setdefault(str(payload.get("day")), {}).update(payload["metrics"])
    return found


def show_source(obj) -> str:
    """Show the source code of a course_lib function, method or class in the notebook, highlighted.

    The notebooks show the training steps they teach (``compute_loss`` / ``train_step``) this way, from the
    one copy in course_lib, instead of pasting a second copy that could drift from the code that runs.

    Args:
        obj: a function, method or class (``contrastive.SimCLR.compute_loss``).

    Returns:
        The source text (dedented).

    Raises:
        TypeError: ``obj`` has no Python source (a builtin or a C extension).
    """
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as error:
        raise TypeError(f"no Python source for {obj!r}: {error}") from None
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(source, language="python"))
            return source
    except ImportError:
        pass
    print(source)
    return source

"""Generating student lessons from solution notebooks (nbgrader-style markers).

``solutions/`` is the only source. :func:`make_lesson` turns a solution notebook into a lesson:

- in code cells, each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the marker's indentation;
- in markdown cells, such a region becomes ``YOUR ANSWER HERE``;
- regions between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed;
- outputs and execution counts are cleared.

These are the markers and replacement texts nbgrader's ``ClearSolutions`` and
``ClearHiddenTests`` preprocessors use, so instructors who know nbgrader know the format.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
DAY_PATTERN = re.compile(r"^day(\d{2})_[a-z0-9_]+\.ipynb$")


class MarkerError(ValueError):
    """Unbalanced or nested solution / hidden-test markers in a solution notebook."""


@dataclass(frozen=True)
class Region:
    """A marked region of a cell's source (line indices, inclusive of both marker lines)."""

    kind: str  # "solution" or "hidden"
    start: int
    end: int
    indent: str


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def day_key(text) -> str:
    """Normalise a day given as ``2``, ``"02"``, ``"day02"`` or a notebook name to ``"day02"``.

    Raises:
        ValueError: ``text`` names no day (e.g. ``"x"``, ``"day"``), with the accepted forms.
    """
    name = Path(str(text).strip()).name.lower().removesuffix(".ipynb")
    match = re.match(r"^day(\d{1,2})(?:_|$)", name)
    digits = match.group(1) if match else name
    if not digits.isdigit() or not 0 <= int(digits) <= 99:
        raise ValueError(f"not a day: {text!r} (expected e.g. 2, 02, day02 or day02_topic.ipynb)")
    return f"day{int(digits):02d}"


def find_regions(source: str, where: str = "cell") -> list[Region]:
    """Find the marked regions of one cell's source.

    Raises:
        MarkerError: a region that is opened twice, closed without being opened, or never closed.
    """
    regions, open_kind, open_line, indent = [], None, 0, ""
    for number, line in enumerate(source.split("\n")):
        stripped = line.strip()
        for kind, begin, end in (("solution", BEGIN_SOLUTION, END_SOLUTION), ("hidden", BEGIN_HIDDEN, END_HIDDEN)):
            if stripped == begin:
                if open_kind is not None:
                    raise MarkerError(f"{where}, line {number + 1}: {begin!r} inside an open {open_kind} region")
                open_kind, open_line, indent = kind, number, line[: len(line) - len(line.lstrip())]
            elif stripped == end:
                if open_kind != kind:
                    raise MarkerError(f"{where}, line {number + 1}: {end!r} without a matching {begin!r}")
                regions.append(Region(kind, open_line, number, indent))
                open_kind = None
    if open_kind is not None:
        raise MarkerError(f"{where}, line {open_line + 1}: {open_kind} region is never closed")
    return regions


def _replace_regions(source: str, regions: list[Region], cell_type: str) -> str:
    lines = source.split("\n")
    for region in reversed(regions):
        if region.kind == "hidden":
            replacement = []
        elif cell_type == "code":
            replacement = [region.indent + stub for stub in CODE_STUB]
        else:
            replacement = [TEXT_STUB]
        lines[region.start: region.end + 1] = replacement
    return "\n".join(lines)


def make_lesson(solution, name: str = "notebook"):
    """Return the lesson made from a solution notebook (the input is not modified).

    Args:
        solution: an ``nbformat`` notebook node (version 4).
        name: used in error messages.

    Raises:
        MarkerError: unbalanced markers (the message names the notebook, cell and line).
    """
    lesson = copy.deepcopy(solution)
    for index, cell in enumerate(lesson.cells):
        source = cell_source(cell)
        regions = find_regions(source, where=f"{name}, cell {index}")
        if regions:
            cell.source = _replace_regions(source, regions, cell.cell_type)
        else:
            cell.source = source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return lesson


def strip_outputs(nb):
    """Clear outputs and execution counts of every code cell, in place; returns ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def dumps(nb) -> str:
    """Serialise a notebook deterministically (nbformat, indent 1, trailing newline)."""
    import nbformat

    return nbformat.writes(nb, version=4) + "\n"


def read(path: str | Path):
    """Read a notebook file as nbformat version 4."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def solution_notebooks(solutions: Path) -> list[Path]:
    """The day notebooks in ``solutions`` (``dayNN_topic.ipynb``), sorted by day."""
    return sorted(p for p in Path(solutions).glob("day*.ipynb") if DAY_PATTERN.match(p.name))


def generate_lessons(solutions: Path, lessons: Path, check: bool = False) -> list[Path]:
    """Write (or with ``check=True`` only compare) the lesson of every solution notebook.

    Lessons whose solution no longer exists are deleted (reported as changed in check mode).

    Args:
        solutions: folder of solution notebooks.
        lessons: folder of lessons to write.
        check: do not write; just report which lessons differ from what would be generated.

    Returns:
        The lesson paths that were (or, with ``check``, would be) created, changed or deleted.

    Raises:
        MarkerError: a solution with unbalanced markers.
    """
    lessons = Path(lessons)
    changed, expected = [], set()
    for solution_path in solution_notebooks(solutions):
        target = lessons / solution_path.name
        expected.add(target.name)
        text = dumps(make_lesson(read(solution_path), name=solution_path.name))
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            changed.append(target)
            if not check:
                lessons.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    for stale in sorted(lessons.glob("day*.ipynb")) if lessons.exists() else []:
        if stale.name not in expected:
            changed.append(stale)
            if not check:
                stale.unlink()
    return changed


def solved_lesson(solution, name: str = "notebook"):
    """The lesson of ``solution`` with the solutions pasted back in: what a student who solved everything hands in.

    Hidden-test regions are removed (as in :func:`make_lesson`), solution regions keep their code without
    the marker lines, outputs and execution counts are cleared. The input is not modified.

    Raises:
        MarkerError: unbalanced markers.
    """
    solved = copy.deepcopy(solution)
    for index, cell in enumerate(solved.cells):
        source = cell_source(cell)
        regions = find_regions(source, where=f"{name}, cell {index}")
        lines = source.split("\n")
        for region in reversed(regions):
            body = [] if region.kind == "hidden" else lines[region.start + 1: region.end]
            lines[region.start: region.end + 1] = body
        cell.source = "\n".join(lines)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return solved


def solution_lines(solution, min_length: int = 16) -> set[str]:
    """The distinct lines inside the solution regions of a solution notebook, stripped of indentation.

    Lines shorter than ``min_length`` characters (``return z``, ``else:``, a lone bracket) are left out:
    they identify nothing. Used to prove that a lesson, its outputs and its hints never show a solution.

    Args:
        solution: an ``nbformat`` notebook node (version 4).
        min_length: the shortest stripped line kept, in characters.

    Returns:
        The set of stripped solution lines.

    Raises:
        MarkerError: a cell with unbalanced or nested markers.
    """
    found = set()
    for cell in solution.cells:
        source = cell_source(cell)
        lines = source.split("\n")
        for region in find_regions(source):
            if region.kind == "solution":
                found.update(line.strip() for line in lines[region.start + 1: region.end]
                             if len(line.strip()) >= min_length)
    return found

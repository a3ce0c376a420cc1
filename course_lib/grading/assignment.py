"""A day's trusted material: the solution notebook, the lesson made from it, and its exercises."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


class GradingError(Exception):
    """A problem with the grading setup itself (not with a submission): unknown day, bad options, an
    output folder that holds another day's gradebook, a sandbox that cannot start."""


@dataclass(frozen=True)
class Exercise:
    """One autograded check cell of the solution.

    Attributes:
        grade_id: the check cell's nbgrader ``grade_id`` (the gradebook's ``exercise`` column).
        points: nbgrader ``points`` of that cell.
        cell_index: its index in the solution (and lesson) notebook.
        title: a short human title (the markdown heading before it, else the grade_id).
        solution_ids: grade_ids of the solution cells between the previous check cell and this one.
    """

    grade_id: str
    points: float
    cell_index: int
    title: str
    solution_ids: tuple[str, ...]


@dataclass
class Assignment:
    """A day's trusted material.

    Attributes:
        day: ``"day02"``.
        name: the solution notebook's stem, e.g. ``"day02_clustering"``.
        solution_path: the solution notebook.
        solution: the solution notebook (nbformat v4).
        lesson: the lesson generated from it (no solutions, no hidden tests).
        exercises: the autograded check cells, in notebook order.
        solution_cells: answer-cell grade_id -> cell index (code cells only).
        manual_cells: grade_id -> points of cells graded by hand (not in the gradebook's points).
        sha256: hash of the solution file; results recorded for another version are not reused.
    """

    day: str
    name: str
    solution_path: Path
    solution: object
    lesson: object
    exercises: list[Exercise]
    solution_cells: dict[str, int]
    manual_cells: dict[str, float]
    sha256: str

    @property
    def max_points(self) -> float:
        """The sum of the autograded exercises' points (hand-graded ``manual_cells`` not included)."""
        return float(sum(e.points for e in self.exercises))


def nbgrader_meta(cell) -> dict:
    """A cell's ``metadata.nbgrader`` dict (empty when absent or malformed)."""
    meta = cell.get("metadata", {}) or {}
    data = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return data if isinstance(data, dict) else {}


def load_assignment(day, solutions_dir: str | os.PathLike | None = None) -> Assignment:
    """Load ``dayNN``'s solution notebook and derive its lesson and exercise list.

    Args:
        day: ``"day02"``, ``"02"`` or ``2``.
        solutions_dir: folder of solution notebooks (default: the course's ``solutions/``).

    Raises:
        GradingError: not a day, no solution notebook for that day, duplicate grade_ids, or a
            check cell without points.
    """
    from course_lib import lessons, paths

    try:
        key = lessons.day_key(day)
    except ValueError as error:
        raise GradingError(str(error)) from None
    folder = Path(solutions_dir) if solutions_dir else paths.solutions_dir()
    found = [p for p in lessons.solution_notebooks(folder) if p.name.startswith(key + "_")]
    if not found:
        known = ", ".join(p.name[3:5] for p in lessons.solution_notebooks(folder)) or "none"
        raise GradingError(f"no solution notebook for {key} in {folder} (available days: {known})")
    path = found[0]
    raw = path.read_bytes()
    solution = lessons.read(path)
    lesson = lessons.make_lesson(solution, name=path.name)
    exercises, solution_cells, manual, seen = [], {}, {}, set()
    pending: list[str] = []
    heading = ""
    for index, cell in enumerate(solution.cells):
        meta = nbgrader_meta(cell)
        if cell.cell_type == "markdown":
            for line in lessons.cell_source(cell).splitlines():
                if line.lstrip().startswith("#"):
                    heading = line.lstrip("# ").strip()
            if meta.get("grade_id") and meta.get("solution") and meta.get("grade"):
                manual[meta["grade_id"]] = float(meta.get("points", 0) or 0)
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        if grade_id in seen:
            raise GradingError(f"{path.name}: grade_id {grade_id!r} is used by two cells")
        seen.add(grade_id)
        if meta.get("solution") and meta.get("grade"):
            manual[grade_id] = float(meta.get("points", 0) or 0)
        elif meta.get("solution") and cell.cell_type == "code":
            solution_cells[grade_id] = index
            pending.append(grade_id)
        elif meta.get("grade"):
            if "points" not in meta:
                raise GradingError(f"{path.name}: check cell {grade_id!r} has no points")
            exercises.append(Exercise(grade_id, float(meta["points"]), index, heading or grade_id, tuple(pending)))
            pending = []
    if not exercises:
        raise GradingError(f"{path.name} has no autograded check cells (nbgrader grade: true with points)")
    return Assignment(key, path.stem, path, solution, lesson, exercises, solution_cells, manual,
                      hashlib.sha256(raw).hexdigest())

"""Consistency of the committed notebooks: lessons generated from solutions, no outputs, conventions.

nbval executes the solution notebooks themselves (see pyproject.toml); these tests check what a
student and an instructor rely on without executing anything.
"""

import json
import re

import nbformat
import pytest

from course_lib import paths
from course_lib.lessons import (BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, cell_source, find_regions,
                                generate_lessons, solution_notebooks)

ROOT = paths.project_root()
SOLUTIONS = solution_notebooks(ROOT / "solutions")
LESSONS = sorted((ROOT / "lessons").glob("day*.ipynb"))
ALL = SOLUTIONS + LESSONS


def test_there_are_solution_notebooks():
    assert len(SOLUTIONS) >= 3
    assert [p.name[:5] for p in SOLUTIONS] == sorted({p.name[:5] for p in SOLUTIONS}), "one notebook per day"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(nb))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {index} has outputs"
            assert cell.get("execution_count") is None, f"cell {index} has an execution count"


def test_lessons_are_exactly_what_the_generator_makes():
    stale = generate_lessons(ROOT / "solutions", ROOT / "lessons", check=True)
    assert stale == [], f"run `course lessons`: out of date: {[p.name for p in stale]}"
    assert [p.name for p in LESSONS] == [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("solution_path", SOLUTIONS, ids=lambda p: p.name)
def test_lesson_has_no_solution_code_and_every_exercise_raises(solution_path):
    solution = nbformat.read(str(solution_path), as_version=4)
    lesson = nbformat.read(str(ROOT / "lessons" / solution_path.name), as_version=4)
    assert len(lesson.cells) == len(solution.cells)
    n_regions = 0
    for index, (s_cell, l_cell) in enumerate(zip(solution.cells, lesson.cells)):
        lesson_text = cell_source(l_cell)
        for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
            assert marker not in lesson_text, f"lesson cell {index} still contains {marker!r}"
        regions = [r for r in find_regions(cell_source(s_cell)) if r.kind == "solution"]
        if regions and s_cell.cell_type == "code":
            n_regions += len(regions)
            assert lesson_text.count("raise NotImplementedError()") == len(regions), f"cell {index}"
            solution_lines = cell_source(s_cell).split("\n")
            for region in regions:  # no line of the solution body survives in the lesson
                for line in solution_lines[region.start + 1: region.end]:
                    if line.strip() and not line.strip().startswith("#"):
                        assert line not in lesson_text.split("\n"), f"cell {index} leaks {line.strip()!r}"
    assert n_regions >= 2, "every day has at least two exercises"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_follows_the_notebook_conventions(path):
    nb = nbformat.read(str(path), as_version=4)
    day = path.name[:5]
    code = [c for c in nb.cells if c.cell_type == "code"]
    markdown = "\n".join(cell_source(c) for c in nb.cells if c.cell_type == "markdown")
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for name in ("MODE", "DATASET", "SEED"):
        assert re.search(rf"^{name}\s*=", cell_source(params[0]), re.M), f"parameters cell must set {name}"
    everything = "\n".join(cell_source(c) for c in code)
    assert "course_lib.setup(" in everything
    assert f'record_metrics("{day}"' in everything, "the notebook records its metrics"
    assert f'assert_all_passed("{day}")' in everything, "the notebook asserts its self-checks"
    assert "assert " in cell_source(code[-1]) or "assert " in cell_source(code[-2]), "ends with quality-floor assertions"
    assert "## References" in markdown
    assert "common mistakes" in markdown.lower()
    assert "$" in markdown, "concepts come with their maths"

    grade_ids, points = set(), 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        assert meta["grade_id"] not in grade_ids, f"duplicate grade_id {meta['grade_id']}"
        grade_ids.add(meta["grade_id"])
        if meta.get("grade") and meta.get("solution") and cell.cell_type == "markdown":
            # a written answer (graded by hand): the student writes in it, the model answer is its solution
            assert meta.get("points", 0) > 0 and meta.get("locked") is False
            points += meta["points"]
        elif meta.get("grade"):
            assert meta.get("points", 0) > 0 and meta.get("locked") is True
            assert BEGIN_HIDDEN in cell_source(cell), f"{meta['grade_id']} has no hidden tests"
            points += meta["points"]
        if meta.get("solution"):
            assert BEGIN_SOLUTION in cell_source(cell), f"{meta['grade_id']} is a solution cell without markers"
    code_meta = [c.metadata.get("nbgrader", {}) for c in nb.cells if c.cell_type == "code"]
    n_exercises = sum(1 for meta in code_meta if meta.get("solution"))  # written answers are not counted
    n_graded = sum(1 for meta in code_meta if meta.get("grade"))
    assert 2 <= n_exercises <= 4 and n_graded == n_exercises, "2-4 exercises, each with a graded check cell"
    assert points > 0

"""Fixtures of the grading tests: Day-02 submissions made from the lesson and the solution's answers,
a tiny made-up day, and whether the bubblewrap sandbox can run here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

SKIP_NO_SANDBOX = ("bubblewrap (bwrap) is not installed here; the sandbox tests need it "
                   "(CI installs it: apt-get install bubblewrap)")


@pytest.fixture(scope="session")
def day02():
    """Day 02's ids and material: ``solution`` (path), ``answers`` (grade_id -> solution source of each
    answer cell), ``lesson()`` (a fresh copy of the lesson), the answer ids ``KPP, LLOYD, ACC`` and the
    exercise ids ``EX1, EX2, EX3`` (2 points each)."""
    from course_lib import lessons, paths

    root = paths.project_root()
    solution = root / "solutions" / "day02_clustering.ipynb"
    nb = lessons.read(solution)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("solution")}

    def lesson():
        path = root / "lessons" / solution.name
        return lessons.read(path) if path.exists() else lessons.make_lesson(lessons.read(solution), name=solution.name)

    return SimpleNamespace(root=root, solution=solution, answers=answers, lesson=lesson,
                           KPP="day02_kmeans_pp", LLOYD="day02_lloyd", ACC="day02_acc",
                           EX1="day02_kmeans_pp_test", EX2="day02_lloyd_test", EX3="day02_acc_test")


@pytest.fixture(scope="session")
def make_submission(day02):
    """``make_submission(answers, edit=None)``: the Day-02 lesson with the given answer cells filled in
    (grade_id -> source; the others keep the stub), then ``edit(nb)`` applied."""
    def make(answers, edit=None):
        nb = day02.lesson()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        if edit:
            edit(nb)
        return nb

    return make


@pytest.fixture(scope="session")
def write():
    """``write(path, notebook_or_bytes)``: write a submission file (parent folders created); returns ``path``."""
    from course_lib import lessons

    def write_file(path: Path, nb_or_bytes):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb_or_bytes, bytes):
            path.write_bytes(nb_or_bytes)
        else:
            path.write_text(lessons.dumps(nb_or_bytes), encoding="utf-8")
        return path

    return write_file


@pytest.fixture(scope="session")
def tiny_day(write):
    """``tiny_day(folder, before="import time")``: write ``folder/day99_tiny.ipynb``, a solution whose first
    cell is ``before`` and with two exercises (``double``: 3 points, ``one``: 1 point); returns its path."""
    from nbformat.v4 import new_code_cell, new_notebook

    def cell(source, **nbgrader):
        return new_code_cell(source, metadata={"nbgrader": {"schema_version": 3, **nbgrader}} if nbgrader else {})

    def make(folder: Path, before: str = "import time") -> Path:
        nb = new_notebook(cells=[
            cell(before),
            cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                 grade=False, grade_id="day99_double", solution=True, locked=False),
            cell("assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(-1) == -2\n### END HIDDEN TESTS",
                 grade=True, grade_id="day99_double_test", points=3, solution=False, locked=True),
            cell("def one():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                 grade=False, grade_id="day99_one", solution=True, locked=False),
            cell("assert one() == 1", grade=True, grade_id="day99_one_test", points=1, solution=False, locked=True),
        ])
        return write(Path(folder) / "day99_tiny.ipynb", nb)

    return make


@pytest.fixture(scope="session")
def tiny_submission():
    """``tiny_submission(solution, double=None, one=None)``: the tiny day's lesson with those answer cells."""
    from course_lib import lessons

    def make(solution: Path, double: str | None = None, one: str | None = None):
        nb = lessons.make_lesson(lessons.read(solution))
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id == "day99_double" and double is not None:
                cell.source = double
            elif grade_id == "day99_one" and one is not None:
                cell.source = one
        return nb

    return make


@pytest.fixture(scope="session")
def sandbox_works():
    """Whether ``course grade`` can use its sandbox here: False where bubblewrap is not installed (the tests
    that need it skip); where it is installed it must work, so a sandbox that cannot start fails the tests."""
    from course_lib.grading import sandbox

    if sandbox.find_bwrap() is None:
        print(f"sandbox unavailable: {sandbox.missing_message()}")
        return False
    sandbox.create(64, [])   # raises SandboxError, saying why, when bwrap is there but cannot run
    return True


@pytest.fixture
def needs_sandbox(sandbox_works):
    """Skip (saying why) where bubblewrap is not installed; CI installs it, so these tests run there."""
    if not sandbox_works:
        pytest.skip(SKIP_NO_SANDBOX)

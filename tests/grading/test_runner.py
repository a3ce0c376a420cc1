"""Running one submission (course_lib.grading.runner) on a tiny made-up day: the grader is generic."""

import csv
import os

import pytest

from course_lib.grading.assignment import load_assignment
from course_lib.grading.batch import grade_batch
from course_lib.grading.gradebook import Gradebook
from course_lib.grading.options import GradeOptions

pytestmark = pytest.mark.slow
# A per-notebook limit that the first answer beats and the second (a long sleep) does not; longer on a busy
# machine (GRADING_TEST_CELL_TIMEOUT, see test_batch.py).
NOTEBOOK_TIMEOUT = max(12, int(os.environ.get("GRADING_TEST_CELL_TIMEOUT", "0")) // 4)


def test_generic_day_and_per_notebook_timeout(tmp_path, tiny_day, tiny_submission, write, sandbox_works):
    solution = tiny_day(tmp_path / "solutions")
    write(tmp_path / "subs" / "zoe" / "day99_tiny.ipynb",
          tiny_submission(solution, "def double(x):\n    return x + x", "def one():\n    return 1\n\ntime.sleep(3600)"))
    write(tmp_path / "subs" / "yan" / "day99_tiny.ipynb", tiny_submission(solution))
    options = GradeOptions(cell_timeout=3600, notebook_timeout=NOTEBOOK_TIMEOUT, sandbox=sandbox_works)
    grade_batch([tmp_path / "subs"], 99, tmp_path / "out", options, solutions_dir=tmp_path / "solutions",
                log=lambda line: None)
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(handle)}
    assert rows["zoe", "day99_double_test"]["points"] == "3"
    late = rows["zoe", "day99_one_test"]
    assert (late["points"], late["max_points"], late["status"]) == ("0", "1", "timeout")
    assert late["reason"].startswith(f"the notebook ran longer than {NOTEBOOK_TIMEOUT} s")
    assert rows["yan", "day99_double_test"]["status"] == "not attempted" and rows["yan", "day99_one_test"]["total"] == "0"


def test_failing_instructor_cell_is_a_grader_error_not_a_grade(tmp_path, tiny_day, tiny_submission, write,
                                                               sandbox_works):
    solution = tiny_day(tmp_path / "solutions", before="import time\nraise RuntimeError('broken environment')")
    write(tmp_path / "subs" / "zoe.ipynb", tiny_submission(solution))
    summary = grade_batch([tmp_path / "subs"], 99, tmp_path / "out", GradeOptions(cell_timeout=60, sandbox=sandbox_works),
                          solutions_dir=tmp_path / "solutions", log=lambda line: None)
    assert summary.errors == 1
    book = Gradebook(tmp_path / "out", load_assignment(99, tmp_path / "solutions"))
    (result,) = book.records.values()
    assert result.status.value == "error" and not result.final          # a re-run grades it again
    assert "an instructor cell failed before any answer ran (cell 0: RuntimeError: broken environment)" in \
        result.exercises[0].reason

"""The gradebook of an output folder (course_lib.grading.gradebook)."""

import csv
import json

import pytest

from course_lib.grading.assignment import GradingError, load_assignment
from course_lib.grading.gradebook import CSV_COLUMNS, Gradebook
from course_lib.grading.results import Status, SubmissionResult, SubmissionStatus, all_exercises
from course_lib.grading.submissions import Submission


@pytest.fixture(scope="module")
def assignment():
    return load_assignment(2)


def invalid(assignment, sha="a" * 64):
    return SubmissionResult(sha, SubmissionStatus.INVALID, all_exercises(assignment, Status.NOT_GRADED, "not a notebook"),
                            assignment_sha256=assignment.sha256)


def test_rows_columns_and_status_values(tmp_path, assignment):
    book = Gradebook(tmp_path, assignment)
    sub = Submission(tmp_path / "x" / "day02_clustering.ipynb", "x", "a" * 64)
    book.add(invalid(assignment), [sub])
    with open(tmp_path / "gradebook.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS and len(rows) == 3
    assert {r["status"] for r in rows} == {"not graded"} and rows[0]["points"] == "0" and rows[0]["max_total"] == "6"
    document = json.loads((tmp_path / "gradebook.json").read_text(encoding="utf-8"))
    assert document["submissions"][0]["status"] == "invalid" and document["rows"][0]["status"] == "not graded"
    assert document["submissions"][0]["feedback"] == "feedback/x-aaaaaaaaaaaa.html"


def test_journal_cut_off_mid_line_is_repaired(tmp_path, assignment):
    book = Gradebook(tmp_path, assignment)
    book.add(invalid(assignment), [Submission(tmp_path / "x.ipynb", "x", "a" * 64)])
    with open(tmp_path / "journal.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"format": 1, "result": {"sha2')   # a hard stop in the middle of a write
    again = Gradebook(tmp_path, assignment)
    assert again.done("a" * 64) is not None and again.ignored_lines == 0
    assert again.done("a" * 64).exercises[0].status is Status.NOT_GRADED
    assert (tmp_path / "journal.jsonl").read_text(encoding="utf-8").endswith("}\n")


def test_a_journal_written_by_something_else_is_restored(tmp_path, assignment):
    book = Gradebook(tmp_path, assignment)
    subs = [Submission(tmp_path / "x.ipynb", "x", "a" * 64), Submission(tmp_path / "y.ipynb", "y", "b" * 64)]
    book.add(invalid(assignment), subs)
    with open(tmp_path / "journal.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"format": 1, "forged": true}\n')
    book.add(invalid(assignment, "b" * 64), subs)
    assert "forged" not in (tmp_path / "journal.jsonl").read_text(encoding="utf-8")
    assert book.tamper_events and len(Gradebook(tmp_path, assignment).records) == 2


def test_out_folder_of_another_day_is_refused(tmp_path, assignment):
    (tmp_path / "gradebook.json").write_text('{"day": "day05"}', encoding="utf-8")
    with pytest.raises(GradingError, match="day05"):
        Gradebook(tmp_path, assignment)

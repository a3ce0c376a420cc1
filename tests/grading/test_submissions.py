"""Submitted files (course_lib.grading.submissions): discovery, student names, content ids, reading."""

import json

import pytest

from course_lib.grading.assignment import GradingError
from course_lib.grading.submissions import discover_submissions, read_submission


def test_students_from_folders_and_file_names_content_ids(tmp_path, write):
    write(tmp_path / "subs" / "alice" / "day02_clustering.ipynb", b"{}")
    write(tmp_path / "subs" / "alice" / ".ipynb_checkpoints" / "day02_clustering-checkpoint.ipynb", b"old")
    write(tmp_path / "subs" / "bob.ipynb", b"{}")                        # same bytes as alice's: same id
    write(tmp_path / "subs" / "day02_clustering.ipynb", b"[]")           # the lesson's name: the folder's name
    found = discover_submissions([tmp_path / "subs"], "day02_clustering")
    assert [(s.student, s.path.name) for s in found] == [
        ("alice", "day02_clustering.ipynb"), ("bob", "bob.ipynb"), ("subs", "day02_clustering.ipynb")]
    assert found[0].sha256 == found[1].sha256 and len(found[0].submission_id) == 12
    assert discover_submissions([tmp_path / "subs" / "bob.ipynb"])[0].student == "bob"
    with pytest.raises(GradingError, match="not found"):
        discover_submissions([tmp_path / "nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradingError, match="no submission files"):
        discover_submissions([tmp_path / "empty"])


def test_read_submission_accepts_v3_and_rejects_garbage():
    nb, reason = read_submission(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [
        {"cells": [{"cell_type": "code", "input": "x = 1", "outputs": [], "language": "python"}]}]}).encode())
    assert nb is not None and nb.cells[0].source == "x = 1", reason
    for data, words in [(b"\xff\xfe\x00", "binary data"), (b"%PDF-1.4\xff", "a PDF"), (b"", "empty"),
                        (b'{"cells": [', "not valid JSON"), (b'{"a": 1}', "without notebook cells")]:
        nb, reason = read_submission(data)
        assert nb is None and reason.startswith("not a notebook") and words in reason, reason

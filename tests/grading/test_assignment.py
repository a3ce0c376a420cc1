"""A day's trusted material (course_lib.grading.assignment)."""

import pytest

from course_lib.grading.assignment import GradingError, load_assignment


def test_day02_exercises_points_and_answer_cells(day02):
    assignment = load_assignment("02")
    assert assignment.day == "day02" and assignment.name == "day02_clustering"
    assert [e.grade_id for e in assignment.exercises] == [day02.EX1, day02.EX2, day02.EX3]
    assert assignment.max_points == 6 and all(e.points == 2 for e in assignment.exercises)
    assert set(assignment.solution_cells) == {day02.KPP, day02.LLOYD, day02.ACC}
    assert [e.solution_ids for e in assignment.exercises] == [(day02.KPP,), (day02.LLOYD,), (day02.ACC,)]
    assert "BEGIN HIDDEN TESTS" not in "".join(c.source for c in assignment.lesson.cells)
    assert load_assignment(2).sha256 == load_assignment("day02").sha256 == assignment.sha256


@pytest.mark.parametrize("day, words", [("x", "not a day"), (42, "no solution notebook for day42")])
def test_unknown_days_are_setup_errors(day, words):
    with pytest.raises(GradingError, match=words):
        load_assignment(day)


def test_a_made_up_day_and_its_errors(tmp_path, tiny_day, write):
    solution = tiny_day(tmp_path)
    assignment = load_assignment(99, tmp_path)
    assert [(e.grade_id, e.points) for e in assignment.exercises] == [("day99_double_test", 3), ("day99_one_test", 1)]
    nb = assignment.solution
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "day99_double"        # the same grade_id twice
    write(solution, nb)
    with pytest.raises(GradingError, match="used by two cells"):
        load_assignment(99, tmp_path)
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "day99_one"
    del nb.cells[4].metadata["nbgrader"]["points"]
    write(solution, nb)
    with pytest.raises(GradingError, match="has no points"):
        load_assignment(99, tmp_path)

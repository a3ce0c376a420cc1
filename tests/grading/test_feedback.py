"""The feedback page (course_lib.grading.feedback), rendered by nbconvert from what a submission produced."""

from pathlib import Path

from nbformat.v4 import new_output

from course_lib.grading.assignment import load_assignment
from course_lib.grading.feedback import feedback_name, render_feedback, safe_outputs
from course_lib.grading.plan import build_plan
from course_lib.grading.results import ExerciseResult, Status, SubmissionResult, SubmissionStatus
from course_lib.grading.submissions import Submission

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_only_text_and_png_are_kept():
    outputs = [new_output("stream", name="stdout", text="hello <b>"),
               new_output("display_data", data={"text/html": "<script>alert(1)</script>", "text/plain": "table"}),
               new_output("display_data", data={"application/javascript": "alert(1)"}),
               new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
               new_output("display_data", data={"image/png": "not base64 !!"}),
               new_output("error", ename="AssertionError", evalue="x", traceback=["\x1b[31mline with hidden test"])]
    kept = safe_outputs(outputs, test_step=True)
    assert [o.output_type for o in kept] == ["stream", "display_data", "display_data", "error"]
    assert kept[1].data == {"text/plain": "table"} and kept[2].data == {"image/png": PNG}
    assert kept[3].traceback == ["AssertionError"]                       # hidden tests' traceback: the name only
    assert safe_outputs(outputs[-1:], test_step=False)[0].traceback == ["line with hidden test"]


def test_page_escapes_the_submission_and_never_shows_hidden_tests(day02, make_submission):
    assignment = load_assignment(2)
    evil = day02.answers[day02.KPP] + "\n# <script>alert('answer')</script>\n"
    plan = build_plan(make_submission({day02.KPP: evil}), assignment)
    nb = plan.notebook
    check = assignment.exercises[0].cell_index
    nb.cells[check].outputs = [new_output("stream", name="stdout", text="[PASS] <img src=x onerror=alert(1)>"),
                               new_output("display_data", data={"text/html": "<iframe src=evil>"})]
    answer = assignment.solution_cells[day02.KPP]
    nb.cells[answer].outputs = [new_output("display_data", data={"image/png": PNG})]
    rows = [ExerciseResult(e.grade_id, e.title, 0.0, 2.0, Status.FAILED, "self-check failed: <b>bold</b>")
            for e in assignment.exercises]
    result = SubmissionResult("f" * 64, SubmissionStatus.GRADED, rows, notes=["<i>note</i>"], graded_at="2025-01-01")
    sub = Submission(Path("subs/<eve>/day02_clustering.ipynb"), "<eve>", "f" * 64)
    page = render_feedback(sub, result, assignment, nb)
    assert "<script>" not in page and "<iframe" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#39;answer&#39;)" in page or "&lt;script&gt;alert(" in page
    assert "Total: 0 / 6 points" in page and "data:image/png;base64," + PNG in page
    assert "BEGIN HIDDEN TESTS" not in page and "far-apart pair" not in page
    assert page.count("check cell: 0 / 2 points failed") == 3 and "your answer" in page
    assert feedback_name(sub) == "eve-ffffffffffff.html"

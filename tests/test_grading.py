"""Tests of ``course grade`` (course_lib.grading) on fixture submissions built from Day 02.

Every fixture is made here, in tmp_path, from the Day-02 lesson (generated from the solution when
``lessons/`` is absent) and the solution's answers: correct, partial, failing in each way a
submission can fail, and attacking the grader in each way the README's threat model names. One
module-scoped batch grades them all (2 workers); the tests then read its gradebook.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

import course_lib
from course_lib import grading, lessons as notebooks, paths
from course_lib.grading import GradeOptions, build_plan, grade_batch, load_assignment, read_submission

ROOT = paths.project_root()
SOLUTION = ROOT / "solutions" / "day02_clustering.ipynb"
CELL_TIMEOUT = 40  # the slowest Day-02 cell takes a few seconds on an idle 2-core machine
OPTIONS = dict(cell_timeout=CELL_TIMEOUT, notebook_timeout=600, workers=2, max_output_kb=1024)

KPP, LLOYD, ACC = "day02_kmeans_pp", "day02_lloyd", "day02_acc"
EX1, EX2, EX3 = "day02_kmeans_pp_test", "day02_lloyd_test", "day02_acc_test"

# --- answers ---------------------------------------------------------------------------------------
# Wrong answers that fail both the visible self-check and the hidden tests.
K_WRONG = "def kmeans_plus_plus_init(X, k, rng):\n    return np.array(X[:k], dtype=float)\n"
L_WRONG = ("def lloyd_step(X, centers):\n"
           "    labels = ((X[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)\n"
           "    return labels, centers.astype(float)   # forgets the update step\n")
A_WRONG = ("from scipy.optimize import linear_sum_assignment\n\n"
           "def cluster_accuracy(y_true, y_pred):\n    return float(np.mean(y_true == y_pred))\n")
# Wrong answers that PASS the hidden tests and fail only the visible self-check: an attack that
# silenced the self-check would earn their points, so they show that each defence works.
K_HIDDEN_PASS = ('def kmeans_plus_plus_init(X, k, rng):\n'
                 '    chosen = [0]\n'
                 '    for _ in range(1, k):\n'
                 '        d2 = ((X[:, None, :] - X[chosen][None]) ** 2).sum(-1).min(1)\n'
                 '        chosen.append(int(d2.argmax()))\n'
                 '    return X[chosen] + 1e-3   # farthest-first, and not quite data points\n')
L_HIDDEN_PASS = ("def lloyd_step(X, centers):\n"
                 "    labels = ((X[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)\n"
                 "    new = np.zeros(centers.shape)   # an empty cluster's center becomes 0\n"
                 "    for j in range(len(centers)):\n"
                 "        if np.any(labels == j):\n"
                 "            new[j] = X[labels == j].mean(0)\n"
                 "    return labels, new\n")
A_HIDDEN_PASS = ("from scipy.optimize import linear_sum_assignment\n\n"
                 "def cluster_accuracy(y_true, y_pred):\n"
                 "    total = 0   # majority class per cluster: not a one-to-one matching\n"
                 "    for c in np.unique(y_pred):\n"
                 "        total += np.bincount(y_true[y_pred == c]).max()\n"
                 "    return total / len(y_true)\n")
# Passes the self-check, fails the hidden tests (they use fewer than 5 points).
A_VISIBLE_ONLY = ("from scipy.optimize import linear_sum_assignment\n\n"
                  "def cluster_accuracy(y_true, y_pred):\n"
                  "    if len(y_true) < 5:\n        return 0.0\n"
                  "    classes, yi = np.unique(y_true, return_inverse=True)\n"
                  "    clusters, ci = np.unique(y_pred, return_inverse=True)\n"
                  "    table = np.zeros((len(classes), len(clusters)))\n"
                  "    np.add.at(table, (yi, ci), 1)\n"
                  "    rows, cols = linear_sum_assignment(table, maximize=True)\n"
                  "    return table[rows, cols].sum() / len(y_true)\n")

FORGE = '''
print("[PASS] all checks passed")
from IPython.display import display
display({"application/vnd.course.check+json": {"check_id": "day02.%(check)s", "title": "x", "status": "pass",
         "message": "ok", "hint": ""}, "text/plain": "[PASS]"}, raw=True)
display({"application/vnd.course.grade+json": {"nonce": "GUESS", "grade_id": "%(ex)s", "passed": True,
         "checks": [], "tampered": [], "restored": [], "error": None}}, raw=True)
import course_lib.checks as _cc
_cc.RESULTS["day02.%(check)s"] = _cc.CheckResult("day02.%(check)s", "x", "pass", "forged")
'''


def solution_answers():
    nb = notebooks.read(SOLUTION)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def lesson_notebook():
    path = ROOT / "lessons" / SOLUTION.name
    if path.exists():
        return notebooks.read(path)
    return notebooks.make_lesson(notebooks.read(SOLUTION), name=SOLUTION.name)


def make_submission(answers, edit=None):
    """The lesson with the given answer cells filled in (others left as the stub)."""
    nb = lesson_notebook()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if edit:
        edit(nb)
    return nb


def write(path, nb_or_bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_bytes, bytes):
        path.write_bytes(nb_or_bytes)
    else:
        path.write_text(notebooks.dumps(nb_or_bytes), encoding="utf-8")
    return path


def forge(grade_id, check):
    return FORGE % {"ex": grade_id, "check": check}


# --- the fixture set --------------------------------------------------------------------------------

EXPECTED = {  # student -> points for (exercise 1, 2, 3)
    "correct": (2, 2, 2),
    "partial": (2, 0, 0),
    "dave": (2, 2, 0),           # renamed, vandalised; passes the self-check of ex. 3 but not its hidden tests
    "raises_flood_memory": (0, 2, 0),
    "loop_kill": (2, 0, 0),
    "atk_checks": (0, 0, 0),
    "atk_course_lib": (0, 0, 0),
    "atk_numpy": (0, 0, 0),
    "atk_files": (0, 0, 0),
    "erin": (0, 0, 0), "frank": (0, 0, 0), "gina": (0, 0, 0), "hank": (0, 0, 0), "ivan": (0, 0, 0),
}


def build_fixtures(subs: Path, out: Path, course_copy: Path) -> None:
    right = solution_answers()
    k, l, a = right[KPP], right[LLOYD], right[ACC]
    name = SOLUTION.name
    write(subs / "correct" / name, make_submission({KPP: k, LLOYD: l, ACC: a}))
    write(subs / "partial" / name, make_submission({KPP: k, LLOYD: L_WRONG}))
    write(subs / "raises_flood_memory" / name, make_submission({
        KPP: 'def kmeans_plus_plus_init(X, k, rng):\n    raise ValueError("bad init")\n',
        LLOYD: l + '\nfor _i in range(300):\n    print("x" * 10000)\n',
        ACC: a.replace("    ### BEGIN SOLUTION\n",
                       "    ### BEGIN SOLUTION\n    _hog = np.zeros(10 * 2**30, dtype=np.uint8)  # 10 GiB\n", 1)}))
    write(subs / "loop_kill" / name, make_submission({
        KPP: k, LLOYD: l + "\nwhile True:\n    pass\n",
        ACC: a + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"}))

    def vandalise(nb):
        nb.cells = [c for c in nb.cells if c.cell_type == "code"]            # delete all markdown
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cell.source = "pass  # checks removed"                      # edit every check cell
            elif "tags" in cell.metadata:
                cell.source = 'MODE = "full"\nDATASET = "mnist"\nSEED = 1'  # edit the parameters
        del nb.cells[7]                                       # delete an instructor cell (kmeans)
    write(subs / "dave" / "my notebook (final).ipynb",
          make_submission({KPP: k, LLOYD: l, ACC: A_VISIBLE_ONLY}, vandalise))

    # Attacks (README, instructor section: threat model).
    def forge_metadata(nb):
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                meta["points"] = 100
            if meta.get("grade_id") == ACC:
                meta.update(grade=True, points=100)
        bonus = new_code_cell("pass", metadata={"nbgrader": {"grade": True, "solution": False, "points": 50,
                                                             "grade_id": "day02_bonus", "locked": True}})
        nb.cells.append(bonus)
    write(subs / "atk_checks" / name, make_submission({
        KPP: K_HIDDEN_PASS + "\nchecks.check_kmeans_plus_plus = lambda f: None\n" + forge(EX1, "kmeans_pp"),
        LLOYD: L_HIDDEN_PASS + ("\nimport course_lib.checks.day02 as _d\n_d.check_lloyd_step = lambda *a, **k: None\n"
                                "import types\nchecks = types.SimpleNamespace(check_lloyd_step=lambda f: None,\n"
                                "    check_cluster_accuracy=lambda f: None)\n") + forge(EX2, "lloyd_step"),
        ACC: A_HIDDEN_PASS + ("\ndef check_cluster_accuracy(f):\n    return None\n"
                              "checks.check_cluster_accuracy = check_cluster_accuracy\n") + forge(EX3, "cluster_accuracy"),
    }, forge_metadata))
    write(subs / "atk_course_lib" / name, make_submission({
        KPP: K_HIDDEN_PASS + (
            "\nimport course_lib.checks as _cc\n"
            "def _fake_run_check(check_id, title, test, hint, display=True):\n"
            "    result = _cc.CheckResult(check_id, title, 'pass', 'ok')\n"
            "    _cc.RESULTS[check_id] = result\n    return result\n"
            "checks.run_check = _fake_run_check\n_cc.run_check = _fake_run_check\n"),
        # patches the self-check WHILE it runs (the guard only sees it afterwards)
        LLOYD: L_HIDDEN_PASS.replace("    labels = ", "    import course_lib.checks.day02 as _d\n"
                                     "    _d.expect = lambda *a, **k: None\n    labels = ", 1),
        ACC: A_HIDDEN_PASS + (
            "\nimport course_lib.evaluation, course_lib.checks\n"
            "course_lib.evaluation.cluster_accuracy = cluster_accuracy   # the reference the check compares with\n"
            "course_lib.checks.CheckResult.passed = property(lambda self: True)\n"
            "checks.check_cluster_accuracy.__code__ = (lambda f: None).__code__\n"),
    }))
    write(subs / "atk_numpy" / name, make_submission({
        KPP: K_HIDDEN_PASS + ("\n_real_abs = np.abs\n"
                              "np.isclose = lambda a, b, *r, **kw: _real_abs(np.asarray(a) - np.asarray(b)) < 0.01\n"),
        LLOYD: L_WRONG + "\nnp.allclose = lambda *a, **k: True\n",
        ACC: A_HIDDEN_PASS + "\nnp.isclose = lambda *a, **k: True\n",
    }))
    tamper_file = course_copy / "checks" / "day02.py"
    write(subs / "atk_files" / name, make_submission({
        KPP: K_WRONG + (
            "\nimport json\n"
            "open('gradebook.csv', 'w').write('student,points\\natk_files,6\\n')\n"
            f"open({str(out / 'gradebook.csv')!r}, 'w').write('student,points\\natk_files,6\\n')\n"
            f"with open({str(out / 'journal.jsonl')!r}, 'a') as _j:\n"
            "    _j.write(json.dumps({'format': 1, 'forged': True}) + '\\n')\n"),
        LLOYD: L_HIDDEN_PASS + (
            "\nimport course_lib.checks.day02 as _d, importlib.util, sys\n"
            "with open(_d.__file__, 'a') as _f:\n"
            "    _f.write('\\ndef check_lloyd_step(f):\\n    return None\\n')\n"
            "_spec = importlib.util.spec_from_file_location('course_lib.checks.day02', _d.__file__)\n"
            "_m = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_m)\n"
            "sys.modules['course_lib.checks.day02'] = _m\nchecks = _m\n"),
        ACC: A_WRONG,
    }))
    assert tamper_file.exists()

    write(subs / "erin" / "homework.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    write(subs / "frank" / name, b'{"cells": [{"cell_type": "code", "source": "def kmea')
    write(subs / "gina" / name, b"")
    write(subs / "hank" / name, b'{"hello": "world"}')
    other = new_notebook(cells=[new_code_cell("def pca(X, k):\n    return X", metadata={
        "nbgrader": {"grade": False, "grade_id": "day03_pca", "solution": True}})])
    write(subs / "ivan" / name, other)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the whole fixture set once (2 workers); returns (out, gradebook rows, summary, log)."""
    base = tmp_path_factory.mktemp("grading")
    subs, out, course_copy = base / "submitted", base / "out", base / "course" / "course_lib"
    shutil.copytree(Path(course_lib.__file__).parent, course_copy, ignore=shutil.ignore_patterns("__pycache__"))
    build_fixtures(subs, out, course_copy)
    lines = []
    summary = grade_batch([subs], 2, out, GradeOptions(**OPTIONS), package_dir=course_copy, log=lines.append)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return out, rows, summary, "\n".join(lines)


def rows_of(rows, student):
    return {r["exercise"]: r for r in rows if r["student"] == student}


# --- the batch ---------------------------------------------------------------------------------------

def test_every_submission_gets_one_row_per_exercise(batch):
    _, rows, summary, log = batch
    assert summary.submissions == len(EXPECTED) and summary.errors == 0, log
    assert len(rows) == 3 * len(EXPECTED)
    assert {r["student"] for r in rows} == set(EXPECTED)
    for student in EXPECTED:
        assert set(rows_of(rows, student)) == {EX1, EX2, EX3}


def test_exact_points_per_exercise(batch):
    _, rows, _, log = batch
    got = {s: tuple(float(rows_of(rows, s)[ex]["points"]) for ex in (EX1, EX2, EX3)) for s in EXPECTED}
    assert got == {s: tuple(map(float, p)) for s, p in EXPECTED.items()}, log
    for row in rows:  # forged points metadata and an extra "grade" cell change nothing
        assert row["max_points"] == "2" and row["max_total"] == "6"


def test_every_lost_point_has_a_reason(batch):
    _, rows, _, _ = batch
    for row in rows:
        assert (float(row["points"]) < float(row["max_points"])) == bool(row["reason"]), row
        assert (row["status"] == "passed") == (float(row["points"]) == float(row["max_points"]))


@pytest.mark.parametrize("student, exercise, status, words", [
    ("partial", EX2, "failed", "self-check failed: update step"),
    ("partial", EX3, "not attempted", "NotImplementedError"),
    ("dave", EX3, "failed", "hidden test failed"),
    ("raises_flood_memory", EX1, "error", "ValueError: bad init"),
    ("loop_kill", EX2, "timeout", f"your answer cell ran longer than {CELL_TIMEOUT} s"),
    ("loop_kill", EX3, "crashed", "your answer cell crashed the kernel (the kernel process died from SIGKILL)"),
    ("raises_flood_memory", EX3, "error", f"ran out of memory (the cap is {grading.DEFAULT_MEMORY_MB} MB)"),
    ("atk_checks", EX1, "failed", "self-check failed: every initial center must be one of the data points"),
    ("atk_checks", EX2, "failed", "self-check failed: a center with no points assigned should stay"),
    ("atk_checks", EX3, "failed", "self-check failed: on random labels"),
    ("atk_course_lib", EX1, "failed", "self-check failed: every initial center must be one of the data points"),
    ("atk_course_lib", EX2, "integrity", "course_lib.checks.day02.expect"),
    ("atk_course_lib", EX3, "failed", "self-check failed: on random labels"),
    ("atk_numpy", EX1, "failed", "self-check failed: every initial center must be one of the data points"),
    ("atk_numpy", EX2, "failed", "self-check failed: update step"),
    ("atk_numpy", EX3, "failed", "self-check failed: on random labels"),
    ("atk_files", EX2, "failed", "self-check failed: a center with no points assigned should stay"),
    ("erin", EX1, "not graded", "not a notebook: the file is a PDF"),
    ("frank", EX1, "not graded", "not a notebook: the file is not valid JSON"),
    ("gina", EX1, "not graded", "not a notebook: the file is empty"),
    ("hank", EX1, "not graded", "valid JSON but without notebook cells"),
    ("ivan", EX1, "not graded", "none of the answer cells of day02_clustering were found"),
])
def test_reasons(batch, student, exercise, status, words):
    _, rows, _, _ = batch
    row = rows_of(rows, student)[exercise]
    assert row["status"] == status and words in row["reason"], row


def test_notes_for_edits_renames_floods_and_restarts(batch):
    _, rows, _, _ = batch
    assert "instructor cells were edited or deleted" in rows_of(rows, "dave")[EX1]["notes"]
    assert "the file is named 'my notebook (final).ipynb'" in rows_of(rows, "dave")[EX1]["notes"]
    assert "more than 1024 KB of output" in rows_of(rows, "raises_flood_memory")[EX1]["notes"]
    assert "kernel was restarted 2 time(s)" in rows_of(rows, "loop_kill")[EX1]["notes"]
    assert not rows_of(rows, "correct")[EX1]["notes"]


def test_attacks_are_flagged_for_review(batch):
    out, rows, summary, log = batch
    flags = rows_of(rows, "atk_course_lib")[EX1]["flags"]
    assert "course_lib" in flags and "course_lib.checks.day02.run_check" in flags
    assert "numpy.isclose" in rows_of(rows, "atk_numpy")[EX1]["flags"]
    assert "course files changed on disk" in rows_of(rows, "atk_files")[EX1]["flags"]
    assert any("course files changed during grading" in w for w in summary.warnings)
    # (a submission graded at the same time as atk_files shares the "files changed" flag)
    assert all(f.startswith("course files changed") for f in rows_of(rows, "correct")[EX1]["flags"].split(" | ")
               if f)


def test_results_files_written_by_a_submission_are_overwritten(batch):
    out, rows, summary, _ = batch
    journal = (out / "journal.jsonl").read_text(encoding="utf-8")
    assert "forged" not in journal and len(journal.splitlines()) == len(EXPECTED)
    assert any("journal.jsonl was changed by something other than the grader" in w for w in summary.warnings)
    assert "atk_files,6" not in (out / "gradebook.csv").read_text(encoding="utf-8")


def test_gradebook_json_and_feedback(batch):
    out, rows, _, _ = batch
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    assert book["day"] == "day02" and book["max_points"] == 6 and len(book["rows"]) == len(rows)
    totals = {s["student"]: s["total"] for s in book["submissions"]}
    assert totals == {s: sum(p) for s, p in EXPECTED.items()}
    page = (out / book["submissions"][0]["feedback"]).read_text(encoding="utf-8")
    assert "Total:" in page
    correct = next(s for s in book["submissions"] if s["student"] == "correct")
    page = (out / correct["feedback"]).read_text(encoding="utf-8")
    assert "6 / 6 points" in page and "data:image/png;base64," in page
    assert "BEGIN HIDDEN TESTS" not in page and "one center per far-apart pair" not in page
    flood = next(s for s in book["submissions"] if s["student"] == "raises_flood_memory")
    assert (out / flood["feedback"]).stat().st_size < 1_500_000


def test_rerun_skips_everything_already_graded(batch, tmp_path):
    out, rows, _, _ = batch
    subs = out.parent / "submitted"
    lines = []
    summary = grade_batch([subs], "day02", out, GradeOptions(**OPTIONS), log=lines.append)
    assert summary.graded_now == 0 and summary.skipped == len(EXPECTED), lines
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == rows


# --- the hidden-pass answers make the attack fixtures meaningful ------------------------------------

def _hidden_tests(grade_id):
    nb = notebooks.read(SOLUTION)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return source[source.index("### BEGIN HIDDEN TESTS"):]


@pytest.mark.parametrize("answer, name, check, grade_id", [
    (K_HIDDEN_PASS, "kmeans_plus_plus_init", "check_kmeans_plus_plus", EX1),
    (L_HIDDEN_PASS, "lloyd_step", "check_lloyd_step", EX2),
    (A_HIDDEN_PASS, "cluster_accuracy", "check_cluster_accuracy", EX3),
])
def test_attack_answers_pass_hidden_tests_and_fail_only_the_self_check(answer, name, check, grade_id):
    import numpy as np

    from course_lib.checks import day02

    namespace = {"np": np}
    exec(answer, namespace)
    exec(_hidden_tests(grade_id), {"np": np, name: namespace[name]})   # raises nothing
    assert getattr(day02, check)(namespace[name]).status == "fail"


# --- rebuilding -------------------------------------------------------------------------------------

def test_rebuild_takes_only_answer_cells_from_the_submission():
    assignment = load_assignment("02")
    right = solution_answers()

    def edit(nb):
        nb.cells[0].source = "# hacked"
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == LLOYD:
                cell.metadata = {}                      # lost metadata: matched by the function it defines
        nb.cells.append(new_code_cell("def helper():\n    return 1"))
        dup = new_code_cell("def cluster_accuracy(a, b):\n    return 0.5",
                            metadata={"nbgrader": {"grade_id": ACC, "solution": True}})
        nb.cells.append(dup)
    plan = build_plan(make_submission({KPP: right[KPP], LLOYD: right[LLOYD], ACC: right[ACC]}, edit), assignment)
    student = {s.grade_id: s.code for s in plan.steps if s.kind == "student"}
    assert student[KPP] == right[KPP] and student[LLOYD] == right[LLOYD]
    assert student[ACC].startswith(right[ACC]) and student[ACC].endswith("return 0.5")  # run in notebook order
    tests = [s for s in plan.steps if s.kind == "test"]
    assert [s.grade_id for s in tests] == [EX1, EX2, EX3] and all("BEGIN HIDDEN TESTS" in s.code for s in tests)
    assert plan.notebook.cells[0].source.startswith("# Day 02")
    assert "helper" in plan.dropped_names
    assert any("lost its grading metadata" in n for n in plan.notes)
    assert any("2 cells carry the answer" in n for n in plan.notes)


def test_read_submission_accepts_v3_and_rejects_garbage():
    nb, reason = read_submission(json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [
        {"cells": [{"cell_type": "code", "input": "x = 1", "outputs": [], "language": "python"}]}]}).encode())
    assert nb is not None and nb.cells[0].source == "x = 1", reason
    assert read_submission(b"\x00\x01\x02")[1].startswith("not a notebook")


def test_journal_cut_off_mid_line_is_repaired(tmp_path):
    assignment = load_assignment(2)
    book = grading.Gradebook(tmp_path, assignment)
    result = grading.SubmissionResult("a" * 64, "invalid", grading._all_exercises(assignment, "not graded", "x"),
                                      assignment_sha256=assignment.sha256)
    sub = grading.Submission(tmp_path / "x.ipynb", "x", "a" * 64)
    book.add(result, [sub])
    with open(tmp_path / "journal.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"format": 1, "result": {"sha2')   # a hard stop in the middle of a write
    again = grading.Gradebook(tmp_path, assignment)
    assert again.done("a" * 64) is not None and again.ignored_lines == 0
    assert (tmp_path / "journal.jsonl").read_text(encoding="utf-8").endswith("}\n")


def test_out_folder_of_another_day_is_refused(tmp_path):
    (tmp_path / "gradebook.json").write_text('{"day": "day05"}', encoding="utf-8")
    with pytest.raises(grading.GradingError, match="day05"):
        grading.Gradebook(tmp_path, load_assignment(2))


# --- a tiny made-up day: the grader is generic; the per-notebook timeout ----------------------------

def tiny_day(folder: Path) -> Path:
    """solutions/day99_tiny.ipynb: two exercises worth 3 and 1 points."""
    def cell(source, **nbgrader):
        return new_code_cell(source, metadata={"nbgrader": {"schema_version": 3, **nbgrader}} if nbgrader else {})
    nb = new_notebook(cells=[
        cell("import time"),
        cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
             grade=False, grade_id="day99_double", solution=True, locked=False),
        cell("assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(-1) == -2\n### END HIDDEN TESTS",
             grade=True, grade_id="day99_double_test", points=3, solution=False, locked=True),
        cell("def one():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
             grade=False, grade_id="day99_one", solution=True, locked=False),
        cell("assert one() == 1", grade=True, grade_id="day99_one_test", points=1, solution=False, locked=True),
    ])
    return write(folder / "day99_tiny.ipynb", nb)


def test_generic_day_and_per_notebook_timeout(tmp_path):
    solution = tiny_day(tmp_path / "solutions")
    lesson = notebooks.make_lesson(notebooks.read(solution))
    for c in lesson.cells:
        grade_id = c.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "day99_double":
            c.source = "def double(x):\n    return x + x"
        elif grade_id == "day99_one":
            c.source = "def one():\n    return 1\n\ntime.sleep(120)"
    write(tmp_path / "subs" / "zoe" / "day99_tiny.ipynb", lesson)
    write(tmp_path / "subs" / "yan" / "day99_tiny.ipynb", notebooks.make_lesson(notebooks.read(solution)))
    options = GradeOptions(cell_timeout=60, notebook_timeout=12)
    grade_batch([tmp_path / "subs"], 99, tmp_path / "out", options, solutions_dir=tmp_path / "solutions",
                log=lambda line: None)
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(handle)}
    assert rows["zoe", "day99_double_test"]["points"] == "3"
    late = rows["zoe", "day99_one_test"]
    assert (late["points"], late["max_points"], late["status"]) == ("0", "1", "timeout")
    assert late["reason"].startswith("the notebook ran longer than 12 s")
    assert rows["yan", "day99_double_test"]["status"] == "not attempted" and rows["yan", "day99_one_test"]["total"] == "0"


def test_failing_instructor_cell_is_a_grader_error_not_a_grade(tmp_path):
    solution = tiny_day(tmp_path / "solutions")
    nb = notebooks.read(solution)
    nb.cells[0].source = "import time\nraise RuntimeError('broken environment')"
    write(solution, nb)
    write(tmp_path / "subs" / "zoe.ipynb", notebooks.make_lesson(nb))
    summary = grade_batch([tmp_path / "subs"], 99, tmp_path / "out", GradeOptions(cell_timeout=60),
                          solutions_dir=tmp_path / "solutions", log=lambda line: None)
    assert summary.errors == 1
    book = grading.Gradebook(tmp_path / "out", load_assignment(99, tmp_path / "solutions"))
    (result,) = book.records.values()
    assert result.status == "error" and not result.final          # a re-run grades it again
    assert "an instructor cell failed before any answer ran (cell 0: RuntimeError: broken environment)" in \
        result.exercises[0].reason


# --- kernels: limits and the guard ------------------------------------------------------------------

def test_memory_cap_is_applied_to_the_kernel(tmp_path):
    probe = ("import resource, numpy as np\nprint(resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)\n"
             "a = np.zeros(3 << 30, dtype=np.uint8)\nprint('allocated', a.nbytes >> 30)")
    capped = grading.KernelSession(tmp_path, dict(os.environ), 2048, 64, None)
    try:
        outcome = capped.execute(probe, 60, None)
    finally:
        capped.close()
    assert "2048\n" in "".join(o.get("text", "") for o in outcome.outputs)
    assert outcome.status == "error" and outcome.ename == "MemoryError"
    free = grading.KernelSession(tmp_path, dict(os.environ), 0, 0, None)  # the same allocation is fine uncapped
    try:
        outcome = free.execute(probe, 60, None)
    finally:
        free.close()
    assert outcome.status == "ok" and "allocated 3" in "".join(o.get("text", "") for o in outcome.outputs)


def test_guard_undoes_patches_and_catches_tampering_during_tests(tmp_path):
    files = grading._package_files(Path(course_lib.__file__).parent)
    session = grading.KernelSession(tmp_path, dict(os.environ), 0, 0, None)

    def verdict(outcome):
        return [o["data"][grading.VERDICT_MIME] for o in outcome.outputs
                if grading.VERDICT_MIME in o.get("data", {})][0]

    def test(source, nonce="n1"):
        code = f"__import__('course_lib.grading', fromlist=['_'])._kernel_run_test('t', {source!r}, {nonce!r})"
        return verdict(session.execute(code, 60, None))
    try:
        assert session.execute(grading._boot_code(files, "day02"), 60, None).status == "ok"
        session.execute("__import__('course_lib.grading', fromlist=['_'])._kernel_capture(['np'])", 30, None)
        session.execute("import numpy as np", 30, None)
        patch = ("import builtins, sys, numpy as np\n"
                 "builtins.all = lambda *a, **k: True\n"
                 "np.allclose._implementation.__code__ = (lambda *a, **k: True).__code__\n"
                 "sys.settrace(lambda *a: None)\n"
                 "sys.modules['course_lib.checks.day02'] = type(sys)('fake')\n")
        assert session.execute(patch, 30, None).status == "ok"
        record = test("import sys, numpy as np\nassert not all([False])\nassert not np.allclose(1, 2)\n"
                      "import course_lib.checks.day02 as d\nassert hasattr(d, 'check_lloyd_step')\n"
                      "assert sys.gettrace() is None")
        assert record["passed"] and record["nonce"] == "n1", record
        assert {"builtins.all", "sys.settrace/setprofile", "sys.modules['course_lib.checks.day02']"} <= \
            set(record["restored"]) and any("allclose" in r for r in record["restored"])
        session.execute("def sneaky():\n    import numpy\n    numpy.isclose = lambda *a, **k: True\n    return 1",
                        30, None)
        record = test("assert sneaky() == 1", "n2")
        assert not record["passed"] and "numpy.isclose" in record["tampered"]
        record = test("raise SystemExit(0)", "n3")   # even SystemExit is a failed test, not a crash
        assert not record["passed"] and record["error"]["type"] == "SystemExit"
    finally:
        session.close()


# --- the command line: interrupted and resumed ------------------------------------------------------

def test_interrupted_run_resumes_without_regrading_or_losing_rows(tmp_path):
    # A throw-away course (the command finds solutions/ from its working folder) with the tiny day.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "learning-without-labels"\n', encoding="utf-8")
    solution = tiny_day(tmp_path / "solutions")
    answered = notebooks.make_lesson(notebooks.read(solution))
    for c in answered.cells:
        grade_id = c.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "day99_double":
            c.source = "def double(x):\n    return 2 * x"
        elif grade_id == "day99_one":
            c.source = "def one():\n    return 1\n\ntime.sleep(6)   # slow enough to be interrupted"
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(subs / "amy" / "answers.txt", b"my answers are in my head")   # graded at once
    write(subs / "ben" / "day99_tiny.ipynb", answered)                   # runs a kernel
    command = [sys.executable, "-m", "course_lib", "grade", str(subs), "--day", "99", "--out", str(out),
               "--workers", "1", "--timeout", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=str(tmp_path),  # Ctrl-C works even if this test runs as a background job
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text(encoding="utf-8").count("\n") >= 1:
            break
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGINT)   # Ctrl-C while the second submission is being graded
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130 and "interrupted" in output, output
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        first = list(csv.DictReader(handle))
    assert len(first) == 2 and {r["student"] for r in first} == {"amy"}, output

    lines = []
    options = GradeOptions(cell_timeout=60)
    summary = grade_batch([subs], 99, out, options, solutions_dir=tmp_path / "solutions", log=lines.append)
    assert (summary.skipped, summary.graded_now) == (1, 1), lines
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 2
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[:2] == first and [float(r["points"]) for r in rows[2:]] == [3, 1]

    # A renamed file is recognised by its content; a changed file is graded again.
    shutil.move(subs / "ben", subs / "ben_renamed")
    (subs / "amy" / "answers.txt").write_text("second thoughts", encoding="utf-8")
    summary = grade_batch([subs], 99, out, options, solutions_dir=tmp_path / "solutions", log=lines.append)
    assert (summary.skipped, summary.graded_now) == (1, 1)
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 3
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"amy", "ben_renamed"} and rows["ben_renamed"]["total"] == "4"

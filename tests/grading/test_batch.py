"""``course grade`` end to end (course_lib.grading.batch) on fixture submissions built from Day 02.

Every fixture is made here, in tmp_path, from the Day-02 lesson and the solution's answers: correct,
partial, failing in each way a submission can fail, and attacking the grader's checks in each way the
README's threat model names. One module-scoped batch grades them all (2 workers, in the sandbox when
bubblewrap runs here, else with --no-sandbox); the tests then read its gradebook. The sandbox's own
attacks (files, network, processes) are in test_sandbox.py.
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
from course_lib.grading.assignment import load_assignment
from course_lib.grading.batch import grade_batch
from course_lib.grading.gradebook import Gradebook
from course_lib.grading.options import DEFAULT_MEMORY_MB, GradeOptions

pytestmark = pytest.mark.slow

# The slowest Day-02 cell takes a few seconds on an idle 2-core machine; on a machine shared with other heavy
# jobs it can take minutes: raise the limit there with GRADING_TEST_CELL_TIMEOUT (seconds).
CELL_TIMEOUT = int(os.environ.get("GRADING_TEST_CELL_TIMEOUT", "40"))
OPTIONS = dict(cell_timeout=CELL_TIMEOUT, notebook_timeout=max(600, 10 * CELL_TIMEOUT), workers=2, max_output_kb=1024)

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
# Searches the kernel's memory for the hidden tests of the exercises before it and prints what it finds.
PEEK = '''
import gc, linecache
_needles = ["far-apart" + " pair", "_labels, _centers = " + "lloyd_step"]
_texts = ["".join(e[2]) for e in list(linecache.cache.values()) if len(e) > 2 and isinstance(e[2], list)]
_texts += [v for d in gc.get_objects() if isinstance(d, dict) for v in list(d.values()) if isinstance(v, str)]
print("PEEK", [t[:300] for t in _texts if any(n in t for n in _needles)][:3])
'''

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
    "peek": (2, 2, 2),
    "calls_ref": (2, 2, 0),      # exercise 3 returns course_lib's own cluster_accuracy: right values, no points
    "erin": (0, 0, 0), "frank": (0, 0, 0), "gina": (0, 0, 0), "hank": (0, 0, 0), "ivan": (0, 0, 0),
}


def forge(grade_id, check):
    return FORGE % {"ex": grade_id, "check": check}


def build_fixtures(d, make_submission, write, subs: Path, out: Path, course_copy: Path) -> None:
    k, l, a = d.answers[d.KPP], d.answers[d.LLOYD], d.answers[d.ACC]
    name = d.solution.name
    KPP, LLOYD, ACC, EX1, EX2, EX3 = d.KPP, d.LLOYD, d.ACC, d.EX1, d.EX2, d.EX3
    write(subs / "correct" / name, make_submission({KPP: k, LLOYD: l, ACC: a}))
    write(subs / "partial" / name, make_submission({KPP: k, LLOYD: L_WRONG}))
    write(subs / "calls_ref" / name, make_submission({KPP: k, LLOYD: l, ACC: (
        "def cluster_accuracy(y_true, y_pred):\n"
        "    from course_lib.evaluation.clustering import cluster_accuracy as library_version\n"
        "    return library_version(y_true, y_pred)\n")}))
    write(subs / "raises_flood_memory" / name, make_submission({
        KPP: 'def kmeans_plus_plus_init(X, k, rng):\n    raise ValueError("bad init")\n',
        LLOYD: l + '\nfor _i in range(300):\n    print("x" * 10000)\n',
        ACC: a.replace("    ### BEGIN SOLUTION\n",
                       "    ### BEGIN SOLUTION\n    _hog = np.zeros(10 * 2**30, dtype=np.uint8)  # 10 GiB\n", 1)}))
    write(subs / "loop_kill" / name, make_submission({
        KPP: k, LLOYD: l + "\nwhile True:\n    pass\n",
        ACC: a + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"}))
    write(subs / "peek" / name, make_submission({KPP: k, LLOYD: l + PEEK, ACC: a + PEEK}))

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

    # Attacks on the checks (README, threat model).
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
            "\nimport course_lib.evaluation.clustering, course_lib.checks\n"
            "course_lib.evaluation.clustering.cluster_accuracy = cluster_accuracy   # the reference the check uses\n"
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
def batch(tmp_path_factory, day02, make_submission, write, sandbox_works):
    """Grade the whole fixture set once (2 workers); returns a namespace: out, rows, summary, log, sandboxed."""
    base = tmp_path_factory.mktemp("grading")
    subs, out, course_copy = base / "submitted", base / "out", base / "course" / "course_lib"
    shutil.copytree(Path(course_lib.__file__).parent, course_copy, ignore=shutil.ignore_patterns("__pycache__"))
    build_fixtures(day02, make_submission, write, subs, out, course_copy)
    lines = []
    options = GradeOptions(**OPTIONS, sandbox=sandbox_works)
    summary = grade_batch([subs], 2, out, options, package_dir=course_copy, log=lines.append)
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return type("Batch", (), dict(out=out, rows=rows, summary=summary, log="\n".join(lines), sandboxed=sandbox_works,
                                  course_copy=course_copy))


def rows_of(rows, student):
    return {r["exercise"]: r for r in rows if r["student"] == student}


# --- the batch ---------------------------------------------------------------------------------------

def test_every_submission_gets_one_row_per_exercise(batch, day02):
    assert batch.summary.submissions == len(EXPECTED) and batch.summary.errors == 0, batch.log
    assert len(batch.rows) == 3 * len(EXPECTED)
    assert {r["student"] for r in batch.rows} == set(EXPECTED)
    for student in EXPECTED:
        assert set(rows_of(batch.rows, student)) == {day02.EX1, day02.EX2, day02.EX3}


def test_exact_points_per_exercise(batch, day02):
    got = {s: tuple(float(rows_of(batch.rows, s)[ex]["points"]) for ex in (day02.EX1, day02.EX2, day02.EX3))
           for s in EXPECTED}
    assert got == {s: tuple(map(float, p)) for s, p in EXPECTED.items()}, batch.log
    for row in batch.rows:  # forged points metadata and an extra "grade" cell change nothing
        assert row["max_points"] == "2" and row["max_total"] == "6"


def test_every_lost_point_has_a_reason(batch):
    for row in batch.rows:
        assert (float(row["points"]) < float(row["max_points"])) == bool(row["reason"]), row
        assert (row["status"] == "passed") == (float(row["points"]) == float(row["max_points"]))


@pytest.mark.parametrize("student, exercise, status, words", [
    ("partial", "day02_lloyd_test", "failed", "self-check failed: update step"),
    ("partial", "day02_acc_test", "not attempted", "NotImplementedError"),
    ("calls_ref", "day02_acc_test", "reference", "not your own implementation"),
    ("dave", "day02_acc_test", "failed", "hidden test failed"),
    ("raises_flood_memory", "day02_kmeans_pp_test", "error", "ValueError: bad init"),
    ("loop_kill", "day02_lloyd_test", "timeout", f"your answer cell ran longer than {CELL_TIMEOUT} s"),
    ("loop_kill", "day02_acc_test", "crashed",
     "your answer cell crashed the kernel (the kernel process died from SIGKILL)"),
    ("raises_flood_memory", "day02_acc_test", "error", f"ran out of memory (the cap is {DEFAULT_MEMORY_MB} MB)"),
    ("atk_checks", "day02_kmeans_pp_test", "failed", "self-check failed: every initial center must be one of the data"),
    ("atk_checks", "day02_lloyd_test", "failed", "self-check failed: a center with no points assigned should stay"),
    ("atk_checks", "day02_acc_test", "failed", "self-check failed: on random labels"),
    ("atk_course_lib", "day02_kmeans_pp_test", "failed",
     "self-check failed: every initial center must be one of the data points"),
    ("atk_course_lib", "day02_lloyd_test", "integrity", "course_lib.checks.day02.expect"),
    ("atk_course_lib", "day02_acc_test", "failed", "self-check failed: on random labels"),
    ("atk_numpy", "day02_kmeans_pp_test", "failed", "self-check failed: every initial center must be one of the data"),
    ("atk_numpy", "day02_lloyd_test", "failed", "self-check failed: update step"),
    ("atk_numpy", "day02_acc_test", "failed", "self-check failed: on random labels"),
    ("atk_files", "day02_lloyd_test", "failed", "self-check failed: a center with no points assigned should stay"),
    ("erin", "day02_kmeans_pp_test", "not graded", "not a notebook: the file is a PDF"),
    ("frank", "day02_kmeans_pp_test", "not graded", "not a notebook: the file is not valid JSON"),
    ("gina", "day02_kmeans_pp_test", "not graded", "not a notebook: the file is empty"),
    ("hank", "day02_kmeans_pp_test", "not graded", "valid JSON but without notebook cells"),
    ("ivan", "day02_kmeans_pp_test", "not graded", "none of the answer cells of day02_clustering were found"),
])
def test_reasons(batch, student, exercise, status, words):
    row = rows_of(batch.rows, student)[exercise]
    assert row["status"] == status and words in row["reason"], row


def test_notes_for_edits_renames_floods_and_restarts(batch, day02):
    rows = batch.rows
    assert "instructor cells were edited or deleted" in rows_of(rows, "dave")[day02.EX1]["notes"]
    assert "the file is named 'my notebook (final).ipynb'" in rows_of(rows, "dave")[day02.EX1]["notes"]
    assert "more than 1024 KB of output" in rows_of(rows, "raises_flood_memory")[day02.EX1]["notes"]
    assert "kernel was restarted 2 time(s)" in rows_of(rows, "loop_kill")[day02.EX1]["notes"]
    if batch.sandboxed:
        assert not rows_of(rows, "correct")[day02.EX1]["notes"]
    else:  # every row says that the sandbox was off
        assert all("graded with --no-sandbox" in r["notes"] for r in rows)


def test_attacks_on_the_checks_are_flagged_for_review(batch, day02):
    flags = rows_of(batch.rows, "atk_course_lib")[day02.EX1]["flags"]
    assert "course_lib" in flags and "course_lib.checks.day02.run_check" in flags
    assert "numpy.isclose" in rows_of(batch.rows, "atk_numpy")[day02.EX1]["flags"]
    # (a submission graded at the same time as atk_files may share the "files changed" flag)
    assert all(f.startswith("course files changed") for f in rows_of(batch.rows, "correct")[day02.EX1]["flags"].split(" | ")
               if f)


def test_results_and_course_files_written_by_a_submission(batch, day02):
    journal = (batch.out / "journal.jsonl").read_text(encoding="utf-8")
    assert "forged" not in journal and len(journal.splitlines()) == len(EXPECTED)
    assert "atk_files,6" not in (batch.out / "gradebook.csv").read_text(encoding="utf-8")
    flags = rows_of(batch.rows, "atk_files")[day02.EX1]["flags"]
    if batch.sandboxed:   # the sandbox shows neither --out nor course_lib: nothing was written at all
        assert "check_lloyd_step(f):\n    return None" not in (batch.course_copy / "checks" / "day02.py").read_text()
        assert not batch.summary.warnings and "course files changed" not in flags, batch.log
    else:                 # without it the writes happen; the grader restores the journal and flags the change
        assert any("journal.jsonl was changed by something other than the grader" in w for w in batch.summary.warnings)
        assert "course files changed on disk" in flags
        assert any("course files changed during grading" in w for w in batch.summary.warnings)


def test_gradebook_json_and_feedback(batch):
    out = batch.out
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    assert book["day"] == "day02" and book["max_points"] == 6 and len(book["rows"]) == len(batch.rows)
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


def test_hidden_tests_cannot_be_read_back_from_the_kernel(batch):
    """Answer cells that run after an exercise's tests search the kernel's caches for them."""
    book = json.loads((batch.out / "gradebook.json").read_text(encoding="utf-8"))
    peek = next(s for s in book["submissions"] if s["student"] == "peek")
    page = (batch.out / peek["feedback"]).read_text(encoding="utf-8")
    assert page.count("PEEK []") == 2, page
    for leaked in ("far-apart pair", "_labels, _centers = lloyd_step", "BEGIN HIDDEN TESTS"):
        assert leaked not in page
        assert not any(leaked in p.read_text(errors="replace") for p in (batch.out / "logs").iterdir())


def test_rerun_skips_everything_already_graded(batch):
    subs = batch.out.parent / "submitted"
    lines = []
    summary = grade_batch([subs], "day02", batch.out, GradeOptions(**OPTIONS, sandbox=batch.sandboxed),
                          log=lines.append)
    assert summary.graded_now == 0 and summary.skipped == len(EXPECTED), lines
    with open(batch.out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == batch.rows


# --- the command line: interrupted and resumed ------------------------------------------------------

def test_interrupted_run_resumes_without_regrading_or_losing_rows(tmp_path, tiny_day, tiny_submission, write,
                                                                  sandbox_works):
    # A throw-away course (the command finds solutions/ from its working folder) with the tiny day.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "learning-without-labels"\n', encoding="utf-8")
    solution = tiny_day(tmp_path / "solutions")
    answered = tiny_submission(solution, double="def double(x):\n    return 2 * x",
                               one="def one():\n    return 1\n\ntime.sleep(6)   # slow enough to be interrupted")
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(subs / "amy" / "answers.txt", b"my answers are in my head")   # graded at once
    write(subs / "ben" / "day99_tiny.ipynb", answered)                   # runs a kernel
    command = [sys.executable, "-m", "course_lib", "grade", str(subs), "--day", "99", "--out", str(out),
               "--workers", "1", "--timeout", "60", *([] if sandbox_works else ["--no-sandbox"])]
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
    options = GradeOptions(cell_timeout=60, sandbox=sandbox_works)
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
    book = Gradebook(out, load_assignment(99, tmp_path / "solutions"))
    assert len(book.records) == 3
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"amy", "ben_renamed"} and rows["ben_renamed"]["total"] == "4"

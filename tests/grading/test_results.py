"""Statuses, reasons and scoring (course_lib.grading.results).

A status must follow from what happened, never from how a message is worded: the tests reword every
sentence of ``MESSAGES`` (and the self-checks' own messages) and check that no status moves.
"""

import csv
import json
import os
from types import SimpleNamespace

import pytest

from course_lib.grading import results
from course_lib.grading.assignment import Exercise
from course_lib.grading.plan import Step, StepKind
from course_lib.grading.results import (ExerciseResult, Failure, FailureKind, Status, SubmissionResult, SubmissionStatus,
                                        say, score_exercise)

EXERCISE = Exercise("ex_test", 2.0, 3, "Exercise", ("ex",))
STEPS = [Step(StepKind.BOOT, ""), Step(StepKind.TRUSTED, "x = 1", 1), Step(StepKind.CAPTURE, "[]"),
         Step(StepKind.STUDENT, "def f(): ...", 2, "ex", "ex_test"), Step(StepKind.TEST, "check(f)", 3, "ex_test", "ex_test")]


def verdict(passed=False, checks=(), error=None, tampered=()):
    return {"passed": passed, "checks": [dict(status=s, message=m) for s, m in checks], "error": error,
            "tampered": list(tampered), "restored": []}


def error(kind, message, assertion=False, not_implemented=False):
    return {"type": kind, "message": message, "assertion": assertion, "not_implemented": not_implemented}


def cases(message="a message"):
    """name -> (runner facts, plan facts, expected status); every sentence built now, through MESSAGES."""
    failure = {kind: Failure(kind, say({FailureKind.CELL_TIMEOUT: "cell_timeout", FailureKind.NOTEBOOK_TIMEOUT:
                                        "notebook_timeout", FailureKind.CRASHED: "crashed"}[kind], seconds=5, how=message))
               for kind in FailureKind}
    v = {"ex_test": None}
    return {
        "passed": (dict(verdicts={"ex_test": verdict(True)}), {}, Status.PASSED),
        "check fails": (dict(verdicts={"ex_test": verdict(checks=[("pass", message), ("fail", message)])}), {},
                        Status.FAILED),
        "check fails, MemoryError in its words": (dict(verdicts={"ex_test": verdict(checks=[("fail", "MemoryError")])}),
                                                  {}, Status.FAILED),
        "check errors out of memory": (dict(verdicts={"ex_test": verdict(checks=[("error", "raised MemoryError")])}), {},
                                       Status.ERROR),
        "check not done": (dict(verdicts={"ex_test": verdict(checks=[("todo", message)])}), {}, Status.NOT_ATTEMPTED),
        "calls the reference": (dict(verdicts={"ex_test": verdict(checks=[("reference", message)])}), {},
                                Status.REFERENCE),
        "unknown check status": (dict(verdicts={"ex_test": verdict(checks=[("odd", message)])}), {}, Status.ERROR),
        "tampered": (dict(verdicts={"ex_test": verdict(tampered=["numpy.isclose"])}), {}, Status.INTEGRITY),
        "hidden assertion": (dict(verdicts={"ex_test": verdict(error=error("AssertionError", message, True))}), {},
                             Status.FAILED),
        "raises": (dict(verdicts={"ex_test": verdict(error=error("ValueError", message))}), {}, Status.ERROR),
        "NameError of an added cell": (dict(verdicts={"ex_test": verdict(error=error(
            "NameError", "name 'g' is not defined"))}), {"dropped_names": {"g"}}, Status.ERROR),
        "out of memory": (dict(verdicts={"ex_test": verdict(error=error("MemoryError", message))}), {}, Status.ERROR),
        "NotImplementedError": (dict(verdicts={"ex_test": verdict(error=error("NotImplementedError", message,
                                                                               not_implemented=True))}), {},
                                Status.NOT_ATTEMPTED),
        "answer times out": (dict(fatal={3: failure[FailureKind.CELL_TIMEOUT]}, verdicts=v), {}, Status.TIMEOUT),
        "notebook times out in the answer": (dict(fatal={3: failure[FailureKind.NOTEBOOK_TIMEOUT]}, verdicts=v), {},
                                             Status.TIMEOUT),
        "answer crashes": (dict(fatal={3: failure[FailureKind.CRASHED]}, verdicts=v), {}, Status.CRASHED),
        "tests crash": (dict(fatal={4: failure[FailureKind.CRASHED]}, verdicts=v), {}, Status.CRASHED),
        "tests time out": (dict(fatal={4: failure[FailureKind.CELL_TIMEOUT]}, verdicts=v), {}, Status.TIMEOUT),
        "missing": (dict(verdicts={"ex_test": verdict(error=error("NameError", message))}),
                    {"missing": {"ex_test": "ex"}}, Status.MISSING),
        "stopped before": (dict(verdicts={}, stopped=say("restart_limit", restarts=3)), {}, Status.NOT_RUN),
        "earlier cell crashed": (dict(verdicts={}, fatal={1: failure[FailureKind.CRASHED]}), {}, Status.NOT_RUN),
        "no verdict": (dict(verdicts={}), {}, Status.ERROR),
        "nothing": (dict(verdicts={"ex_test": verdict()}), {}, Status.FAILED),
    }


def score(runner_facts, plan_facts):
    runner = SimpleNamespace(**{"fatal": {}, "errors": {3: "ValueError: x"}, "verdicts": {}, "stopped": "",
                                **runner_facts})
    plan = SimpleNamespace(**{"steps": STEPS, "missing": {}, "dropped_names": set(), **plan_facts})
    return score_exercise(EXERCISE, runner, plan, memory_mb=1024)


def test_each_status_and_its_reason():
    for name, (runner_facts, plan_facts, expected) in cases().items():
        result = score(runner_facts, plan_facts)
        assert result.status is expected, name
        assert (result.points == 2.0) == (expected is Status.PASSED) and bool(result.reason) != (result.points == 2.0)
    spied = "your answer calls course_lib's own implementation (course_lib.losses.nt_xent_loss) instead of computing it"
    reference = score(*cases(spied)["calls the reference"][:2])
    assert reference.reason.startswith("not your own implementation: your answer calls course_lib's own") \
        and reference.points == 0 and str(reference.status) == "reference"
    assert Status.of_check("reference") is Status.REFERENCE and str(Status.NOT_ATTEMPTED) == "not attempted"


def test_rewording_every_message_changes_no_status(monkeypatch):
    before = {name: score(*facts[:2]) for name, facts in cases().items()}
    for key, template in list(results.MESSAGES.items()):
        monkeypatch.setitem(results.MESSAGES, key, "REWORDED[" + template.replace(" ", "~") + "]")
    after = {name: score(*facts[:2]) for name, facts in cases("a quite different sentence, MemoryError").items()}
    assert {n: r.status for n, r in after.items()} == {n: r.status for n, r in before.items()}
    assert all(after[n].reason != before[n].reason for n in before if before[n].reason)


def test_json_round_trip_writes_the_status_values():
    result = SubmissionResult("a" * 64, SubmissionStatus.GRADED,
                              [ExerciseResult("e", "t", 0.0, 2.0, Status.NOT_ATTEMPTED, "r")], notes=["n"])
    data = result.to_json()
    assert json.loads(json.dumps(data))["exercises"][0]["status"] == "not attempted" and data["status"] == "graded"
    assert SubmissionResult.from_json(data) == result
    with pytest.raises(ValueError):
        SubmissionResult.from_json({**data, "status": "great"})


# --- the same on a graded batch ----------------------------------------------------------------------

TINY_ANSWERS = {  # student -> (answer of "double", answer of "one")
    "right": ("def double(x):\n    return x + x", "def one():\n    return 1"),
    "raises": ("def double(x):\n    raise ValueError('no')", None),
    "wrong": ("def double(x):\n    return 2 * abs(x)", "def one():\n    return 2"),
    "loops": ("def double(x):\n    return 2 * x\nwhile True:\n    pass", "def one():\n    return 1"),
    "killed": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "def one():\n    return 1"),
    "slow": ("def double(x):\n    return 2 * x", "def one():\n    return 1\ntime.sleep(3600)"),
}


@pytest.mark.slow
def test_rewording_every_message_changes_no_status_of_a_batch(tmp_path, monkeypatch, tiny_day, tiny_submission, write,
                                                              sandbox_works):
    from course_lib.grading.batch import grade_batch
    from course_lib.grading.options import GradeOptions

    solution = tiny_day(tmp_path / "solutions")
    for student, (double, one) in TINY_ANSWERS.items():
        write(tmp_path / "subs" / student / solution.name, tiny_submission(solution, double, one))
    nb = tiny_submission(solution, "def double(x):\n    return 2 * x")
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "day99_one"]
    write(tmp_path / "subs" / "missing" / solution.name, nb)
    write(tmp_path / "subs" / "pdf" / "x.pdf", b"%PDF-1.4")
    cell_timeout = max(10, int(os.environ.get("GRADING_TEST_CELL_TIMEOUT", "0")) // 10)   # see test_batch.py
    options = GradeOptions(cell_timeout=cell_timeout, notebook_timeout=100 * cell_timeout, workers=2,
                           sandbox=sandbox_works)

    def statuses(out):
        grade_batch([tmp_path / "subs"], 99, out, options, solutions_dir=tmp_path / "solutions", log=lambda line: None)
        with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return {(r["student"], r["exercise"]): r["status"] for r in rows}, {r["reason"] for r in rows if r["reason"]}

    plain, plain_reasons = statuses(tmp_path / "plain")
    for key, template in list(results.MESSAGES.items()):
        monkeypatch.setitem(results.MESSAGES, key, "REWORDED[" + template.replace(" ", "~") + "]")
    reworded, reworded_reasons = statuses(tmp_path / "reworded")
    assert reworded == plain
    assert {s for s in plain.values()} >= {"passed", "error", "failed", "not attempted", "timeout", "crashed",
                                            "missing", "not graded"}, plain
    assert not plain_reasons & {r for r in reworded_reasons if "not a notebook" not in r}

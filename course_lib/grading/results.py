"""What grading found: statuses, failure kinds, the reasons shown for lost points, and the results.

An exercise's :class:`Status` is decided from structured facts only — the kind of a failure as the
runner recorded it (:class:`FailureKind`), the guard's verdict record (``passed``, ``tampered``,
the self-checks' ``status``, the error's type) — never from the wording of a message. The
sentences that explain a status come from :data:`MESSAGES`; rewording them cannot change a grade
(``tests/grading/test_results.py`` rewords them all and checks that no status moves).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum

from course_lib.grading.plan import StepKind


class Status(str, Enum):
    """An exercise's status in the gradebook (the ``status`` column; values are what is written)."""

    PASSED = "passed"
    FAILED = "failed"                # a self-check or hidden test did not hold
    ERROR = "error"                  # the code raised, or ran out of memory
    NOT_ATTEMPTED = "not attempted"  # still raises NotImplementedError
    MISSING = "missing"              # the answer cell is not in the submission
    TIMEOUT = "timeout"
    CRASHED = "crashed"              # the kernel died
    NOT_RUN = "not run"              # grading stopped, or an earlier cell failed fatally
    INTEGRITY = "integrity"          # the code changed the grader's checks while they ran
    NOT_GRADED = "not graded"        # not a notebook, another day's, too large, or a grader error
    REFERENCE = "reference"          # the answer calls course_lib's own implementation of the exercise

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of_check(cls, check_status: str) -> Status:
        """The exercise status for a self-check that did not pass (``CheckResult.status``)."""
        return _CHECK_STATUS.get(check_status, cls.ERROR)


# course_lib.checks.CheckResult.status -> the exercise's status when that check is the first that did
# not pass. The one place that maps the checks' vocabulary to the gradebook's.
_CHECK_STATUS = {
    "fail": Status.FAILED,
    "error": Status.ERROR,
    "todo": Status.NOT_ATTEMPTED,
    "reference": Status.REFERENCE,
}


class SubmissionStatus(str, Enum):
    """What happened to a submitted file as a whole."""

    GRADED = "graded"
    INVALID = "invalid"   # not a usable notebook of this day: every exercise "not graded"
    ERROR = "error"       # a grader problem; recorded as not final, so a re-run retries it

    def __str__(self) -> str:
        return self.value


class FailureKind(Enum):
    """Why the runner had to stop a step (set where it happened, in the runner)."""

    CELL_TIMEOUT = "cell timeout"
    NOTEBOOK_TIMEOUT = "notebook timeout"
    CRASHED = "crashed"

    @property
    def status(self) -> Status:
        """The exercise status this failure gives: ``Status.CRASHED`` for a crash, else ``Status.TIMEOUT``."""
        return Status.CRASHED if self is FailureKind.CRASHED else Status.TIMEOUT


@dataclass(frozen=True)
class Failure:
    """A step the runner stopped: its kind and the sentence that describes it."""

    kind: FailureKind
    reason: str


# Every sentence the grader writes into a reason, a note or a death report.
MESSAGES = {
    # the runner
    "cell_timeout": "ran longer than {seconds:g} s and was stopped (an infinite loop?)",
    "notebook_timeout": "the notebook ran longer than {seconds:g} s",
    "crashed": "crashed the kernel ({how})",
    "kernel_died": "the kernel died",
    "on_replay": "{reason} (on replay)",
    "restart_limit": "grading stopped after {restarts} kernel restarts",
    "death_unresponsive": "the kernel stopped responding",
    "death_signal": "the kernel process died from {signal}",
    "death_exit": "the kernel process exited with status {code}",
    # an exercise's reason
    "answer_stopped": "{failure}: stopped while running your answer cell",
    "answer_failed": "your answer cell {failure}",
    "tests_stopped": "{failure}: stopped while running this exercise's tests",
    "tests_failed": "the tests of this exercise {failure}",
    "missing": "the answer cell {grade_id!r} is missing from the submission",
    "not_run_stopped": "{stopped} before this exercise's tests ran",
    "not_run_earlier": "not tested: an earlier cell {failure}",
    "no_verdict": "the tests produced no verdict (the kernel's output was lost or tampered with)",
    "integrity": "your code changed the grader's checks while they ran ({changed}); no points",
    "not_attempted": "not attempted: the answer still raises NotImplementedError",
    "answer_raised": " (your answer cell raised {error})",
    "memory": "ran out of memory (the cap is {memory_mb} MB): {message}",
    "check_failed": "self-check failed: {message}{suffix}",
    "check_error": "self-check error: {message}{suffix}",
    "check_reference": "not your own implementation: {message}{suffix}",
    "hidden_failed": "hidden test failed: {message}{suffix}",
    "hidden_failed_silent": "an assertion did not hold",
    "raised": "your code raised {type}: {message}{suffix}",
    "added_cell": (" -- it is defined in a cell you added, which the grader does not run; "
                   "put it in the answer cell"),
    "not_passed": "the tests did not pass",
    # a whole submission
    "no_answers": "none of the answer cells of {name} were found: is this the {day} notebook?{hint}",
    "no_answers_hint": " (it has cells of {days})",
    "too_large": "not graded: the file is {mb} MB, too large for a lesson notebook",
    "grader_error": "grader error: {type}: {message}",
    "broken_instructor_cell": ("grader error: an instructor cell failed before any answer ran ({cell}); "
                               "check the environment or raise --memory-mb (now {memory_mb}), then run again"),
    "broken_cell": "cell {index}: {why}",
    # notes and flags
    "note_output_dropped": "the notebook printed more than {limit_kb} KB of output; {dropped_kb} KB beyond that were dropped",
    "note_restarts": "the kernel was restarted {restarts} time(s)",
    "note_instructor_skipped": "instructor cell {index} {reason} (it calls your code) and was skipped",
    "note_manual": "{grade_id} is graded by hand (not in these points)",
    "note_no_sandbox": ("graded with --no-sandbox: this submission's code ran outside the sandbox, "
                        "with the grader's access to this machine"),
    "flag_restored": "changed course_lib/NumPy/builtins (undone before the tests): {items}",
    "flag_tampered": "changed the grader's checks while they ran",
}


def say(key: str, **fields) -> str:
    """The grader's sentence ``key`` of :data:`MESSAGES` with ``fields`` filled in."""
    return MESSAGES[key].format(**fields)


@dataclass
class ExerciseResult:
    """One gradebook row's grading part."""

    exercise: str
    title: str
    points: float
    max_points: float
    status: Status
    reason: str = ""


@dataclass
class SubmissionResult:
    """The outcome for one submitted file content (shared by identical files)."""

    sha256: str
    status: SubmissionStatus
    exercises: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    restarts: int = 0
    final: bool = True
    graded_at: str = ""
    assignment_sha256: str = ""

    @property
    def total(self) -> float:
        """Points earned, summed over the exercises."""
        return float(sum(e.points for e in self.exercises))

    @property
    def max_total(self) -> float:
        """Points available, summed over the exercises."""
        return float(sum(e.max_points for e in self.exercises))

    def to_json(self) -> dict:
        """A JSON-ready dict (enum members become their string values)."""
        data = asdict(self)
        data["status"] = self.status.value
        for row in data["exercises"]:
            row["status"] = Status(row["status"]).value
        return data

    @classmethod
    def from_json(cls, data: dict) -> SubmissionResult:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: an unknown status; KeyError / TypeError: a malformed record.
        """
        data = dict(data)
        data["status"] = SubmissionStatus(data["status"])
        data["exercises"] = [ExerciseResult(**{**e, "status": Status(e["status"])}) for e in data.get("exercises", [])]
        return cls(**data)


def all_exercises(assignment, status: Status, reason: str) -> list[ExerciseResult]:
    """The same zero-point row for every exercise of ``assignment``."""
    return [ExerciseResult(e.grade_id, e.title, 0.0, e.points, status, reason) for e in assignment.exercises]


def score_exercise(exercise, runner, plan, memory_mb: int) -> ExerciseResult:
    """Points, status and reason for one exercise from what the runner recorded.

    Args:
        exercise: an :class:`~course_lib.grading.assignment.Exercise`.
        runner: the finished :class:`~course_lib.grading.runner.Runner` (``fatal``: step index ->
            :class:`Failure`; ``errors``: step index -> ``"Type: message"``; ``verdicts``: exercise ->
            the guard's verdict record; ``stopped``: why grading stopped early, or ``""``).
        plan: the :class:`~course_lib.grading.plan.Plan` that was run.
        memory_mb: the memory cap, quoted in out-of-memory reasons.
    """
    def lost(status: Status, reason: str) -> ExerciseResult:
        return ExerciseResult(exercise.grade_id, exercise.title, 0.0, exercise.points, status, reason)

    steps = plan.steps
    for kind, stopped, failed in ((StepKind.STUDENT, "answer_stopped", "answer_failed"),
                                  (StepKind.TEST, "tests_stopped", "tests_failed")):
        for index, failure in runner.fatal.items():  # this exercise's answer cell or tests timed out / crashed
            step = steps[index]
            if step.kind is kind and step.exercise == exercise.grade_id:
                key = stopped if failure.kind is FailureKind.NOTEBOOK_TIMEOUT else failed
                return lost(failure.kind.status, say(key, failure=failure.reason))
    verdict = runner.verdicts.get(exercise.grade_id)
    if exercise.grade_id in plan.missing and not (verdict or {}).get("passed"):
        return lost(Status.MISSING, say("missing", grade_id=plan.missing[exercise.grade_id]))
    if verdict is None:
        if runner.stopped:
            return lost(Status.NOT_RUN, say("not_run_stopped", stopped=runner.stopped))
        earlier = [failure.reason for index, failure in runner.fatal.items() if steps[index].kind is not StepKind.STUDENT]
        if earlier:
            return lost(Status.NOT_RUN, say("not_run_earlier", failure=earlier[-1]))
        return lost(Status.ERROR, say("no_verdict"))
    if verdict.get("passed"):
        return ExerciseResult(exercise.grade_id, exercise.title, exercise.points, exercise.points, Status.PASSED, "")
    if verdict.get("tampered"):
        return lost(Status.INTEGRITY, say("integrity", changed=", ".join(verdict["tampered"][:4])))
    checks = verdict.get("checks") or []
    error = verdict.get("error")
    if any(c.get("status") == "todo" for c in checks) or (error and error.get("not_implemented")):
        return lost(Status.NOT_ATTEMPTED, say("not_attempted"))
    answer_errors = [runner.errors[i] for i in runner.errors
                     if steps[i].kind is StepKind.STUDENT and steps[i].exercise == exercise.grade_id]
    suffix = say("answer_raised", error=answer_errors[-1]) if answer_errors else ""
    for check in checks:
        if check.get("status") == "pass":
            continue
        status, message = Status.of_check(check.get("status")), check.get("message")
        if status is Status.ERROR and "MemoryError" in str(message):  # the wording only: the status stays ERROR
            return lost(status, say("memory", memory_mb=memory_mb, message=message))
        key = {Status.FAILED: "check_failed", Status.REFERENCE: "check_reference"}.get(status, "check_error")
        return lost(status, say(key, message=message, suffix=suffix))
    if error:
        message = error.get("message") or ""
        if error.get("type") == "MemoryError":
            return lost(Status.ERROR, say("memory", memory_mb=memory_mb, message=f"MemoryError {message}".strip()))
        if error.get("assertion"):
            return lost(Status.FAILED, say("hidden_failed", message=message or say("hidden_failed_silent"),
                                           suffix=suffix))
        name = re.match(r"name '(\w+)' is not defined", message)  # adds a hint to the reason; never the status
        if error.get("type") == "NameError" and name and name.group(1) in plan.dropped_names:
            message += say("added_cell")
        return lost(Status.ERROR, say("raised", type=error.get("type"), message=message, suffix=suffix).rstrip())
    return lost(Status.FAILED, say("not_passed"))


def num(value: float):
    """Points as written in the gradebook: ``2`` rather than ``2.0``, at most 3 decimals."""
    return int(value) if float(value).is_integer() else round(float(value), 3)

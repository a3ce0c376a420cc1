"""Running one submission: its plan's steps in a kernel, replay after a crash, and the result.

:func:`grade_notebook_bytes` reads and rebuilds a submission, runs it with a :class:`Runner` and
scores each exercise (:func:`~course_lib.grading.results.score_exercise`). The runner records
what went wrong where it happens — a :class:`~course_lib.grading.results.Failure` for a step it had
to stop, the error of a cell that raised, the guard's verdict per exercise — and the scoring reads
only those records.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading.assignment import Assignment, nbgrader_meta
from course_lib.grading.guard import VERDICT_MIME, short
from course_lib.grading.kernel import Kernel, Limits, OutputBudget, RunState, kernel_env
from course_lib.grading.options import GradeOptions
from course_lib.grading.plan import Plan, StepKind, build_plan
from course_lib.grading.results import (Failure, FailureKind, Status, SubmissionResult, SubmissionStatus, all_exercises,
                                        say, score_exercise)
from course_lib.grading.submissions import read_submission

_GUARD = "__import__('course_lib.grading.guard', fromlist=['_'])"


class Cancelled(Exception):
    """The run is being stopped (Ctrl-C); the submission is left for the next run."""


@dataclass
class Context:
    """Shared, read-only state of a grading run.

    Attributes:
        assignment: the day being graded.
        options: the run's limits and switches.
        boot_code: the kernels' boot step (see :func:`~course_lib.grading.guard.boot_code`).
        logs: folder of the kernels' logs.
        sandbox: the :class:`~course_lib.grading.sandbox.Sandbox`, or None (``--no-sandbox``).
        slots: free sandbox slots (one per worker); a slot picks the kernel's uid when grading as root.
    """

    assignment: Assignment
    options: GradeOptions
    boot_code: str
    logs: Path
    sandbox: object = None
    slots: queue.Queue = field(default_factory=queue.Queue)

    def __post_init__(self):
        if self.slots.empty():
            for slot in range(max(1, self.options.workers)):
                self.slots.put(slot)

    def limits(self) -> Limits:
        """The kernel limits: memory and file size always; processes, open files and CPU in the sandbox."""
        options = self.options
        if self.sandbox is None:
            return Limits(options.memory_mb, options.file_size_mb)
        cpu = options.cpu_seconds or int(options.notebook_timeout * (os.cpu_count() or 1))
        return Limits(options.memory_mb, options.file_size_mb, options.max_processes, options.max_open_files, cpu)


class Runner:
    """Executes a plan's steps for one submission, restarting the kernel after fatal steps.

    Attributes (read by the scoring):
        fatal: step index -> :class:`~course_lib.grading.results.Failure` (timed out or crashed).
        errors: step index -> ``"Type: message"`` of a cell that raised.
        verdicts: exercise -> the guard's verdict record.
        stopped: why grading stopped early, or ``""``.
        restarts: kernel restarts.
        budget: the notebook's output budget (``budget.dropped`` bytes were not kept).
    """

    def __init__(self, plan: Plan, ctx: Context, workdir: Path, log_path: Path | None, cancel: threading.Event,
                 register, slot: int = 0):
        self.plan, self.ctx, self.workdir, self.log_path = plan, ctx, workdir, log_path
        self.cancel, self.register, self.slot = cancel, register, slot
        self.options = ctx.options
        self.budget = OutputBudget(self.options.max_output_kb * 1024)
        self.session: Kernel | None = None
        self.skipped: set[int] = set()
        self.fatal: dict[int, Failure] = {}
        self.errors: dict[int, str] = {}
        self.verdicts: dict[str, dict] = {}
        self.restarts = 0
        self.stopped = ""
        self.deadline = time.monotonic() + self.options.notebook_timeout

    # -- kernel lifecycle --
    def _start(self) -> None:
        self._stop()
        if self.cancel.is_set():
            raise Cancelled()
        sandbox = self.ctx.sandbox
        env = kernel_env(self.options.mode, self.options.workers, self.workdir, sandbox)
        uid = sandbox.uid_for(self.slot) if sandbox is not None else -1
        self.session = Kernel(self.workdir, env, self.ctx.limits(), self.log_path, sandbox, uid)
        self.register(self.session)

    def _stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.register(None)
            self.session = None

    def _code(self, step, nonce: str) -> tuple[str, bool]:
        if step.kind is StepKind.BOOT:
            return self.ctx.boot_code, False
        if step.kind is StepKind.CAPTURE:
            return f"{_GUARD}.capture({step.code})", False
        if step.kind is StepKind.TEST:
            return f"{_GUARD}.run_test({step.grade_id!r}, {step.code!r}, {nonce!r})", False
        return step.code, True

    def _run_step(self, index: int, record: bool = True):
        step = self.plan.steps[index]
        nonce = base64.b32encode(os.urandom(15)).decode() if step.kind is StepKind.TEST else ""
        code, history = self._code(step, nonce)
        remaining = self.deadline - time.monotonic()
        timeout = min(self.options.cell_timeout, remaining)
        if step.kind is StepKind.BOOT:
            timeout = min(max(self.options.cell_timeout, 60), max(remaining, 1))

        def keep(output):
            data = output.get("data")
            return bool(nonce) and isinstance(data, dict) and isinstance(data.get(VERDICT_MIME), dict) and \
                data[VERDICT_MIME].get("nonce") == nonce

        budget = self.budget if record else OutputBudget(self.budget.limit)
        outcome = self.session.execute(code, timeout, budget, history, keep, self.cancel)
        if outcome.state is RunState.CANCELLED:
            raise Cancelled()
        if step.kind is StepKind.TEST and record:
            for output in outcome.outputs:
                data = output.get("data") if isinstance(output, dict) else None
                verdict = data.get(VERDICT_MIME) if isinstance(data, dict) else None
                if isinstance(verdict, dict) and verdict.get("nonce") == nonce:
                    self.verdicts[step.exercise] = verdict
            outcome.outputs = [o for o in outcome.outputs if not keep(o)]
        if record and step.cell_index is not None and step.kind in (StepKind.TRUSTED, StepKind.STUDENT, StepKind.TEST):
            self.plan.notebook.cells[step.cell_index].outputs = outcome.outputs
        return outcome

    def _notebook_timeout(self) -> str:
        return say("notebook_timeout", seconds=self.options.notebook_timeout)

    def _failure(self, outcome) -> Failure:
        if outcome.state is RunState.TIMEOUT:
            if time.monotonic() >= self.deadline - 0.05:
                return Failure(FailureKind.NOTEBOOK_TIMEOUT, self._notebook_timeout())
            return Failure(FailureKind.CELL_TIMEOUT, say("cell_timeout", seconds=self.options.cell_timeout))
        return Failure(FailureKind.CRASHED, say("crashed", how=outcome.evalue or say("kernel_died")))

    def _replay(self, upto: int) -> bool:
        """Restart the kernel and re-run steps before ``upto`` (no tests, no skipped steps)."""
        while True:
            if self.restarts >= self.options.max_restarts:
                self.stopped = say("restart_limit", restarts=self.restarts)
                return False
            self.restarts += 1
            self._start()
            ok = True
            for index in range(upto):
                if index in self.skipped or self.plan.steps[index].kind is StepKind.TEST:
                    continue
                if self.cancel.is_set():
                    raise Cancelled()
                outcome = self._run_step(index, record=False)  # outputs of replays are not kept
                if outcome.state in (RunState.TIMEOUT, RunState.DEAD):
                    if time.monotonic() >= self.deadline:
                        self.stopped = self._notebook_timeout()
                        return False
                    self.skipped.add(index)
                    failure = self._failure(outcome)
                    self.fatal.setdefault(index, Failure(failure.kind, say("on_replay", reason=failure.reason)))
                    ok = False
                    break
                if index == 0 and outcome.state is not RunState.OK:
                    raise RuntimeError(f"grader set-up failed in the kernel: {outcome.ename}: {outcome.evalue}")
            if ok:
                return True

    def run(self) -> None:
        """Run every step (see the module docstring); the kernel is closed afterwards.

        Raises:
            Cancelled: ``cancel`` was set (before a step, during one, or before a kernel start).
            RuntimeError: a kernel (or its sandbox) did not start, the boot step failed or killed the
                kernel, or the boot step failed again when the kernel was restarted for a replay.
        """
        self._start()
        try:
            index = 0
            steps = self.plan.steps
            while index < len(steps):
                if self.cancel.is_set():
                    raise Cancelled()
                if time.monotonic() >= self.deadline:
                    self.stopped = self._notebook_timeout()
                    break
                step = steps[index]
                if step.kind is StepKind.TEST and self._answer_failed(step.exercise):
                    index += 1
                    continue
                outcome = self._run_step(index)
                if step.kind is StepKind.BOOT and outcome.state is not RunState.OK:
                    if outcome.state is RunState.DEAD:
                        raise RuntimeError(f"the grading kernel died while starting ({outcome.evalue}); is the "
                                           f"memory cap of {self.options.memory_mb} MB too low?")
                    raise RuntimeError(f"grader set-up failed in the kernel: {outcome.ename}: {outcome.evalue}")
                if outcome.state in (RunState.TIMEOUT, RunState.DEAD):
                    self.fatal[index] = self._failure(outcome)
                    self.skipped.add(index)
                    if time.monotonic() >= self.deadline:
                        self.stopped = self._notebook_timeout()
                        break
                    if not self._replay(index):
                        break
                elif outcome.state is RunState.ERROR:
                    self.errors[index] = f"{outcome.ename}: {short(outcome.evalue, 200)}"
                index += 1
        finally:
            self._stop()

    def _answer_failed(self, exercise: str | None) -> bool:
        return any(self.plan.steps[i].kind is StepKind.STUDENT and self.plan.steps[i].exercise == exercise
                   for i in self.fatal)


def grade_notebook_bytes(data: bytes, ctx: Context, cancel: threading.Event | None = None,
                         register=lambda session: None, log_name: str = "kernel") -> tuple[SubmissionResult, object]:
    """Grade one submission's bytes. Never raises for anything a submission can contain.

    Returns:
        ``(result, rebuilt notebook with outputs or None)``.

    Raises:
        Cancelled: the run is being stopped.
    """
    assignment, options = ctx.assignment, ctx.options
    cancel = cancel or threading.Event()
    started = time.monotonic()
    sha = hashlib.sha256(data).hexdigest()
    base_notes = [] if ctx.sandbox is not None else [say("note_no_sandbox")]

    def finish(result, nb=None):
        result.notes.extend(base_notes)
        result.seconds = round(time.monotonic() - started, 1)
        result.graded_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        result.assignment_sha256 = assignment.sha256
        return result, nb

    nb, problem = read_submission(data)
    if nb is None:
        return finish(SubmissionResult(sha, SubmissionStatus.INVALID, all_exercises(assignment, Status.NOT_GRADED, problem)))
    plan = build_plan(nb, assignment)
    if plan.matched == 0:
        other = {(nbgrader_meta(c).get("grade_id") or "")[:5] for c in nb.cells} - {"", assignment.day}
        hint = say("no_answers_hint", days=", ".join(sorted(other))) if other else ""
        reason = say("no_answers", name=assignment.name, day=assignment.day, hint=hint)
        return finish(SubmissionResult(sha, SubmissionStatus.INVALID, all_exercises(assignment, Status.NOT_GRADED, reason),
                                       notes=plan.notes))
    slot = ctx.slots.get()
    try:
        with tempfile.TemporaryDirectory(prefix="course-grade-", ignore_cleanup_errors=True) as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "submission.ipynb").write_bytes(data)
            runner = Runner(plan, ctx, tmp, ctx.logs / f"{log_name}.log", cancel, register, slot)
            runner.run()
    finally:
        ctx.slots.put(slot)
    exercises = [score_exercise(e, runner, plan, options.memory_mb) for e in assignment.exercises]
    notes = list(plan.notes)
    if runner.budget.dropped:
        notes.append(say("note_output_dropped", limit_kb=options.max_output_kb, dropped_kb=runner.budget.dropped // 1024))
    if runner.restarts:
        notes.append(say("note_restarts", restarts=runner.restarts))
    for index, failure in runner.fatal.items():
        step = plan.steps[index]
        if step.kind is StepKind.TRUSTED:
            notes.append(say("note_instructor_skipped", index=step.cell_index, reason=failure.reason))
    restored = sorted({item for v in runner.verdicts.values() for item in v.get("restored", [])})
    flags = list(plan.flags)
    if restored:
        flags.append(say("flag_restored", items=", ".join(restored[:6])))
    if any(v.get("tampered") for v in runner.verdicts.values()):
        flags.append(say("flag_tampered"))
    for gid in assignment.manual_cells:
        notes.append(say("note_manual", grade_id=gid))
    # An instructor cell that fails before any student code ran is not the student's doing (a memory cap
    # too low for the day, a broken environment): a grader error, which a re-run retries.
    first_student = next((i for i, step in enumerate(plan.steps) if step.kind is StepKind.STUDENT), len(plan.steps))
    problems = {**runner.errors, **{i: f.reason for i, f in runner.fatal.items()}}
    broken = [say("broken_cell", index=plan.steps[i].cell_index, why=why) for i, why in sorted(problems.items())
              if i < first_student]
    if broken:
        reason = say("broken_instructor_cell", cell=broken[0], memory_mb=options.memory_mb)
        return finish(SubmissionResult(sha, SubmissionStatus.ERROR, all_exercises(assignment, Status.NOT_GRADED, reason),
                                       notes=notes, flags=flags, restarts=runner.restarts, final=False), plan.notebook)
    return finish(SubmissionResult(sha, SubmissionStatus.GRADED, exercises, notes=notes, flags=flags,
                                   restarts=runner.restarts), plan.notebook)

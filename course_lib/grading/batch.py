"""A grading run: scheduling submissions over worker threads, watching the course's files, the CLI entry."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading import sandbox as sandbox_module
from course_lib.grading.assignment import GradingError, load_assignment
from course_lib.grading.feedback import feedback_name, render_feedback
from course_lib.grading.gradebook import GRADEBOOK_CSV, Gradebook, atomic_write
from course_lib.grading.guard import boot_code, package_files, short
from course_lib.grading.kernel import Kernel
from course_lib.grading.options import GradeOptions
from course_lib.grading.results import Status, SubmissionResult, SubmissionStatus, all_exercises, num, say
from course_lib.grading.runner import Cancelled, Context, grade_notebook_bytes
from course_lib.grading.submissions import MAX_SUBMISSION_MB, Submission, discover_submissions

NO_SANDBOX_WARNING = ("grading WITHOUT the sandbox (--no-sandbox): each submission's code runs as your user, "
                      "with your files, network and processes; grade only code you trust this way")


class FileWatch:
    """Hashes of the course's own files, re-checked after every submission."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.baseline = self._hashes()

    def _hashes(self) -> dict[str, str]:
        result = {}
        for path in self.paths:
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for item in files:
                if item.is_file() and "__pycache__" not in item.parts:
                    try:
                        result[str(item)] = hashlib.sha256(item.read_bytes()).hexdigest()
                    except OSError:
                        result[str(item)] = "unreadable"
        return result

    def changes(self) -> list[str]:
        """Files added, removed or changed since the last call."""
        now = self._hashes()
        changed = sorted(k for k in set(now) | set(self.baseline) if now.get(k) != self.baseline.get(k))
        self.baseline = now
        return changed


@dataclass
class BatchSummary:
    """What :func:`grade_batch` did."""

    out: Path
    submissions: int
    graded_now: int
    skipped: int
    errors: int
    seconds: float
    warnings: list[str]


def make_sandbox(options: GradeOptions, hidden, log=print):
    """The run's sandbox, or None with a warning when ``options.sandbox`` is off.

    Raises:
        GradingError: bubblewrap is missing or does not start (one line naming the package).
    """
    if not options.sandbox:
        log(f"WARNING: {NO_SANDBOX_WARNING}")
        return None
    from course_lib import paths

    return sandbox_module.create(options.scratch_mb, [*hidden, Path.home()], paths.data_dir())


def grade_batch(inputs, day, out, options: GradeOptions | None = None, *, solutions_dir=None, package_dir=None,
                log=print) -> BatchSummary:
    """Grade every submission under ``inputs`` for ``day`` into ``out`` (see :mod:`course_lib.grading`).

    Args:
        inputs: files and/or folders of submissions.
        day: ``2``, ``"02"`` or ``"day02"``.
        out: output folder (journal, gradebook, feedback, kernel logs).
        options: limits and switches (default :class:`~course_lib.grading.options.GradeOptions`).
        solutions_dir: folder with the solution notebooks (default the course's ``solutions/``).
        package_dir: the ``course_lib`` package the kernels get (default the one installed).
        log: where progress lines go.

    Raises:
        GradingError: a setup problem (unknown day, no submissions, out folder of another day, no sandbox).
        KeyboardInterrupt: after stopping the kernels; results already recorded are kept.
    """
    options = options or GradeOptions()
    if options.workers < 1:
        raise GradingError("--workers must be at least 1")
    started = time.monotonic()
    assignment = load_assignment(day, solutions_dir)
    submissions = discover_submissions(inputs, assignment.name)
    out = Path(out)
    sandbox = make_sandbox(options, [assignment.solution_path.parent, out, *map(Path, inputs)], log)
    book = Gradebook(out, assignment)
    (out / "feedback").mkdir(exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    import course_lib

    package = Path(package_dir) if package_dir else Path(course_lib.__file__).resolve().parent
    ctx = Context(assignment, options, boot_code(package_files(package), assignment.day), logs, sandbox)
    watch = FileWatch([package, assignment.solution_path])

    by_sha: dict[str, list[Submission]] = {}
    for sub in submissions:
        by_sha.setdefault(sub.sha256, []).append(sub)
    todo = [sha for sha in by_sha if options.force or book.done(sha) is None]
    todo_set = set(todo)
    skipped = len(by_sha) - len(todo)
    for sha, subs in by_sha.items():
        if len(subs) > 1:
            names = ", ".join(str(s.path) for s in subs)
            log(f"note: identical files (graded once): {names}")
    log(f"course grade: {len(submissions)} file(s) for {assignment.name} ({len(by_sha)} distinct); "
        f"{skipped} already graded, {len(todo)} to grade with {options.workers} worker(s)"
        f"{'' if sandbox else ' WITHOUT the sandbox'}; output in {out}")
    book.write(submissions)
    for sha in by_sha:  # feedback for results that were already there (renamed files get theirs)
        if sha not in todo_set:
            for sub in by_sha[sha]:
                target = out / "feedback" / feedback_name(sub)
                if not target.exists():
                    atomic_write(target, render_feedback(sub, book.records[sha], assignment))

    cancel = threading.Event()
    active: dict[str, Kernel | None] = {}
    started_at: dict[str, float] = {}
    active_lock = threading.Lock()
    warnings: list[str] = [] if sandbox else [NO_SANDBOX_WARNING]
    extra_flags: dict[str, list[str]] = {}
    errors = 0

    def stamped(result: SubmissionResult) -> tuple[SubmissionResult, None]:
        if sandbox is None:
            result.notes.append(say("note_no_sandbox"))
        result.assignment_sha256 = assignment.sha256
        result.graded_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        return result, None

    def work(sha):
        subs = by_sha[sha]

        def register(session):
            with active_lock:
                active[sha] = session

        with active_lock:
            started_at[sha] = time.monotonic()
        try:
            size = subs[0].path.stat().st_size
            if size > MAX_SUBMISSION_MB << 20:
                reason = say("too_large", mb=size >> 20)
                return stamped(SubmissionResult(sha, SubmissionStatus.INVALID,
                                                all_exercises(assignment, Status.NOT_GRADED, reason)))
            data = subs[0].path.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                raise OSError("the file changed while it was being graded; re-run")
            return grade_notebook_bytes(data, ctx, cancel, register, log_name=f"{subs[0].submission_id}")
        except Cancelled:
            raise
        except Exception as error:  # a grader problem: recorded, not final (a re-run retries it)
            reason = say("grader_error", type=type(error).__name__, message=short(error, 200))
            return stamped(SubmissionResult(sha, SubmissionStatus.ERROR, all_exercises(assignment, Status.NOT_GRADED, reason),
                                            final=False))
        finally:
            with active_lock:
                active.pop(sha, None)

    pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="grade")
    futures = {}
    done_count = 0
    try:
        for sha in todo:
            futures[pool.submit(work, sha)] = sha
            with active_lock:
                active.setdefault(sha, None)
        pending = set(futures)
        last_line = time.monotonic()
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            if not finished and time.monotonic() - last_line > 30:
                with active_lock:
                    running = [(by_sha[s][0].student, time.monotonic() - t) for s, t in started_at.items()]
                log("      still grading: " + ", ".join(f"{who} ({age:.0f} s)" for who, age in running))
                last_line = time.monotonic()
            for future in finished:
                sha = futures[future]
                result, nb = future.result()
                changed = watch.changes()
                if changed:
                    with active_lock:
                        suspects = set(active) | {sha}
                    names = ", ".join(Path(c).name for c in changed[:5])
                    warnings.append(f"course files changed during grading: {', '.join(changed[:5])}")
                    flag = (f"course files changed on disk while this submission ran ({names}); the kernels used "
                            "the copy read at start-up, so grades are unaffected: review the submission")
                    result.flags.append(flag)
                    for other in suspects - {sha}:
                        extra_flags.setdefault(other, []).append(flag)
                result.flags.extend(extra_flags.pop(sha, []))
                result.assignment_sha256 = assignment.sha256
                book.add(result, submissions)
                for sub in by_sha[sha]:
                    atomic_write(out / "feedback" / feedback_name(sub), render_feedback(sub, result, assignment, nb))
                done_count += 1
                errors += result.status is SubmissionStatus.ERROR
                with active_lock:
                    started_at.pop(sha, None)
                log(_progress_line(done_count, len(todo), by_sha[sha], result))
                last_line = time.monotonic()
    except KeyboardInterrupt:
        cancel.set()
        with active_lock:
            sessions = [s for s in active.values() if s is not None]
        for session in sessions:
            session.kill()   # the worker threads notice, clean up and stop
        pool.shutdown(wait=True, cancel_futures=True)
        book.finish(submissions)
        log(f"course grade: interrupted; {done_count} submission(s) graded in this run are saved in {out} "
            "(re-run the same command to continue)")
        raise
    pool.shutdown(wait=True)
    book.finish(submissions)
    warnings += book.tamper_events
    for warning in warnings:
        log(f"WARNING: {warning}")
    seconds = time.monotonic() - started
    log(f"course grade: {done_count} graded in {seconds:.0f} s, {skipped} skipped; gradebook: "
        f"{out / GRADEBOOK_CSV} ({len(book.rows(submissions))} rows)")
    return BatchSummary(out, len(submissions), done_count, skipped, errors, seconds, warnings)


def _progress_line(done: int, total: int, subs: list[Submission], result: SubmissionResult) -> str:
    who = ", ".join(s.student for s in subs)
    head = (f"[{done:>{len(str(total))}}/{total}] {who}: {num(result.total)}/{num(result.max_total)} points, "
            f"{result.status}, {result.seconds:.1f} s")
    lost = [f"    {e.exercise}: {e.reason}" for e in result.exercises if e.points < e.max_points]
    return "\n".join([head, *lost[:4]])


def run_cli(args) -> int:
    """``course grade``: the implementation behind the CLI.

    Args:
        args: the parsed ``course grade`` options (an :class:`argparse.Namespace`).

    Returns:
        The exit status: 1 when a submission ended in a grader error (retried on a re-run), else 0.

    Raises:
        GradingError: a setup problem (see :func:`grade_batch`), including ``--workers`` below 1.
        KeyboardInterrupt: the run was interrupted; results already recorded are kept.
    """
    options = GradeOptions(cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout, workers=args.workers,
                           memory_mb=args.memory_mb, max_output_kb=args.max_output_kb, force=args.force,
                           sandbox=not args.no_sandbox, scratch_mb=args.scratch_mb)
    summary = grade_batch(args.submissions, args.day, args.out, options)
    return 1 if summary.errors else 0

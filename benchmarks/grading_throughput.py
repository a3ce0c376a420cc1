"""Throughput of ``course grade``: submissions graded per minute, with and without the sandbox, 1 and 2 workers.

Generates N distinct, fully correct submissions of a day (the lesson with the solution's answers,
each with a different comment so that no two files share an id), grades them once per
configuration into a fresh output folder, and prints submissions per minute, the CPU time the
kernels used, and what the sandbox costs. Configurations run interleaved (sandbox off, on, off,
on, ...) so that a change in the machine's load hits both alike.

    python benchmarks/grading_throughput.py [--n 6] [--day 2] [--workers 1 2] [--no-sandbox-only]

Only days whose solution notebook exists can be used; Day 02 is the fastest.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from course_lib import lessons, paths
from course_lib.grading.assignment import load_assignment
from course_lib.grading.batch import grade_batch
from course_lib.grading.gradebook import Gradebook
from course_lib.grading.options import GradeOptions
from course_lib.grading.sandbox import SandboxError, create


def make_submissions(folder: Path, day: str, n: int) -> None:
    """Write ``n`` correct submissions, one per student folder."""
    assignment = load_assignment(day)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in assignment.solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for i in range(n):
        nb = lessons.make_lesson(assignment.solution)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id] + f"\n# submission {i}\n"
        target = folder / f"student{i:03d}" / assignment.solution_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(lessons.dumps(nb), encoding="utf-8")


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that the CPU time of sandboxed
    kernels, whose bwrap leaves the sandbox to be reaped by someone else, counts among its children."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans() -> None:
    """Reap what was handed to this subreaper and is not reaped yet (call when no grading runs)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the kernels)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="number of submissions (default 6)")
    parser.add_argument("--day", default="2", help="day to grade (default 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--timeout", type=float, default=300, help="per-cell timeout in seconds")
    parser.add_argument("--no-sandbox-only", action="store_true", help="measure only without the sandbox")
    args = parser.parse_args(argv)
    become_subreaper()
    sandboxes = [False]
    if not args.no_sandbox_only:
        try:
            create(64, [])
            sandboxes.append(True)
        except SandboxError as error:
            print(f"(sandbox not measured: {error})")
    reap_orphans()
    print(f"grading throughput: {args.n} correct submissions of day {args.day}, {os.cpu_count()} CPU core(s), "
          f"load average {os.getloadavg()[0]:.1f} at start; solutions in {paths.solutions_dir()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        subs = Path(tmp) / "submitted"
        make_submissions(subs, args.day, args.n)
        for workers in args.workers:
            for sandbox in sandboxes:
                out = Path(tmp) / f"out-{workers}-{int(sandbox)}"
                load, cpu, started = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
                options = GradeOptions(workers=workers, cell_timeout=args.timeout, sandbox=sandbox)
                summary = grade_batch([subs], args.day, out, options, log=lambda line: None)
                seconds = time.perf_counter() - started
                reap_orphans()
                cpu = cpu_seconds() - cpu
                book = Gradebook(out, load_assignment(args.day))
                full = sum(1 for r in book.records.values() if r.total == r.max_total)
                rows.append((workers, sandbox, seconds, cpu, summary.graded_now, full, load))
                print(f"  workers={workers} sandbox={'on ' if sandbox else 'off'}: {summary.graded_now} graded ({full} "
                      f"with full points) in {seconds:.1f} s wall, {cpu:.1f} s CPU (load {load:.1f} at start) = "
                      f"{60 * summary.graded_now / seconds:.2f} submissions per minute", flush=True)
    print()
    print("workers  sandbox  wall_s   cpu_s  submissions/min")
    for workers, sandbox, seconds, cpu, graded, _, _ in rows:
        print(f"{workers:>7}  {'on' if sandbox else 'off':>7}  {seconds:6.1f}  {cpu:6.1f}  {60 * graded / seconds:15.2f}")
    if len(sandboxes) == 2:
        print()
        for workers in args.workers:
            off, on = ([r for r in rows if r[0] == workers and r[1] is s][0] for s in (False, True))
            print(f"sandbox cost at {workers} worker(s): {100 * (on[2] / off[2] - 1):+.1f} % wall time, "
                  f"{100 * (on[3] / off[3] - 1):+.1f} % CPU time")
    return 0 if all(full == args.n for *_, full, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

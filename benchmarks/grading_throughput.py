"""Throughput of ``course grade``: submissions graded per minute with 1 and with 2 workers.

Generates N distinct, fully correct Day-02 submissions (the lesson with the solution's answers,
each with a different comment so that no two files share an id), grades them once per worker
count into a fresh output folder, and prints submissions per minute.

    python benchmarks/grading_throughput.py [--n 6] [--day 2] [--workers 1 2]

Only days whose solution notebook exists can be used; Day 02 is the fastest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from course_lib import grading, lessons as notebooks, paths


def make_submissions(folder: Path, day: str, n: int) -> None:
    """Write ``n`` correct submissions, one per student folder."""
    assignment = grading.load_assignment(day)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in assignment.solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for i in range(n):
        nb = notebooks.make_lesson(assignment.solution)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id] + f"\n# submission {i}\n"
        target = folder / f"student{i:03d}" / assignment.solution_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(notebooks.dumps(nb), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="number of submissions (default 6)")
    parser.add_argument("--day", default="2", help="day to grade (default 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--timeout", type=float, default=300, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"grading throughput: {args.n} correct submissions of day {args.day}, {os.cpu_count()} CPU core(s), "
          f"load average {load:.1f} at start; solutions in {paths.solutions_dir()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        subs = Path(tmp) / "submitted"
        make_submissions(subs, args.day, args.n)
        for workers in args.workers:
            out = Path(tmp) / f"out-{workers}"
            started = time.perf_counter()
            summary = grading.grade_batch([subs], args.day, out,
                                          grading.GradeOptions(workers=workers, cell_timeout=args.timeout),
                                          log=lambda line: None)
            seconds = time.perf_counter() - started
            book = grading.Gradebook(out, grading.load_assignment(args.day))
            full = sum(1 for r in book.records.values() if r.total == r.max_total)
            rows.append((workers, seconds, summary.graded_now, full))
            print(f"  workers={workers}: {summary.graded_now} graded ({full} with full points) in {seconds:.1f} s "
                  f"= {60 * summary.graded_now / seconds:.2f} submissions per minute", flush=True)
    print()
    print("workers  seconds  submissions/min")
    for workers, seconds, graded, _ in rows:
        print(f"{workers:>7}  {seconds:7.1f}  {60 * graded / seconds:15.2f}")
    return 0 if all(full == args.n for *_, full in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

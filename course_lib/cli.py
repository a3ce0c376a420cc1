"""The ``course`` command (also ``python -m course_lib``).

- ``course run [DAYS...] [--mode quick|full] [--dataset mnist5k|digits|mnist|fashion_mnist]
  [--backend tensorflow|jax|torch] [--devices one|all]``: execute the solution notebooks headless into ``build/``
  (executed notebook + HTML per day), print a table of each day's wall time and recorded metrics, and write
  ``build/metrics.json`` (and ``build/leaderboard.json`` when Day 10 ran). The kernels run on the Keras backend
  chosen (default ``$KERAS_BACKEND``, else TensorFlow); ``--devices all`` makes them train data-parallel over
  every device present (JAX backend only; see :mod:`course_lib.backends`).
- ``course lessons [--check]``: regenerate ``lessons/`` from ``solutions/``.
- ``course grade SUBMISSIONS... --day N --out DIR``: grade submitted lesson notebooks into a gradebook
  (see :mod:`course_lib.grading`).

Errors the user can fix (unknown day, mode, dataset or backend; a backend that is not installed; ``--devices all``
off JAX; a dataset that is not cached while offline) print one ``course: error: ...`` line and exit with status 2
(usage) or 1 (run failure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib import paths
from course_lib.backends import (BACKEND_EXTRAS, BACKENDS, DEVICE_CHOICES, backend_installed, resolve_backend,
                                 resolve_devices)
from course_lib.config import DATASETS, MODES, ConfigError, resolve_dataset, resolve_mode


class CourseError(Exception):
    """An error reported to the user as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass
class DayRun:
    """Outcome of executing one day's notebook."""

    day: str
    notebook: str
    status: str = "ok"
    wall_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    error: str = ""
    cpu_s: float | None = None  # CPU time (user + system) of the notebook's kernel; None where unmeasurable


def available_days(solutions: Path) -> dict[str, Path]:
    """``{"day01": path, ...}`` for every solution notebook."""
    from course_lib.lessons import solution_notebooks

    return {p.name[:5]: p for p in solution_notebooks(solutions)}


def select_days(requested: list[str], days: dict[str, Path]) -> list[str]:
    """Normalise ``1``, ``01``, ``day01`` or a notebook name to ``dayNN``; all days when none given.

    Raises:
        CourseError: an unknown day (status 2), naming the days that exist.
    """
    from course_lib.lessons import day_key

    if not requested:
        return sorted(days)
    chosen = []
    for item in requested:
        try:
            key = day_key(item)
        except ValueError:
            key = None
        if key not in days:
            known = ", ".join(d[3:] for d in sorted(days)) or "none"
            raise CourseError(f"unknown day {item!r}: available days are {known}", status=2)
        if key not in chosen:
            chosen.append(key)
    return chosen


def execute_notebook(path: Path, timeout: int, progress, kernel_log: Path | None = None) -> tuple[object, str]:
    """Execute one notebook with nbclient in a fresh kernel (cwd = the notebook's folder).

    The kernel process's own stderr (native library start-up logs) goes to ``kernel_log`` when
    given, instead of the terminal.

    Returns:
        ``(executed notebook, error text or "")``; the partially executed notebook on failure.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(str(path), as_version=4)
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
    done = {"n": 0}

    def on_cell_executed(**_):
        done["n"] += 1
        progress(done["n"], code_cells)

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=on_cell_executed)
    error = ""
    log = open(kernel_log, "w", encoding="utf-8") if kernel_log else None  # noqa: SIM115 - closed below
    try:
        client.execute(**({"stderr": log} if log else {}))
    except CellExecutionError as exc:
        from course_lib.reporting import strip_ansi

        lines = [line for line in strip_ansi(str(exc)).strip().splitlines() if line.strip()]
        error = lines[-1] if lines else "a cell raised an error"
    except CellTimeoutError:
        error = f"a cell ran longer than {timeout} s"
    except DeadKernelError as exc:
        error = f"the kernel died ({exc})"
    finally:
        if log:
            log.close()
    return nb, error


def write_outputs(nb, out_dir: Path, stem: str) -> None:
    """Write the executed notebook and its HTML rendering to ``out_dir``."""
    import nbformat
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_dir / f"{stem}.ipynb"))
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / f"{stem}.html").write_text(html, encoding="utf-8")


def format_table(runs: list[DayRun]) -> str:
    """The ``course run`` summary: one block per day, its status, wall and CPU time, and metrics."""
    from course_lib.reporting import render_table

    rows = []
    for run in runs:
        metrics = list(run.metrics.items()) or [("-", "")]
        for i, (name, value) in enumerate(metrics):
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            first = i == 0
            cpu = "-" if run.cpu_s is None else f"{run.cpu_s:.1f}"
            rows.append((run.day if first else "", run.status if first else "", f"{run.wall_s:.1f}" if first else "",
                         cpu if first else "", name, shown))
    return render_table(("day", "status", "wall_s", "cpu_s", "metric", "value"), rows, align="llrrll")


def _progress_printer(day: str, started: float):
    tty = sys.stdout.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            print(f"\r  {day}: cell {done}/{total}  {time.perf_counter() - started:6.1f} s", end="", flush=True)
    return show


def cmd_run(args) -> int:
    """``course run``: execute notebooks, print and save the metrics table.

    Args:
        args: the parsed ``course run`` options (an :class:`argparse.Namespace`).

    Returns:
        The exit status: 0 when every notebook ran, 1 when one failed.

    Raises:
        ConfigError: an unknown mode, dataset, backend or devices value.
        CourseError: the backend is not installed (status 2), ``--devices all`` off JAX (status 2), an unknown
            day (status 2), no solution notebooks, or a dataset that is not available or is corrupt (status 1).
    """
    from course_lib import data
    from course_lib.evaluation.leaderboard import extract_leaderboard
    from course_lib.reporting import extract_metrics

    mode, dataset = resolve_mode(args.mode), resolve_dataset(args.dataset)
    backend, devices = resolve_backend(args.backend), resolve_devices(args.devices)
    if not backend_installed(backend):
        extra = BACKEND_EXTRAS[backend]
        raise CourseError(f"the {backend} backend is not installed here"
                          + (f" (pip install -e \".[{extra}]\")" if extra else ""), status=2)
    if devices == "all" and backend != "jax":
        raise CourseError(f"--devices all needs the JAX backend (keras.distribution.DataParallel), "
                          f"not {backend}: add --backend jax", status=2)
    days = available_days(paths.solutions_dir())
    if not days:
        raise CourseError(f"no solution notebooks found in {paths.solutions_dir()}")
    selected = select_days(args.days, days)
    try:
        data.ensure_available(dataset)
    except (data.DatasetUnavailable, data.CorruptDataFile) as error:
        raise CourseError(str(error)) from error

    out_dir = Path(args.out).resolve() if args.out else paths.build_dir()
    os.environ["COURSE_BUILD_DIR"] = str(out_dir)  # saved models (Day 07 -> Day 10) go with this run's output
    os.environ["COURSE_MODE"], os.environ["COURSE_DATASET"] = mode, dataset  # inherited by the kernels
    os.environ["KERAS_BACKEND"], os.environ["COURSE_DEVICES"] = backend, devices
    if args.corpus:
        os.environ["COURSE_CORPUS"] = args.corpus
    print(f"course run: {len(selected)} notebook(s), mode={mode}, dataset={dataset}, backend={backend}, "
          f"devices={devices}, output in {out_dir}")
    runs, leaderboard = [], None
    for number, day in enumerate(selected, 1):
        path = days[day]
        print(f"[{number}/{len(selected)}] {path.name}", flush=True)
        started, cpu_before = time.perf_counter(), _children_cpu_s()
        (out_dir / "logs").mkdir(parents=True, exist_ok=True)
        nb, error = execute_notebook(path, args.timeout, _progress_printer(day, started),
                                     kernel_log=out_dir / "logs" / f"{path.stem}.kernel.log")
        cpu_after = _children_cpu_s()
        run = DayRun(day, path.name, wall_s=round(time.perf_counter() - started, 1),
                     cpu_s=None if cpu_before is None else round(cpu_after - cpu_before, 1))
        if sys.stdout.isatty():
            print()
        run.metrics = extract_metrics(nb).get(day, {})
        leaderboard = extract_leaderboard(nb) or leaderboard
        if error:
            run.status, run.error = "failed", error
            print(f"  {day} FAILED after {run.wall_s:.1f} s: {error}", flush=True)
        else:
            print(f"  {day} ok in {run.wall_s:.1f} s, {len(run.metrics)} metrics", flush=True)
        write_outputs(nb, out_dir, path.stem)
        runs.append(run)

    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = out_dir / "metrics.json"
    previous = {}
    if metrics_file.exists():  # keep other days' results from earlier runs
        try:
            previous = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    for run in runs:
        previous[run.day] = {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "status": run.status, "mode": mode,
                             "dataset": dataset, "backend": backend, "devices": devices, "metrics": run.metrics,
                             **({"error": run.error} if run.error else {})}
    _write_json(metrics_file, dict(sorted(previous.items())))
    print()
    print(format_table(runs))
    print(f"\nmetrics written to {metrics_file}")
    if leaderboard is not None:
        _write_json(out_dir / "leaderboard.json", leaderboard)
        print(f"leaderboard written to {out_dir / 'leaderboard.json'}")
    failed = [r.day for r in runs if r.status != "ok"]
    if failed:
        print(f"course: error: {len(failed)} notebook(s) failed: {', '.join(failed)} "
              f"(see the executed notebooks in {out_dir})", file=sys.stderr)
        return 1
    return 0


def _children_cpu_s() -> float | None:
    """User + system CPU seconds of this process's finished child processes (the kernels, once shut down)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _write_json(path: Path, payload) -> None:
    """Write ``payload`` as indented JSON, atomically (a temporary file, then a rename)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def cmd_lessons(args) -> int:
    """``course lessons``: regenerate (or check) lessons/ from solutions/.

    Args:
        args: the parsed ``course lessons`` options (``args.check``: only report lessons that are out of date).

    Returns:
        The exit status: 1 with ``--check`` when a lesson is out of date, else 0.

    Raises:
        CourseError: a solution notebook has unbalanced solution or hidden-test markers (status 1).
    """
    from course_lib.lessons import MarkerError, generate_lessons

    try:
        changed = generate_lessons(paths.solutions_dir(), paths.lessons_dir(), check=args.check)
    except MarkerError as error:
        raise CourseError(str(error)) from error
    root = paths.project_root()
    names = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in changed]
    if args.check:
        if changed:
            print("lessons out of date (run `course lessons`): " + ", ".join(names))
            return 1
        print("lessons are up to date")
        return 0
    print(f"regenerated {len(changed)} lesson(s)" + (": " + ", ".join(names) if names else " (all up to date)"))
    return 0


def cmd_grade(args) -> int:
    """``course grade``: grade submitted notebooks of one day in the sandbox (see :mod:`course_lib.grading`).

    Args:
        args: the parsed ``course grade`` options (an :class:`argparse.Namespace`).

    Returns:
        The exit status of :func:`course_lib.grading.batch.run_cli`: 1 when a submission ended in a grader
        error, else 0.

    Raises:
        CourseError: a grading setup problem (:class:`~course_lib.grading.assignment.GradingError`; status 2).
        KeyboardInterrupt: the run was interrupted; results already recorded are kept.
    """
    from course_lib.grading import batch
    from course_lib.grading.assignment import GradingError

    try:
        return batch.run_cli(args)
    except GradingError as error:
        raise CourseError(str(error), status=2) from error


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise CourseError(f"{message} (see `{self.prog} --help`)", status=2)


def build_parser() -> argparse.ArgumentParser:
    """The ``course`` argument parser."""
    parser = _Parser(prog="course", description="Learning without labels: run, generate and grade the course.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="execute the solution notebooks and print their metrics")
    run.add_argument("days", nargs="*", help="days to run: 1, 01 or day01 (default: all)")
    run.add_argument("--mode", choices=MODES, default=None, help="quick (default, CPU-sized) or full ($COURSE_MODE)")
    run.add_argument("--dataset", default=None, metavar="{" + ",".join(DATASETS) + "}",
                     help="image dataset (default mnist5k, offline; $COURSE_DATASET)")
    run.add_argument("--corpus", default=None,
                     help="Day 09 text: pydoc (default, offline), imdb or a folder of .txt files ($COURSE_CORPUS)")
    run.add_argument("--backend", choices=BACKENDS, default=None,
                     help="Keras backend of the kernels (default $KERAS_BACKEND, else tensorflow)")
    run.add_argument("--devices", choices=DEVICE_CHOICES, default=None,
                     help="one (default) or all: train data-parallel over every device, JAX only ($COURSE_DEVICES)")
    run.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default 1800)")
    run.add_argument("--out", default=None, help="output folder (default build/ or $COURSE_BUILD_DIR)")
    run.set_defaults(func=cmd_run)

    lessons = sub.add_parser("lessons", help="regenerate lessons/ from solutions/")
    lessons.add_argument("--check", action="store_true", help="only report lessons that are out of date")
    lessons.set_defaults(func=cmd_lessons)

    from course_lib.grading import options as grading

    grade = sub.add_parser("grade", help="grade submitted lesson notebooks of one day into a gradebook")
    grade.add_argument("submissions", nargs="+", help="submitted files and/or folders (one sub-folder per student)")
    grade.add_argument("--day", required=True, help="the day to grade: 2, 02 or day02")
    grade.add_argument("--out", required=True, help="output folder: gradebook.csv/.json, journal.jsonl, feedback/")
    grade.add_argument("--timeout", type=float, default=grading.DEFAULT_CELL_TIMEOUT,
                       help=f"per-cell timeout in seconds (default {grading.DEFAULT_CELL_TIMEOUT})")
    grade.add_argument("--notebook-timeout", type=float, default=grading.DEFAULT_NOTEBOOK_TIMEOUT,
                       help=f"per-notebook timeout in seconds (default {grading.DEFAULT_NOTEBOOK_TIMEOUT})")
    grade.add_argument("--workers", type=int, default=1, help="submissions graded in parallel (default 1)")
    grade.add_argument("--memory-mb", type=int, default=grading.DEFAULT_MEMORY_MB,
                       help=f"address-space cap per kernel in MB, 0 for none (default {grading.DEFAULT_MEMORY_MB})")
    grade.add_argument("--max-output-kb", type=int, default=grading.DEFAULT_MAX_OUTPUT_KB,
                       help=f"output kept per notebook in KB (default {grading.DEFAULT_MAX_OUTPUT_KB})")
    grade.add_argument("--scratch-mb", type=int, default=grading.DEFAULT_SCRATCH_MB,
                       help=f"size of each sandbox's private /tmp in MB (default {grading.DEFAULT_SCRATCH_MB})")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run submissions without the bubblewrap sandbox, with your user's access (not for untrusted code)")
    grade.add_argument("--force", action="store_true", help="re-grade submissions already in the journal")
    grade.set_defaults(func=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (CourseError, ConfigError) as error:
        print(f"course: error: {error}", file=sys.stderr)
        return getattr(error, "status", 2)
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130

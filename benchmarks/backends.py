"""The course on each Keras backend: per-day wall and CPU time, whether the day's floors held, install sizes.

Runs ``course run DAYS --backend X`` (quick mode and the default dataset unless told otherwise) once per installed
backend, each into its own output folder, reads the ``metrics.json`` it writes and prints one table: for every day
and backend the wall time, the CPU time of the notebook's kernel and its status (``ok``: every cell ran, so the
quality floors the notebook asserts held; ``failed``: the error of the first failing cell is listed below the
table). A second table gives the disk size of each backend's packages: the distributions the backend needs with
everything they require that the rest of the course does not (TensorFlow stays installed on every backend, for Day
09's tokenizer). A JSON copy of both goes to ``OUT/backends.json``.

    python benchmarks/backends.py [DAYS...] [--backends tensorflow jax torch] [--mode quick] [--out build/backends]

Run it on an otherwise idle machine: wall times scale with the load (the load average is printed at start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from course_lib import paths
from course_lib.backends import BACKENDS, installed_backends
from course_lib.reporting import render_table

#: Distribution names of each backend's own packages (course_lib.backends.BACKEND_MODULES, as pip names them).
BACKEND_DISTRIBUTIONS = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
#: The project's own distribution: its requirements are what the course installs whatever the backend.
SHARED_ROOT = "learning-without-labels"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(name: str) -> list[str]:
    """Names of the installed distributions that distribution ``name`` requires (markers evaluated, no extras)."""
    from packaging.requirements import Requirement

    try:
        requires = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(_canonical(requirement.name))
    return names


def closure(names, exclude=()) -> set[str]:
    """Every installed distribution reachable from ``names`` through requirements, ``exclude`` not entered."""
    seen, pending = set(), [_canonical(n) for n in names]
    excluded = {_canonical(n) for n in exclude}
    while pending:
        name = pending.pop()
        if name in seen or name in excluded:
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        pending.extend(_requirements(name))
    return seen


def distribution_size(name: str) -> int:
    """Bytes on disk of the files an installed distribution recorded (0 when it recorded none)."""
    total = 0
    for file in metadata.distribution(name).files or []:
        try:
            total += file.locate().stat().st_size
        except OSError:
            pass
    return total


def backend_packages(backend: str) -> set[str]:
    """The distributions that ``backend`` adds to the course's installation: its own and those only it requires.

    For JAX and PyTorch: what their extra adds to the base install (which holds TensorFlow). For TensorFlow: what it
    brings beyond the rest of the base install (walked without entering TensorFlow or tensorflow-text, which
    requires it).
    """
    own = BACKEND_DISTRIBUTIONS[backend]
    exclude = {"tensorflow", "tensorflow-text"} if backend == "tensorflow" else set()
    base = closure([SHARED_ROOT], exclude=exclude) - {_canonical(SHARED_ROOT)}
    return closure(own) - (base - {_canonical(d) for d in own})


def run_backend(backend: str, days: list[str], args, out: Path) -> tuple[dict, float]:
    """``course run DAYS --backend BACKEND`` in a subprocess; returns (its metrics.json, its wall seconds)."""
    command = [sys.executable, "-m", "course_lib", "run", *days, "--backend", backend, "--mode", args.mode,
               "--out", str(out), "--timeout", str(args.timeout)]
    if args.dataset:
        command += ["--dataset", args.dataset]
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "COURSE_DEVICES")}
    print(f"\n== {backend}: {' '.join(command[1:])}", flush=True)
    metrics_file = out / "metrics.json"
    metrics_file.unlink(missing_ok=True)  # course run keeps earlier days: this table shows this run only
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=paths.project_root())  # its output goes to the terminal as it runs
    seconds = time.perf_counter() - started
    recorded = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.exists() else {}
    return recorded, seconds


def day_table(results: dict, backends: list[str], days: list[str]) -> str:
    """One row per day: wall s, CPU s and status of each backend (``-`` where the day did not run)."""
    header = ["day"] + [f"{b} {what}" for b in backends for what in ("wall_s", "cpu_s", "status")]
    rows = []
    for day in days:
        row = [day]
        for backend in backends:
            entry = results[backend].get(day)
            if entry is None:
                row += ["-", "-", "not run"]
            else:
                cpu = entry.get("cpu_s")
                row += [f"{entry['wall_s']:.1f}", "-" if cpu is None else f"{cpu:.1f}", entry["status"]]
        rows.append(row)
    total = ["total"]
    for backend in backends:
        entries = [results[backend][d] for d in days if d in results[backend]]
        cpus = [e.get("cpu_s") for e in entries]
        total += [f"{sum(e['wall_s'] for e in entries):.1f}",
                  "-" if not cpus or None in cpus else f"{sum(cpus):.1f}",
                  f"{sum(e['status'] == 'ok' for e in entries)}/{len(days)} ok"]
    rows.append(total)
    return render_table(header, rows, align="l" + "rrl" * len(backends))


def size_table(sizes: dict) -> str:
    rows = [(backend, f"{info['mb']:.0f}", ", ".join(info["largest"])) for backend, info in sizes.items()]
    return render_table(("backend", "MB on disk", "largest packages"), rows, align="lrl")


def measure_sizes(backends: list[str]) -> dict:
    sizes = {}
    for backend in backends:
        packages = {name: distribution_size(name) for name in backend_packages(backend)}
        largest = sorted(packages, key=packages.get, reverse=True)
        sizes[backend] = {"mb": sum(packages.values()) / 1e6, "packages": sorted(packages),
                          "largest": [f"{name} {packages[name] / 1e6:.0f}" for name in largest[:4]]}
    return sizes


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", nargs="*", help="days to run: 1, 01 or day01 (default: all)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=None,
                        help="backends to compare (default: every installed one)")
    parser.add_argument("--mode", default="quick", help="quick (default) or full")
    parser.add_argument("--dataset", default=None, help="image dataset (default: course run's default)")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default 1800)")
    parser.add_argument("--out", default=None, help="output folder (default build/backends)")
    args = parser.parse_args(argv)

    available = installed_backends()
    backends = args.backends or available
    missing = [b for b in backends if b not in available]
    if missing:
        print(f"backends: error: not installed here: {', '.join(missing)} (pip install -e \".[{missing[0]}]\")",
              file=sys.stderr)
        return 2
    out = Path(args.out).resolve() if args.out else paths.build_dir() / "backends"
    print(f"backends benchmark: {', '.join(backends)}; mode {args.mode}; days {' '.join(args.days) or 'all'}; "
          f"{os.cpu_count()} CPU core(s), load average {_load():.1f} at start", flush=True)
    results, seconds = {}, {}
    for backend in backends:
        results[backend], seconds[backend] = run_backend(backend, args.days, args, out / backend)
    days = sorted({day for recorded in results.values() for day in recorded})
    sizes = measure_sizes(backends)

    print(f"\nper day, quick-mode wall and kernel CPU seconds, status ok = the day's floors held "
          f"(load average {_load():.1f} at the end)")
    print(day_table(results, backends, days))
    errors = [(b, d, results[b][d]["error"]) for b in backends for d in days if results[b].get(d, {}).get("error")]
    for backend, day, error in errors:
        print(f"  {day} on {backend}: {error}")
    print("\ninstall size of each backend's packages (its own and what only it requires)")
    print(size_table(sizes))
    report = {"mode": args.mode, "dataset": args.dataset, "cpu_count": os.cpu_count(), "backends": backends,
              "days": {b: results[b] for b in backends}, "run_wall_s": seconds, "install_size": sizes}
    out.mkdir(parents=True, exist_ok=True)
    (out / "backends.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {out / 'backends.json'}")
    ok = all(results[b].get(d, {}).get("status") == "ok" for b in backends for d in days)
    return 0 if ok and days else 1


if __name__ == "__main__":
    sys.exit(main())

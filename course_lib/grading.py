"""Instructor grading: ``course grade`` runs submitted lesson notebooks and writes a gradebook.

How a submission is graded
--------------------------
1. **Read** the file (never modified; it may be anything: a notebook, a PDF, garbage).
2. **Rebuild** the notebook from trusted material, the way nbgrader's "overwrite cells" step does:
   every cell comes from the lesson generated from ``solutions/`` except the student's *solution
   cells* (nbgrader metadata ``"solution": true``), which are matched by ``grade_id`` (or, when a
   student lost the metadata, by the functions the cell defines). Edited, deleted, added or re-tagged
   cells therefore change nothing but the student's own answers; each such change is noted.
3. **Run** the rebuilt notebook cell by cell in a fresh kernel of its own, in a temporary folder,
   with a per-cell and a per-notebook timeout, an address-space (memory) cap, a file-size cap and
   a cap on the bytes of output kept. A cell that times out or kills its kernel is recorded, the
   kernel is restarted, the cells before it are replayed without it, and grading goes on.
4. **Test** each exercise at the position of its check cell (nbgrader ``"grade": true`` with
   ``points``): the check cell's full *solution-side* source (visible self-check + the
   ``BEGIN HIDDEN TESTS`` region, which lessons do not contain) runs through a guard that first
   undoes whatever the student's code changed in ``course_lib``, NumPy, ``math`` and ``builtins``
   and executes the tests in a sealed namespace (names bound by instructor cells keep the values
   those cells gave them). The exercise earns its points when the tests raise nothing, every
   self-check run by them passes, and the guard finds nothing tampered with afterwards.
5. **Record** one row per submission and exercise (points, status and the reason for every lost
   point) in ``journal.jsonl`` (append-only, written as each submission finishes) and rewrite
   ``gradebook.csv`` / ``gradebook.json`` atomically; write ``feedback/<student>-<id>.html``.

Submissions are identified by content: the id is a hash of the file's bytes, so a renamed file is
not graded twice and a changed file is graded again. Re-running a stopped batch skips everything
already in the journal.

The functions whose names start with ``_kernel`` run *inside* the grading kernel (loaded there from
the copy of ``course_lib`` the grader read at start-up, not from disk); everything else runs in the
grader process. See the README's instructor section for the threat model.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import html
import io
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERDICT_MIME = "application/vnd.course.grade+json"
CHECK_MIME = "application/vnd.course.check+json"  # same value as course_lib.checks.CHECK_MIME

DEFAULT_CELL_TIMEOUT = 120
DEFAULT_NOTEBOOK_TIMEOUT = 1200
DEFAULT_MEMORY_MB = 6144
DEFAULT_MAX_OUTPUT_KB = 2048
DEFAULT_FILE_SIZE_MB = 512
DEFAULT_MAX_RESTARTS = 3
MAX_SUBMISSION_MB = 100   # larger files are not read (a lesson notebook with outputs is a few MB)
JOURNAL = "journal.jsonl"
GRADEBOOK_CSV = "gradebook.csv"
GRADEBOOK_JSON = "gradebook.json"
CSV_COLUMNS = ("student", "file", "submission_id", "day", "exercise", "points", "max_points", "status", "reason",
               "total", "max_total", "notes", "flags")
_FORMAT = 1  # journal record format

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_ABSL_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\).*|[IWE]\d{4} [\d:. ]+\d+ [\w.]+:\d+\].*|"
                       r"To enable the following instructions:.*)\n?", re.M)
_DAY_NAME = re.compile(r"^day(\d{2})")

# Names in a student's own cells that ordinary exercise code has no use for. They cost nothing;
# the gradebook lists them as "flags" so that an instructor can look at those submissions.
_AUDIT_PATTERNS = {
    "sys.modules": r"\bsys\s*\.\s*modules\b",
    "frame introspection": r"\b_getframe\b|\bf_locals\b|\bf_globals\b|\binspect\s*\.\s*(stack|currentframe)",
    "tracing hooks": r"\bsettrace\b|\bsetprofile\b",
    "gc": r"\bgc\s*\.",
    "builtins": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.",
    "import machinery": r"\bimportlib\b|\b__import__\b|\bmeta_path\b",
    "ctypes": r"\bctypes\b",
    "IPython internals": r"\bget_ipython\b",
    "code objects": r"\b__code__\b|\b__globals__\b|\b__dict__\b",
    "course_lib": r"\bcourse_lib\b",
    "file writes": r"\bopen\s*\([^)]*['\"][wax+]|\bwrite_(text|bytes)\b|\bshutil\b|\bos\s*\.\s*(remove|unlink|rename|replace)\b",
    "processes": r"\bsubprocess\b|\bos\s*\.\s*(system|kill|_exit|fork|exec\w*)\b|\bsignal\s*\.",
}


class GradingError(Exception):
    """A problem with the grading setup itself (not with a submission): unknown day, bad options, an
    output folder that holds another day's gradebook."""


# ==================================================================================================
# The assignment: everything trusted comes from the solution notebook and the lesson made from it.
# ==================================================================================================

@dataclass(frozen=True)
class Exercise:
    """One autograded check cell of the solution.

    Attributes:
        grade_id: the check cell's nbgrader ``grade_id`` (the gradebook's ``exercise`` column).
        points: nbgrader ``points`` of that cell.
        cell_index: its index in the solution (and lesson) notebook.
        title: a short human title (the markdown heading before it, else the grade_id).
        solution_ids: grade_ids of the solution cells between the previous check cell and this one.
    """

    grade_id: str
    points: float
    cell_index: int
    title: str
    solution_ids: tuple[str, ...]


@dataclass
class Assignment:
    """A day's trusted material: the solution notebook, its lesson and its exercises."""

    day: str
    name: str
    solution_path: Path
    solution: object
    lesson: object
    exercises: list[Exercise]
    solution_cells: dict[str, int]
    manual_cells: dict[str, float]
    sha256: str

    @property
    def max_points(self) -> float:
        return float(sum(e.points for e in self.exercises))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}) or {}
    data = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return data if isinstance(data, dict) else {}


def load_assignment(day: str, solutions_dir: str | os.PathLike | None = None) -> Assignment:
    """Load ``dayNN``'s solution notebook and derive its lesson and exercise list.

    Args:
        day: ``"day02"``, ``"02"`` or ``"2"``.
        solutions_dir: folder of solution notebooks (default: the course's ``solutions/``).

    Raises:
        GradingError: no solution notebook for that day, duplicate grade_ids, or a check cell
            without points.
    """
    from course_lib import lessons as notebooks, paths

    key = _day_key(day)
    folder = Path(solutions_dir) if solutions_dir else paths.solutions_dir()
    found = [p for p in notebooks.solution_notebooks(folder) if p.name.startswith(key + "_")]
    if not found:
        known = ", ".join(p.name[3:5] for p in notebooks.solution_notebooks(folder)) or "none"
        raise GradingError(f"no solution notebook for {key} in {folder} (available days: {known})")
    path = found[0]
    raw = path.read_bytes()
    solution = notebooks.read(path)
    lesson = notebooks.make_lesson(solution, name=path.name)
    exercises, solution_cells, manual, seen = [], {}, {}, set()
    pending: list[str] = []
    heading = ""
    for index, cell in enumerate(solution.cells):
        meta = _nbgrader(cell)
        if cell.cell_type == "markdown":
            for line in _source(cell).splitlines():
                if line.lstrip().startswith("#"):
                    heading = line.lstrip("# ").strip()
            if meta.get("grade_id") and meta.get("solution") and meta.get("grade"):
                manual[meta["grade_id"]] = float(meta.get("points", 0) or 0)
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            continue
        if grade_id in seen:
            raise GradingError(f"{path.name}: grade_id {grade_id!r} is used by two cells")
        seen.add(grade_id)
        if meta.get("solution") and meta.get("grade"):
            manual[grade_id] = float(meta.get("points", 0) or 0)
        elif meta.get("solution") and cell.cell_type == "code":
            solution_cells[grade_id] = index
            pending.append(grade_id)
        elif meta.get("grade"):
            if "points" not in meta:
                raise GradingError(f"{path.name}: check cell {grade_id!r} has no points")
            exercises.append(Exercise(grade_id, float(meta["points"]), index, heading or grade_id, tuple(pending)))
            pending = []
    if not exercises:
        raise GradingError(f"{path.name} has no autograded check cells (nbgrader grade: true with points)")
    return Assignment(key, path.stem, path, solution, lesson, exercises, solution_cells, manual,
                      hashlib.sha256(raw).hexdigest())


def _day_key(day) -> str:
    text = str(day).strip().lower().removesuffix(".ipynb")
    match = _DAY_NAME.match(text)
    digits = match.group(1) if match else text
    if not digits.isdigit():
        raise GradingError(f"not a day: {day!r} (expected e.g. 2, 02 or day02)")
    return f"day{int(digits):02d}"


# ==================================================================================================
# Submissions
# ==================================================================================================

@dataclass(frozen=True)
class Submission:
    """One submitted file.

    Attributes:
        path: the file as found.
        student: the student's name: the sub-folder under a folder given on the command line, else
            the file's stem (or its parent folder's name when the stem is the lesson's own name).
        sha256: hash of the file's bytes; ``submission_id`` is its first 12 hex digits.
    """

    path: Path
    student: str
    sha256: str

    @property
    def submission_id(self) -> str:
        return self.sha256[:12]


def discover_submissions(inputs, lesson_stem: str = "") -> list[Submission]:
    """Expand files and folders given on the command line into submissions (sorted, de-duplicated).

    A folder contributes every non-hidden file below it (``.ipynb_checkpoints`` and other dot
    folders are skipped). Files that are not notebooks are kept: they get a row saying so.

    Raises:
        GradingError: an input that does not exist, or no file at all.
    """
    found: dict[Path, Submission] = {}
    for item in inputs:
        root = Path(item)
        if not root.exists():
            raise GradingError(f"submission path not found: {item}")
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = path.relative_to(root)
                if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                    continue
                student = rel.parts[0] if len(rel.parts) > 1 else _student_from_file(path, lesson_stem)
                found.setdefault(path.resolve(), Submission(path, student, _sha256(path)))
        else:
            found.setdefault(root.resolve(), Submission(root, _student_from_file(root, lesson_stem), _sha256(root)))
    if not found:
        raise GradingError("no submission files found in " + ", ".join(map(str, inputs)))
    return sorted(found.values(), key=lambda s: (s.student, str(s.path)))


def _student_from_file(path: Path, lesson_stem: str) -> str:
    stem = path.stem
    if (lesson_stem and stem.startswith(lesson_stem)) or _DAY_NAME.match(stem):
        return path.resolve().parent.name
    return stem


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_submission(data: bytes):
    """Parse submitted bytes as a version-4 notebook.

    Returns:
        ``(notebook, "")`` or ``(None, reason)`` saying why it is not a usable notebook.
    """
    import nbformat

    if not data.strip():
        return None, "not a notebook: the file is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        kind = "a PDF" if data.startswith(b"%PDF") else ("a zip archive" if data.startswith(b"PK") else "binary data")
        return None, f"not a notebook: the file is {kind}, not JSON text"
    try:
        raw = json.loads(text)
    except ValueError as error:
        return None, f"not a notebook: the file is not valid JSON ({str(error)[:80]})"
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return None, "not a notebook: valid JSON but without notebook cells"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many types for malformed notebooks
        return None, f"not a notebook: nbformat cannot read it ({type(error).__name__}: {str(error)[:80]})"
    cells = []
    for cell in nb.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") in ("code", "markdown", "raw"):
            cell["source"] = _source(cell)
            cells.append(cell)
    nb["cells"] = cells
    return nb, ""


# ==================================================================================================
# Rebuilding: trusted cells from the lesson, answers from the submission.
# ==================================================================================================

@dataclass
class Step:
    """One code execution in the grading kernel.

    kind: ``boot`` (grader set-up), ``capture`` (guard bookkeeping before student code), ``trusted``
    (an instructor cell), ``student`` (a solution cell from the submission) or ``test`` (an
    exercise's check cell with hidden tests, run through the guard).
    """

    kind: str
    code: str
    cell_index: int | None = None
    grade_id: str | None = None
    exercise: str | None = None


@dataclass
class Plan:
    """What to execute for one submission, and what was noticed while rebuilding it."""

    notebook: object
    steps: list[Step]
    notes: list[str]
    flags: list[str]
    missing: dict[str, str]          # exercise grade_id -> reason (its answer cell is missing)
    dropped_names: set[str]          # names defined only in cells the student added (not run)
    matched: int


def _bound_names(source: str) -> list[str]:
    """Top-level names a cell binds (assignments, imports, defs, loop/with targets)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            tree = ast.parse(cleaned)
        except SyntaxError:
            return []
    names: list[str] = []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name != "*":
                        names.append(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
                visit(node.body)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
    visit(tree.body)
    return list(dict.fromkeys(names))


def _defined_functions(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(re.findall(r"^def\s+([A-Za-z_]\w*)", source, flags=re.M))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def build_plan(nb, assignment: Assignment) -> Plan:
    """Rebuild a submission from the lesson plus the student's solution cells, and list the steps.

    The student's notebook contributes only the source of its solution cells (matched by nbgrader
    ``grade_id``; a cell that lost its metadata is matched by the functions it defines; several
    cells with the same ``grade_id`` are run one after the other, as in the student's notebook).
    Everything else, including the check cells and all metadata, is the instructor's.
    """
    import copy

    lesson = assignment.lesson
    student_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    by_id: dict[str, list] = {}
    for cell in student_cells:
        grade_id = _nbgrader(cell).get("grade_id")
        if isinstance(grade_id, str):
            by_id.setdefault(grade_id, []).append(cell)
    used: set[int] = set()
    answers: dict[str, str] = {}
    notes, missing = [], {}
    for grade_id, index in assignment.solution_cells.items():
        cells = by_id.get(grade_id, [])
        how = "grade_id"
        if not cells:  # metadata lost (cell re-created, notebook copied): match by defined functions
            wanted = _defined_functions(_source(lesson.cells[index]))
            cells = [c for c in student_cells
                     if wanted and wanted <= _defined_functions(_source(c)) and not _nbgrader(c).get("grade_id")]
            how = "content"
        if not cells:
            continue
        if len(cells) > 1:
            notes.append(f"{len(cells)} cells carry the answer {grade_id!r}; they were run one after the other")
        if how == "content":
            notes.append(f"the answer cell {grade_id!r} had lost its grading metadata; matched by the functions it defines")
        used.update(id(c) for c in cells)
        answers[grade_id] = "\n\n".join(_source(c) for c in cells)

    # What did the student change outside the answers? (Reported, never used.)
    submitted_sources = {_source(c).strip() for c in nb.cells}
    trusted_cells = [c for i, c in enumerate(lesson.cells) if i not in assignment.solution_cells.values()]
    changed = sum(1 for c in trusted_cells if _source(c).strip() and _source(c).strip() not in submitted_sources)
    if changed:
        notes.append(f"{changed} of the {len(trusted_cells)} instructor cells were edited or deleted in the "
                     "submission; the instructor's versions were run")
    lesson_sources = {_source(c).strip() for c in lesson.cells}
    added = [c for c in student_cells if id(c) not in used and _source(c).strip()
             and _source(c).strip() not in lesson_sources and _nbgrader(c).get("grade_id") not in assignment.solution_cells]
    dropped: set[str] = set()
    for cell in added:
        dropped.update(_bound_names(_source(cell)))
    if added:
        notes.append(f"{len(added)} cell(s) added or edited outside the answer cells were not run "
                     "(only the answer cells of a submission are graded)")
    exercise_of = {}
    for exercise in assignment.exercises:
        for grade_id in exercise.solution_ids:
            exercise_of[grade_id] = exercise.grade_id
    for grade_id, exercise in exercise_of.items():
        if grade_id not in answers:
            missing[exercise] = f"the answer cell {grade_id!r} is missing from the submission"

    rebuilt = copy.deepcopy(lesson)
    answer_names = set()  # names the answer cells define: the student's, never overridden by the guard
    for index in assignment.solution_cells.values():
        answer_names.update(_bound_names(_source(lesson.cells[index])))
    flags: set[str] = set()
    steps: list[Step] = [Step("boot", "")]
    pending_names: list[str] = []
    check_index = {e.cell_index: e for e in assignment.exercises}
    solution_index = {index: gid for gid, index in assignment.solution_cells.items()}
    for index, cell in enumerate(rebuilt.cells):
        if cell.cell_type != "code":
            continue
        if index in solution_index:
            grade_id = solution_index[index]
            source = answers.get(grade_id, _source(cell))
            for label, pattern in _AUDIT_PATTERNS.items():
                if grade_id in answers and re.search(pattern, source) and not re.search(pattern, _source(cell)):
                    flags.add(label)
            steps.append(Step("capture", json.dumps(pending_names)))
            pending_names = []
            steps.append(Step("student", source, index, grade_id, exercise_of.get(grade_id)))
            cell.source = source
        elif index in check_index:
            exercise = check_index[index]
            steps.append(Step("test", _source(assignment.solution.cells[index]), index, exercise.grade_id,
                              exercise.grade_id))
        else:
            source = _source(cell)
            if source.strip():
                steps.append(Step("trusted", source, index))
                pending_names.extend(n for n in _bound_names(source) if n not in answer_names)
    return Plan(rebuilt, steps, notes, sorted(flags), missing, dropped, len(answers))


# ==================================================================================================
# Inside the grading kernel (these functions run in the student's kernel process)
# ==================================================================================================

# The boot code: installs an import hook that serves course_lib from the sources the grader read at
# start-up (so files changed on disk during grading never reach a kernel), then hands over to
# _kernel_boot below. Executed before any other code in a fresh kernel.
_BOOT_TEMPLATE = r'''
def _course_grader_boot(payload):
    import base64, importlib.abc, importlib.util, json, os, sys, zlib
    files = json.loads(zlib.decompress(base64.b64decode(payload)).decode("utf-8"))
    by_path = {entry[0]: entry[1] for entry in files.values()}

    class Loader(importlib.abc.SourceLoader):
        def get_filename(self, fullname):
            return files[fullname][0]

        def get_data(self, path):
            if path in by_path:
                return by_path[path].encode("utf-8")
            raise OSError(path)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            entry = files.get(fullname)
            if entry is None:
                return None
            locations = [os.path.dirname(entry[0])] if entry[2] else None
            return importlib.util.spec_from_file_location(fullname, entry[0], loader=Loader(),
                                                          submodule_search_locations=locations)

    finder = Finder()
    sys.meta_path.insert(0, finder)
    for name in [n for n in sys.modules if n == "course_lib" or n.startswith("course_lib.")]:
        del sys.modules[name]
    import course_lib.grading
    course_lib.grading._kernel_boot(finder, PRELOAD)

_course_grader_boot(PAYLOAD)
del _course_grader_boot
'''

_KERNEL_WATCH = ("builtins", "math", "numpy", "numpy.linalg", "numpy.random", "numpy.testing", "numpy.fft")
# Builtins that IPython / ipykernel legitimately replace per request (input() is swapped for stdin).
_BUILTINS_IGNORED = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "help", "copyright", "credits",
                     "license", "dreload", "runfile", "open", "input", "raw_input", "getpass"}
_K: dict = {}          # kernel-side state of the guard
_MISSING = object()


def _kernel_boot(finder, preload):
    """Set up the guard in a fresh grading kernel: import the trusted modules and snapshot them."""
    import builtins
    import importlib
    import types

    from IPython import get_ipython
    from IPython.display import display

    _K.update(shell=get_ipython(), display=display, finder=finder, builtins=builtins,
              builtins_dict=builtins.__dict__, module_type=types.ModuleType, function_type=types.FunctionType,
              modules={}, classes=[], codes=[], trusted={}, results_class=None)
    for name in ("numpy", "numpy.linalg", "numpy.random", "numpy.testing", "numpy.fft", "math", *preload):
        try:
            importlib.import_module(name)
        except Exception:  # a broken optional module must not stop grading; the notebook will show it
            pass
    checks = sys.modules.get("course_lib.checks")
    _K["results_class"] = getattr(checks, "CheckResult", None)
    _kernel_snapshot()


def _kernel_snapshot():
    """Snapshot watched modules loaded since the last call (course_lib fully; the others' callables)."""
    modules, module_type = _K["modules"], _K["module_type"]
    for name, module in list(sys.modules.items()):
        ours = name == "course_lib" or name.startswith("course_lib.")
        if name in modules or module is None or not (ours or name in _KERNEL_WATCH):
            continue
        items = {}
        for key, value in list(vars(module).items()):
            if isinstance(value, module_type):
                continue
            if name == "builtins" and key in _BUILTINS_IGNORED:
                continue
            if not ours and (not callable(value) or (key.startswith("_") and name != "builtins")):
                continue
            items[key] = value
            for func in _functions_behind(value):
                _K["codes"].append((func, func.__code__, func.__defaults__, func.__kwdefaults__))
            if ours and isinstance(value, type) and getattr(value, "__module__", "") == name:
                # methods and descriptors only: data attributes may be legitimate caches
                attrs = {k: v for k, v in vars(value).items()
                         if k not in ("__dict__", "__weakref__") and (callable(v) or hasattr(v, "__get__"))}
                _K["classes"].append((value, attrs, frozenset(vars(value))))
                for attr in attrs.values():
                    func = getattr(attr, "__func__", attr)
                    if isinstance(func, _K["function_type"]):
                        _K["codes"].append((func, func.__code__, func.__defaults__, func.__kwdefaults__))
        modules[name] = (module, items, ours)


def _functions_behind(value) -> list:
    """The Python functions whose code runs when ``value`` is called: itself, or what a NumPy
    dispatcher (``_implementation``) or a decorator (``__wrapped__``) wraps."""
    function_type = _K["function_type"]
    found = [value] if isinstance(value, function_type) else []
    for attr in ("_implementation", "__wrapped__"):
        try:
            inner = getattr(value, attr, None) if callable(value) else None
        except Exception:  # an object whose attribute lookup fails is not a wrapper
            inner = None
        if isinstance(inner, function_type):
            found.append(inner)
    return found


def _kernel_capture(names):
    """Before a student cell runs: remember what the instructor cells bound to ``names``."""
    user_ns = _K["shell"].user_ns
    for name in names:
        value = user_ns.get(name, _MISSING)
        if value is _MISSING:
            _K["trusted"].pop(name, None)
        else:
            _K["trusted"][name] = value
    _kernel_snapshot()


def _kernel_restore() -> list[str]:
    """Undo changes to the watched modules, classes and functions; return what had to be undone."""
    fixed: list[str] = []
    if "builtins" in _K["modules"]:  # first, so that the code below runs with the real builtins
        namespace, items = _K["builtins_dict"], _K["modules"]["builtins"][1]
        fixed += [f"builtins.{k}" for k, v in items.items() if namespace.get(k, _MISSING) is not v]
        namespace.update(items)
    module_type, modules = _K["module_type"], _K["modules"]
    for name, (module, items, ours) in modules.items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            fixed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in items.items():
            if namespace.get(key, _MISSING) is not value:
                namespace[key] = value
                fixed.append(f"{name}.{key}")
        if ours:
            for key in [k for k, v in namespace.items() if k not in items and not isinstance(v, module_type)
                        and callable(v) and not k.startswith("__")]:
                del namespace[key]
                fixed.append(f"{name}.{key} (added)")
    for cls, attrs, keys in _K["classes"]:
        current = vars(cls)
        for key, value in attrs.items():
            if current.get(key, _MISSING) is not value:
                try:
                    type.__setattr__(cls, key, value)
                    fixed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
                except (AttributeError, TypeError):
                    pass
        for key in [k for k in current if k not in keys and any(k in vars(b) for b in cls.__mro__[1:])]:
            try:
                type.__delattr__(cls, key)
                fixed.append(f"{cls.__module__}.{cls.__qualname__}.{key} (added)")
            except (AttributeError, TypeError):
                pass
    for func, code, defaults, kwdefaults in _K["codes"]:
        if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
            func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults
            fixed.append(f"{func.__module__}.{func.__qualname__} (code)")
    for name in [n for n in sys.modules if (n == "course_lib" or n.startswith("course_lib.")) and n not in modules]:
        del sys.modules[name]  # imported after the snapshot: re-imported from the trusted sources on demand
    finder = _K["finder"]
    if not sys.meta_path or sys.meta_path[0] is not finder:
        while finder in sys.meta_path:
            sys.meta_path.remove(finder)
        sys.meta_path.insert(0, finder)
        fixed.append("sys.meta_path")
    import threading

    if sys.gettrace() is not None or sys.getprofile() is not None:
        fixed.append("sys.settrace/setprofile")
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)
    threading.setprofile(None)
    return fixed


def _kernel_tampered(results_dict, checks_module) -> list[str]:
    """After the tests: what the code under test changed in the watched state (callables only)."""
    changed = []
    for name, (module, items, _ours) in _K["modules"].items():
        if sys.modules.get(name) is not module:
            changed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in items.items():
            if callable(value) and namespace.get(key, _MISSING) is not value:
                changed.append(f"{name}.{key}")
    for cls, attrs, _keys in _K["classes"]:
        current = vars(cls)
        for key, value in attrs.items():
            if current.get(key, _MISSING) is not value:
                changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
    for func, code, defaults, kwdefaults in _K["codes"]:
        if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
            changed.append(f"{func.__module__}.{func.__qualname__}")
    if checks_module is not None and getattr(checks_module, "RESULTS", None) is not results_dict:
        changed.append("course_lib.checks.RESULTS")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        changed.append("sys.settrace/setprofile")
    return changed


def _short(value, limit=300) -> str:
    try:
        text = str(value)
    except BaseException:  # a student's exception whose __str__ fails
        text = "<unprintable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kernel_run_test(grade_id, source, nonce):
    """Run one exercise's trusted check-cell source through the guard and display the verdict."""
    restored = _kernel_restore()
    checks_module = _K["modules"].get("course_lib.checks", (None,))[0]
    namespace = dict(_K["shell"].user_ns)
    namespace.update(_K["trusted"])
    namespace["__builtins__"] = _K["builtins"]
    namespace["__name__"] = "__main__"
    saved = getattr(checks_module, "RESULTS", None) if checks_module is not None else None
    fresh: dict = {}
    if checks_module is not None:
        checks_module.RESULTS = fresh
    error = None
    try:
        exec(compile(source, f"<tests of {grade_id}>", "exec"), namespace)
    except BaseException as exc:  # everything the student's code may raise, including SystemExit
        error = exc
    tampered = _kernel_tampered(fresh, checks_module)
    if checks_module is not None:
        checks_module.RESULTS = saved if isinstance(saved, dict) else {}
        checks_module.RESULTS.update({k: v for k, v in fresh.items() if isinstance(k, str)})
    checks = []
    results_class = _K["results_class"]
    for result in list(fresh.values()):
        if results_class is None or type(result) is not results_class:
            tampered.append("a self-check result that is not a course_lib CheckResult")
            continue
        checks.append({"check_id": _short(result.check_id), "status": _short(result.status),
                       "message": _short(result.message), "hint": _short(result.hint)})
    record = {"nonce": nonce, "grade_id": grade_id, "checks": checks, "restored": restored[:20],
              "tampered": tampered[:20], "error": None}
    if error is not None:
        record["error"] = {"type": type(error).__name__, "message": _short(error),
                           "not_implemented": isinstance(error, NotImplementedError),
                           "assertion": isinstance(error, AssertionError)}
    passed = error is None and not tampered and all(c["status"] == "pass" for c in checks)
    record["passed"] = passed
    text = f"[grader] {grade_id}: {'passed' if passed else 'not passed'}"
    _K["display"]({VERDICT_MIME: record, "text/plain": text}, raw=True)


# ==================================================================================================
# Kernel processes
# ==================================================================================================

# The kernel command: set resource limits, then become the ordinary IPython kernel (same process).
_KERNEL_WRAPPER = (
    "import os, resource, sys\n"
    "memory, fsize = int(sys.argv[1]), int(sys.argv[2])\n"
    "if memory > 0:\n"
    "    resource.setrlimit(resource.RLIMIT_AS, (memory << 20, memory << 20))\n"
    "if fsize > 0:\n"
    "    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize << 20, fsize << 20))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', '-f', sys.argv[3]])\n"
)

_KERNEL_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "CONDA_PREFIX",
               "COURSE_DATA_DIR", "COURSE_DATASET", "COURSE_OFFLINE", "KERAS_BACKEND", "KERAS_HOME", "MPLCONFIGDIR",
               "XDG_CACHE_HOME", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "SSL_CERT_FILE")


@dataclass
class Outcome:
    """What one execution request produced.

    status: ``ok``, ``error`` (the code raised; ``ename``/``evalue``), ``timeout`` or ``dead``
    (the kernel process ended; ``evalue`` says how).
    """

    status: str
    outputs: list
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0


class OutputBudget:
    """Caps the bytes of output kept for one notebook; the rest is dropped with one marker."""

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.used = 0
        self.dropped = 0

    def admit(self, output) -> bool:
        size = len(json.dumps(output, default=str))
        if self.used + size <= self.limit:
            self.used += size
            return True
        self.dropped += size
        return False


class KernelSession:
    """One kernel process with resource limits, driven by jupyter_client's blocking client."""

    def __init__(self, cwd: Path, env: dict, memory_mb: int, file_size_mb: int, log_path: Path | None,
                 startup_timeout: float = 120):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpec

        self.km = KernelManager(kernel_name="python3")
        self.km._kernel_spec = KernelSpec(
            argv=[sys.executable, "-c", _KERNEL_WRAPPER, str(memory_mb), str(file_size_mb), "{connection_file}"],
            display_name="course grader", language="python", env={}, metadata={})
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115 - closed in close()
        self.kc = None
        try:
            self.km.start_kernel(cwd=str(cwd), env=env, **({"stderr": self._log, "stdout": self._log}
                                                            if self._log else {}))
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=startup_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def process(self):
        provisioner = getattr(self.km, "provisioner", None)
        return getattr(provisioner, "process", None)

    def alive(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    def death(self) -> str:
        process = self.process
        code = process.poll() if process is not None else None
        if code is None:
            return "the kernel stopped responding"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the kernel process died from {name}"
        return f"the kernel process exited with status {code}"

    def execute(self, code: str, timeout: float, budget: OutputBudget | None, store_history: bool = True,
                keep=lambda output: False, cancel: threading.Event | None = None) -> Outcome:
        """Run ``code``; collect its outputs (within ``budget``; ``keep(output)`` bypasses the budget).

        Returns early with status ``cancelled`` when ``cancel`` is set.
        """
        from queue import Empty

        from nbformat.v4 import new_output, output_from_msg

        started = time.monotonic()
        deadline = started + max(timeout, 0.1)
        msg_id = self.kc.execute(code, store_history=store_history, allow_stdin=False, stop_on_error=False)
        outputs, marker = [], None
        ename = evalue = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Outcome("timeout", outputs, seconds=time.monotonic() - started)
            if cancel is not None and cancel.is_set():
                return Outcome("cancelled", outputs, seconds=time.monotonic() - started)
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.5, remaining))
            except Empty:
                if not self.alive():
                    return Outcome("dead", outputs, evalue=self.death(), seconds=time.monotonic() - started)
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "clear_output":
                outputs = [o for o in outputs if o is marker]
                continue
            if kind not in ("stream", "display_data", "execute_result", "error"):
                continue
            if kind == "error":
                ename, evalue = content.get("ename", ""), content.get("evalue", "")
            try:
                output = output_from_msg(msg)
            except (ValueError, KeyError):
                continue
            if keep(output) or budget is None or budget.admit(output):
                outputs.append(output)
            elif marker is None:
                marker = new_output("stream", name="stderr",
                                    text=f"[grader: output beyond {budget.limit // 1024} KB per notebook dropped]\n")
                outputs.append(marker)
        status = "error" if ename else "ok"
        try:  # the execute_reply normally follows at once; its status wins when present
            reply_deadline = time.monotonic() + 5
            while time.monotonic() < reply_deadline:
                reply = self.kc.get_shell_msg(timeout=1)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    content = reply["content"]
                    if content.get("status") == "error":
                        status, ename = "error", content.get("ename", ename)
                        evalue = content.get("evalue", evalue)
                    break
        except Empty:
            pass
        return Outcome(status, outputs, ename, evalue, time.monotonic() - started)

    def kill(self) -> None:
        """Kill the kernel's process group only (safe from another thread: the client is not touched)."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        """Kill the kernel (its whole process group) and release its resources."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                try:
                    process.kill()
                except OSError:
                    pass
            try:
                process.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort
                pass
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.km.cleanup_resources()
        except Exception:  # noqa: BLE001
            pass
        if self._log:
            self._log.close()
            self._log = None


# ==================================================================================================
# Grading one submission
# ==================================================================================================

@dataclass
class GradeOptions:
    """Limits and switches of a grading run (see ``course grade --help``)."""

    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    workers: int = 1
    memory_mb: int = DEFAULT_MEMORY_MB
    max_output_kb: int = DEFAULT_MAX_OUTPUT_KB
    file_size_mb: int = DEFAULT_FILE_SIZE_MB
    max_restarts: int = DEFAULT_MAX_RESTARTS
    mode: str = "quick"
    force: bool = False


@dataclass
class ExerciseResult:
    """One gradebook row's grading part."""

    exercise: str
    title: str
    points: float
    max_points: float
    status: str
    reason: str = ""


@dataclass
class SubmissionResult:
    """The outcome for one submitted file content (shared by identical files)."""

    sha256: str
    status: str                      # graded | invalid | error
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
        return float(sum(e.points for e in self.exercises))

    @property
    def max_total(self) -> float:
        return float(sum(e.max_points for e in self.exercises))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SubmissionResult:
        data = dict(data)
        data["exercises"] = [ExerciseResult(**e) for e in data.get("exercises", [])]
        return cls(**data)


def _all_exercises(assignment: Assignment, status: str, reason: str) -> list[ExerciseResult]:
    return [ExerciseResult(e.grade_id, e.title, 0.0, e.points, status, reason) for e in assignment.exercises]


class _Cancelled(Exception):
    pass


def _kernel_env(options: GradeOptions, tmp: Path) -> dict:
    env = {k: os.environ[k] for k in _KERNEL_ENV if k in os.environ}
    threads = str(max(1, (os.cpu_count() or 1) // max(1, options.workers)))
    env.update(COURSE_MODE=options.mode, MPLBACKEND="module://matplotlib_inline.backend_inline", TMPDIR=str(tmp),
               TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


class _Runner:
    """Executes a plan's steps for one submission, restarting the kernel after fatal steps."""

    def __init__(self, plan: Plan, ctx: _Context, tmp: Path, log_path: Path | None, cancel: threading.Event,
                 register):
        self.plan, self.ctx, self.tmp, self.log_path = plan, ctx, tmp, log_path
        self.cancel, self.register = cancel, register
        self.options = ctx.options
        self.budget = OutputBudget(self.options.max_output_kb * 1024)
        self.session: KernelSession | None = None
        self.skipped: set[int] = set()
        self.fatal: dict[int, str] = {}      # step index -> reason
        self.errors: dict[int, str] = {}     # step index -> "Type: message" of a raising cell
        self.verdicts: dict[str, dict] = {}  # exercise -> verdict record
        self.restarts = 0
        self.stopped = ""                    # why grading stopped early, if it did
        self.deadline = time.monotonic() + self.options.notebook_timeout

    # -- kernel lifecycle --
    def _start(self) -> None:
        self._stop()
        if self.cancel.is_set():
            raise _Cancelled()
        self.session = KernelSession(self.tmp, _kernel_env(self.options, self.tmp), self.options.memory_mb,
                                     self.options.file_size_mb, self.log_path)
        self.register(self.session)

    def _stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.register(None)
            self.session = None

    def _code(self, step: Step, nonce: str) -> tuple[str, bool]:
        if step.kind == "boot":
            return self.ctx.boot_code, False
        if step.kind == "capture":
            return f"__import__('course_lib.grading', fromlist=['_'])._kernel_capture({step.code})", False
        if step.kind == "test":
            return (f"__import__('course_lib.grading', fromlist=['_'])._kernel_run_test("
                    f"{step.grade_id!r}, {step.code!r}, {nonce!r})"), False
        return step.code, True

    def _run_step(self, index: int, record: bool = True) -> Outcome:
        step = self.plan.steps[index]
        nonce = base64.b32encode(os.urandom(15)).decode() if step.kind == "test" else ""
        code, history = self._code(step, nonce)
        remaining = self.deadline - time.monotonic()
        timeout = min(self.options.cell_timeout, remaining)
        if step.kind == "boot":
            timeout = min(max(self.options.cell_timeout, 60), max(remaining, 1))

        def keep(output):
            return bool(nonce) and isinstance(output.get("data"), dict) and \
                isinstance(output["data"].get(VERDICT_MIME), dict) and output["data"][VERDICT_MIME].get("nonce") == nonce

        budget = self.budget if record else OutputBudget(self.budget.limit)
        outcome = self.session.execute(code, timeout, budget, history, keep, self.cancel)
        if outcome.status == "cancelled":
            raise _Cancelled()
        if step.kind == "test" and record:
            for output in outcome.outputs:
                data = output.get("data") if isinstance(output, dict) else None
                verdict = data.get(VERDICT_MIME) if isinstance(data, dict) else None
                if isinstance(verdict, dict) and verdict.get("nonce") == nonce:
                    self.verdicts[step.exercise] = verdict
            outcome.outputs = [o for o in outcome.outputs if not keep(o)]
        if record and step.cell_index is not None and step.kind in ("trusted", "student", "test"):
            cell = self.plan.notebook.cells[step.cell_index]
            cell.outputs = outcome.outputs
        return outcome

    def _describe_fatal(self, outcome: Outcome) -> str:
        if outcome.status == "timeout":
            if time.monotonic() >= self.deadline - 0.05:
                return f"the notebook ran longer than {self.options.notebook_timeout:g} s"
            return f"ran longer than {self.options.cell_timeout:g} s and was stopped (an infinite loop?)"
        return f"crashed the kernel ({outcome.evalue or 'the kernel died'})"

    def _replay(self, upto: int) -> bool:
        """Restart the kernel and re-run steps before ``upto`` (no tests, no skipped steps)."""
        while True:
            if self.restarts >= self.options.max_restarts:
                self.stopped = f"grading stopped after {self.restarts} kernel restarts"
                return False
            self.restarts += 1
            self._start()
            ok = True
            for index in range(upto):
                if index in self.skipped or self.plan.steps[index].kind == "test":
                    continue
                if self.cancel.is_set():
                    raise _Cancelled()
                outcome = self._run_step(index, record=False)  # outputs of replays are not kept
                if outcome.status in ("timeout", "dead"):
                    if time.monotonic() >= self.deadline:
                        self.stopped = f"the notebook ran longer than {self.options.notebook_timeout:g} s"
                        return False
                    self.skipped.add(index)
                    self.fatal.setdefault(index, self._describe_fatal(outcome) + " (on replay)")
                    ok = False
                    break
                if index == 0 and outcome.status != "ok":
                    raise RuntimeError(f"grader set-up failed in the kernel: {outcome.ename}: {outcome.evalue}")
            if ok:
                return True

    def run(self) -> None:
        self._start()
        try:
            index = 0
            steps = self.plan.steps
            while index < len(steps):
                if self.cancel.is_set():
                    raise _Cancelled()
                if time.monotonic() >= self.deadline:
                    self.stopped = f"the notebook ran longer than {self.options.notebook_timeout:g} s"
                    break
                step = steps[index]
                if step.kind == "test" and self._answer_failed(step.exercise):
                    index += 1
                    continue
                outcome = self._run_step(index)
                if step.kind == "boot" and outcome.status != "ok":
                    if outcome.status == "dead":
                        raise RuntimeError(f"the grading kernel died while starting ({outcome.evalue}); is the "
                                           f"memory cap of {self.options.memory_mb} MB too low?")
                    raise RuntimeError(f"grader set-up failed in the kernel: {outcome.ename}: {outcome.evalue}")
                if outcome.status in ("timeout", "dead"):
                    self.fatal[index] = self._describe_fatal(outcome)
                    self.skipped.add(index)
                    if time.monotonic() >= self.deadline:
                        self.stopped = f"the notebook ran longer than {self.options.notebook_timeout:g} s"
                        break
                    if not self._replay(index):
                        break
                elif outcome.status == "error":
                    self.errors[index] = f"{outcome.ename}: {_short(outcome.evalue, 200)}"
                index += 1
        finally:
            self._stop()

    def _answer_failed(self, exercise: str | None) -> bool:
        return any(self.plan.steps[i].kind == "student" and self.plan.steps[i].exercise == exercise
                   for i in self.fatal)


def _exercise_result(exercise: Exercise, runner: _Runner, plan: Plan, memory_mb: int) -> ExerciseResult:
    def lost(status, reason):
        return ExerciseResult(exercise.grade_id, exercise.title, 0.0, exercise.points, status, reason)

    steps = plan.steps
    for index, reason in runner.fatal.items():  # the answer cell itself timed out or killed the kernel
        step = steps[index]
        if step.kind == "student" and step.exercise == exercise.grade_id:
            status = "timeout" if "longer than" in reason else "crashed"
            if reason.startswith("the notebook"):
                return lost(status, f"{reason}: stopped while running your answer cell")
            return lost(status, f"your answer cell {reason}")
    for index, reason in runner.fatal.items():
        step = steps[index]
        if step.kind == "test" and step.exercise == exercise.grade_id:
            status = "timeout" if "longer than" in reason else "crashed"
            if reason.startswith("the notebook"):
                return lost(status, f"{reason}: stopped while running this exercise's tests")
            return lost(status, f"the tests of this exercise {reason}")
    verdict = runner.verdicts.get(exercise.grade_id)
    if exercise.grade_id in plan.missing and not (verdict or {}).get("passed"):
        return lost("missing", plan.missing[exercise.grade_id])
    if verdict is None:
        if runner.stopped:
            return lost("not run", f"{runner.stopped} before this exercise's tests ran")
        earlier = [reason for index, reason in runner.fatal.items() if steps[index].kind != "student"]
        if earlier:
            return lost("not run", f"not tested: an earlier cell {earlier[-1]}")
        return lost("error", "the tests produced no verdict (the kernel's output was lost or tampered with)")
    if verdict.get("passed"):
        return ExerciseResult(exercise.grade_id, exercise.title, exercise.points, exercise.points, "passed", "")
    if verdict.get("tampered"):
        return lost("integrity", "your code changed the grader's checks while they ran ("
                    + ", ".join(verdict["tampered"][:4]) + "); no points")
    checks = verdict.get("checks") or []
    error = verdict.get("error")
    if any(c.get("status") == "todo" for c in checks) or (error and error.get("not_implemented")):
        return lost("not attempted", "not attempted: the answer still raises NotImplementedError")
    suffix = ""
    answer_errors = [runner.errors[i] for i in runner.errors
                     if steps[i].kind == "student" and steps[i].exercise == exercise.grade_id]
    if answer_errors:
        suffix = f" (your answer cell raised {answer_errors[-1]})"
    for check in checks:
        if check.get("status") != "pass" and "MemoryError" in str(check.get("message")):
            return lost("error", f"ran out of memory (the cap is {memory_mb} MB): {check.get('message')}")
        if check.get("status") != "pass":
            kind = "self-check failed" if check.get("status") == "fail" else "self-check error"
            return lost("failed" if check.get("status") == "fail" else "error",
                        f"{kind}: {check.get('message')}{suffix}")
    if error:
        message = error.get("message") or ""
        if error.get("type") == "MemoryError":
            return lost("error", f"ran out of memory (the cap is {memory_mb} MB): MemoryError {message}".strip())
        if error.get("assertion"):
            return lost("failed", f"hidden test failed: {message or 'an assertion did not hold'}{suffix}")
        name = re.match(r"name '(\w+)' is not defined", message)
        if error.get("type") == "NameError" and name and name.group(1) in plan.dropped_names:
            message += (" -- it is defined in a cell you added, which the grader does not run; "
                        "put it in the answer cell")
        return lost("error", f"your code raised {error.get('type')}: {message}{suffix}".rstrip())
    return lost("failed", "the tests did not pass")


@dataclass
class _Context:
    """Shared, read-only state of a grading run."""

    assignment: Assignment
    options: GradeOptions
    boot_code: str
    logs: Path


def grade_notebook_bytes(data: bytes, ctx: _Context, cancel: threading.Event | None = None,
                         register=lambda session: None, log_name: str = "kernel") -> tuple[SubmissionResult, object]:
    """Grade one submission's bytes. Never raises for anything a submission can contain.

    Returns:
        ``(result, rebuilt notebook with outputs or None)``.

    Raises:
        _Cancelled: the run is being stopped.
    """
    assignment, options = ctx.assignment, ctx.options
    cancel = cancel or threading.Event()
    started = time.monotonic()
    sha = hashlib.sha256(data).hexdigest()

    def finish(result, nb=None):
        result.seconds = round(time.monotonic() - started, 1)
        result.graded_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        result.assignment_sha256 = assignment.sha256
        return result, nb

    nb, problem = read_submission(data)
    if nb is None:
        return finish(SubmissionResult(sha, "invalid", _all_exercises(assignment, "not graded", problem)))
    plan = build_plan(nb, assignment)
    if plan.matched == 0:
        other = {(_nbgrader(c).get("grade_id") or "")[:5] for c in nb.cells} - {"", assignment.day}
        hint = f" (it has cells of {', '.join(sorted(other))})" if other else ""
        reason = (f"none of the answer cells of {assignment.name} were found: is this the {assignment.day} "
                  f"notebook?{hint}")
        return finish(SubmissionResult(sha, "invalid", _all_exercises(assignment, "not graded", reason),
                                       notes=plan.notes))
    with tempfile.TemporaryDirectory(prefix="course-grade-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "submission.ipynb").write_bytes(data)
        runner = _Runner(plan, ctx, tmp, ctx.logs / f"{log_name}.log", cancel, register)
        runner.run()
    exercises = [_exercise_result(e, runner, plan, options.memory_mb) for e in assignment.exercises]
    notes = list(plan.notes)
    if runner.budget.dropped:
        notes.append(f"the notebook printed more than {options.max_output_kb} KB of output; "
                     f"{runner.budget.dropped // 1024} KB beyond that were dropped")
    if runner.restarts:
        notes.append(f"the kernel was restarted {runner.restarts} time(s)")
    for index, reason in runner.fatal.items():
        step = plan.steps[index]
        if step.kind == "trusted":
            notes.append(f"instructor cell {step.cell_index} {reason} (it calls your code) and was skipped")
    restored = sorted({item for v in runner.verdicts.values() for item in v.get("restored", [])})
    flags = list(plan.flags)
    if restored:
        flags.append("changed course_lib/NumPy/builtins (undone before the tests): " + ", ".join(restored[:6]))
    if any(v.get("tampered") for v in runner.verdicts.values()):
        flags.append("changed the grader's checks while they ran")
    for gid in assignment.manual_cells:
        notes.append(f"{gid} is graded by hand (not in these points)")
    # An instructor cell that fails before any student code ran is not the student's doing (a memory cap
    # too low for the day, a broken environment): a grader error, which a re-run retries.
    first_student = next((i for i, step in enumerate(plan.steps) if step.kind == "student"), len(plan.steps))
    broken = [f"cell {plan.steps[i].cell_index}: {why}" for i, why in sorted({**runner.errors, **runner.fatal}.items())
              if i < first_student]
    if broken:
        reason = (f"grader error: an instructor cell failed before any answer ran ({broken[0]}); "
                  f"check the environment or raise --memory-mb (now {options.memory_mb}), then run again")
        return finish(SubmissionResult(sha, "error", _all_exercises(assignment, "not graded", reason), notes=notes,
                                       flags=flags, restarts=runner.restarts, final=False), plan.notebook)
    return finish(SubmissionResult(sha, "graded", exercises, notes=notes, flags=flags, restarts=runner.restarts),
                  plan.notebook)


# ==================================================================================================
# Trusted sources and watching the course's files
# ==================================================================================================

def _package_files(package_dir: Path) -> dict[str, list]:
    """``{module name: [path, source, is_package]}`` for every ``.py`` file of the package."""
    files = {}
    root = package_dir.resolve()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        parts = [root.name, *rel.with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        try:
            files[".".join(parts)] = [str(path), path.read_text(encoding="utf-8"), is_package]
        except (OSError, UnicodeDecodeError):
            continue
    return files


def _boot_code(files: dict, day: str) -> str:
    # Imported (and snapshotted) before any student code: the day's checks and the course_lib
    # modules they use, e.g. the reference implementations they compare against.
    preload = ["course_lib", "course_lib.checks"]
    day_checks = f"course_lib.checks.{day}"
    if day_checks in files:
        preload.append(day_checks)
        for name in sorted(set(re.findall(r"course_lib\.(\w+)", files[day_checks][1]))):
            if f"course_lib.{name}" in files and f"course_lib.{name}" not in preload:
                preload.append(f"course_lib.{name}")
    payload = base64.b64encode(zlib.compress(json.dumps(files).encode("utf-8"), 9)).decode("ascii")
    return _BOOT_TEMPLATE.replace("PRELOAD", repr(preload)).replace("PAYLOAD", repr(payload))


class _FileWatch:
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
        now = self._hashes()
        changed = sorted(k for k in set(now) | set(self.baseline) if now.get(k) != self.baseline.get(k))
        self.baseline = now
        return changed


# ==================================================================================================
# Gradebook: journal (append-only) + atomically rewritten CSV / JSON
# ==================================================================================================

def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Gradebook:
    """The results of an output folder.

    ``journal.jsonl`` holds one JSON line per graded file content, appended (and fsynced) as each
    submission finishes; ``gradebook.csv`` and ``gradebook.json`` are rewritten from it atomically
    after every submission. The grader keeps its own copy of the journal and restores the file if
    anything else wrote to it during the run.
    """

    def __init__(self, out: Path, assignment: Assignment):
        self.out = Path(out)
        self.assignment = assignment
        self.out.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.out / JOURNAL
        self.lock = threading.Lock()
        self.records: dict[str, SubmissionResult] = {}
        self.ignored_lines = 0
        self.tamper_events: list[str] = []
        existing = self.out / GRADEBOOK_JSON
        if existing.exists():
            try:
                day = json.loads(existing.read_text(encoding="utf-8")).get("day")
            except (OSError, ValueError, AttributeError):
                day = None
            if day and day != assignment.day:
                raise GradingError(f"{self.out} holds the gradebook of {day}; use another --out folder for "
                                   f"{assignment.day}")
        self.text = ""
        if self.journal_path.exists():
            self.text = self.journal_path.read_text(encoding="utf-8", errors="replace")
            if self.text and not self.text.endswith("\n"):  # a line cut off by a hard stop
                self.text = self.text[: self.text.rfind("\n") + 1]
                _atomic_write(self.journal_path, self.text)
            for line in self.text.splitlines():
                try:
                    data = json.loads(line)
                    if data.get("format") != _FORMAT:
                        raise ValueError("unknown format")
                    result = SubmissionResult.from_json(data["result"])
                except (ValueError, KeyError, TypeError):
                    self.ignored_lines += 1
                    continue
                if result.assignment_sha256 == assignment.sha256:
                    self.records[result.sha256] = result

    def done(self, sha256: str) -> SubmissionResult | None:
        """The final result already recorded for this content, if any."""
        result = self.records.get(sha256)
        return result if result is not None and result.final else None

    def _check_journal(self) -> None:
        try:
            current = self.journal_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            current = ""
        if current != self.text:
            self.tamper_events.append(f"{JOURNAL} was changed by something other than the grader; restored")
            _atomic_write(self.journal_path, self.text)

    def add(self, result: SubmissionResult, submissions: list[Submission]) -> None:
        """Record a finished submission: journal line first, then the rewritten gradebook files."""
        line = json.dumps({"format": _FORMAT, "result": result.to_json()}, sort_keys=True) + "\n"
        with self.lock:
            self._check_journal()
            with open(self.journal_path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.text += line
            self.records[result.sha256] = result
            self.write(submissions)

    def rows(self, submissions: list[Submission]) -> list[dict]:
        rows = []
        for sub in submissions:
            result = self.records.get(sub.sha256)
            if result is None:
                continue
            notes = list(result.notes)
            if sub.path.suffix == ".ipynb" and sub.path.name != self.assignment.solution_path.name:
                notes.append(f"the file is named {sub.path.name!r}, not {self.assignment.solution_path.name!r} "
                             "(graded anyway)")
            for ex in result.exercises:
                rows.append({"student": sub.student, "file": str(sub.path), "submission_id": sub.submission_id,
                             "day": self.assignment.day, "exercise": ex.exercise, "points": _num(ex.points),
                             "max_points": _num(ex.max_points), "status": ex.status, "reason": ex.reason,
                             "total": _num(result.total), "max_total": _num(result.max_total),
                             "notes": " | ".join(notes), "flags": " | ".join(result.flags)})
        return rows

    def write(self, submissions: list[Submission]) -> None:
        """Rewrite gradebook.csv and gradebook.json (atomically) for ``submissions``."""
        rows = self.rows(submissions)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _atomic_write(self.out / GRADEBOOK_CSV, buffer.getvalue())
        summary = []
        for sub in submissions:
            result = self.records.get(sub.sha256)
            if result is not None:
                summary.append({"student": sub.student, "file": str(sub.path), "submission_id": sub.submission_id,
                                "sha256": sub.sha256, "status": result.status, "total": _num(result.total),
                                "max_total": _num(result.max_total), "notes": result.notes, "flags": result.flags,
                                "seconds": result.seconds, "kernel_restarts": result.restarts,
                                "graded_at": result.graded_at,
                                "feedback": str(Path("feedback") / _feedback_name(sub))})
        document = {"day": self.assignment.day, "assignment": self.assignment.name,
                    "max_points": _num(self.assignment.max_points),
                    "exercises": [{"exercise": e.grade_id, "title": e.title, "points": _num(e.points)}
                                  for e in self.assignment.exercises],
                    "submissions": summary, "rows": rows}
        _atomic_write(self.out / GRADEBOOK_JSON, json.dumps(document, indent=1) + "\n")

    def finish(self, submissions: list[Submission]) -> None:
        with self.lock:
            self._check_journal()
            self.write(submissions)


def _num(value: float):
    return int(value) if float(value).is_integer() else round(float(value), 3)


# ==================================================================================================
# Feedback HTML
# ==================================================================================================

def _feedback_name(sub: Submission) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", sub.student).strip("._") or "student"
    return f"{safe}-{sub.submission_id}.html"


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;
vertical-align:top}.passed{background:#e8f6e8}.lost{background:#fdecec}pre{background:#f6f6f6;padding:.5rem;
overflow-x:auto;white-space:pre-wrap;margin:.2rem 0}.out{background:#fff;border-left:3px solid #ddd}
.err{background:#fff3f3;border-left:3px solid #d33}.md{color:#555;white-space:pre-wrap;font-size:.9rem}
.cell{margin:1rem 0}.tag{font-size:.8rem;color:#666}img{max-width:100%}"""


def _render_outputs(outputs, test_step: bool) -> str:
    parts = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            text = _ABSL_LOG.sub("", str(output.get("text", "")))  # native start-up logs are noise here
            if text.strip():
                parts.append(f"<pre class=out>{html.escape(_clip(text))}</pre>")
        elif kind == "error":
            if test_step:
                parts.append(f"<pre class=err>{html.escape(output.get('ename', ''))}</pre>")
            else:
                trace = _ANSI.sub("", "\n".join(output.get("traceback", []) or []))
                parts.append(f"<pre class=err>{html.escape(_clip(trace or output.get('ename', '')))}</pre>")
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {}) or {}
            png = data.get("image/png")
            if isinstance(png, str) and _BASE64.match(png) and len(png) < 4_000_000:
                parts.append(f'<img alt="figure" src="data:image/png;base64,{"".join(png.split())}">')
            elif "text/plain" in data:
                parts.append(f"<pre class=out>{html.escape(_clip(_source({'source': data['text/plain']})))}</pre>")
    return "".join(parts)


def _clip(text: str, limit: int = 20000) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} more characters]"


def render_feedback(sub: Submission, result: SubmissionResult, assignment: Assignment, nb=None) -> str:
    """The feedback page for one student: points per exercise with reasons, then the run notebook.

    Everything the submission produced is escaped; only PNG figures are embedded. Hidden tests are
    never shown (only whether they passed and the failure message).
    """
    esc = html.escape
    rows = []
    for ex in result.exercises:
        cls = "passed" if ex.points >= ex.max_points else "lost"
        rows.append(f"<tr class={cls}><td>{esc(ex.title)}<br><span class=tag>{esc(ex.exercise)}</span></td>"
                    f"<td>{_num(ex.points)} / {_num(ex.max_points)}</td><td>{esc(ex.status)}</td>"
                    f"<td>{esc(ex.reason)}</td></tr>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in result.notes)
    body = [f"<h1>{esc(assignment.name)}: feedback for {esc(sub.student)}</h1>",
            f"<p>File <code>{esc(sub.path.name)}</code> (id {esc(sub.submission_id)}), graded {esc(result.graded_at)}."
            f"</p><p><b>Total: {_num(result.total)} / {_num(result.max_total)} points</b></p>",
            "<table><tr><th>exercise</th><th>points</th><th>status</th><th>reason</th></tr>"
            + "".join(rows) + "</table>"]
    if notes:
        body.append(f"<h2>Notes</h2><ul>{notes}</ul>")
    if nb is not None:
        body.append("<h2>Your notebook as graded</h2><p class=tag>Instructor cells come from the lesson; "
                    "answer cells are yours. Check cells show the visible self-check; hidden tests are not shown."
                    "</p>")
        check_cells = {e.cell_index: e for e in assignment.exercises}
        results = {e.exercise: e for e in result.exercises}
        for index, cell in enumerate(nb.cells):
            source = _source(cell)
            if cell.cell_type != "code":
                body.append(f"<div class='cell md'>{esc(_clip(source, 4000))}</div>")
                continue
            if index in check_cells:
                ex = results.get(check_cells[index].grade_id)
                verdict = f"{_num(ex.points)} / {_num(ex.max_points)} points {esc(ex.status)}" if ex else ""
                body.append(f"<div class=cell><div class=tag>check cell: {verdict}</div>"
                            f"<pre>{esc(_source(assignment.lesson.cells[index]))}</pre>"
                            f"{_render_outputs(cell.get('outputs'), True)}</div>")
                continue
            tag = "your answer" if index in assignment.solution_cells.values() else "instructor cell"
            body.append(f"<div class=cell><div class=tag>{tag}</div><pre>{esc(_clip(source))}</pre>"
                        f"{_render_outputs(cell.get('outputs'), False)}</div>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(assignment.name)} - {esc(sub.student)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


# ==================================================================================================
# The batch
# ==================================================================================================

@dataclass
class BatchSummary:
    """What ``grade_batch`` did."""

    out: Path
    submissions: int
    graded_now: int
    skipped: int
    errors: int
    seconds: float
    warnings: list[str]


def grade_batch(inputs, day, out, options: GradeOptions | None = None, *, solutions_dir=None, package_dir=None,
                log=print) -> BatchSummary:
    """Grade every submission under ``inputs`` for ``day`` into ``out`` (see the module docstring).

    Args:
        inputs: files and/or folders of submissions.
        day: ``2``, ``"02"`` or ``"day02"``.
        out: output folder (journal, gradebook, feedback, kernel logs).
        options: limits (default :class:`GradeOptions`).
        solutions_dir: folder with the solution notebooks (default the course's ``solutions/``).
        package_dir: the ``course_lib`` package the kernels get (default the one installed).
        log: where progress lines go.

    Raises:
        GradingError: a setup problem (unknown day, no submissions, out folder of another day).
        KeyboardInterrupt: after stopping the kernels; results already recorded are kept.
    """
    options = options or GradeOptions()
    if options.workers < 1:
        raise GradingError("--workers must be at least 1")
    started = time.monotonic()
    assignment = load_assignment(day, solutions_dir)
    submissions = discover_submissions(inputs, assignment.name)
    out = Path(out)
    book = Gradebook(out, assignment)
    (out / "feedback").mkdir(exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    import course_lib

    package = Path(package_dir) if package_dir else Path(course_lib.__file__).resolve().parent
    files = _package_files(package)
    ctx = _Context(assignment, options, _boot_code(files, assignment.day), logs)
    watch = _FileWatch([package, assignment.solution_path])

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
        f"{skipped} already graded, {len(todo)} to grade with {options.workers} worker(s); output in {out}")
    book.write(submissions)
    for sha in by_sha:  # feedback for results that were already there (renamed files get theirs)
        if sha not in todo_set:
            for sub in by_sha[sha]:
                target = out / "feedback" / _feedback_name(sub)
                if not target.exists():
                    _atomic_write(target, render_feedback(sub, book.records[sha], assignment))

    cancel = threading.Event()
    active: dict[str, KernelSession | None] = {}
    started_at: dict[str, float] = {}
    active_lock = threading.Lock()
    warnings: list[str] = []
    extra_flags: dict[str, list[str]] = {}
    errors = 0

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
                reason = f"not graded: the file is {size >> 20} MB, too large for a lesson notebook"
                return SubmissionResult(sha, "invalid", _all_exercises(assignment, "not graded", reason),
                                        assignment_sha256=assignment.sha256,
                                        graded_at=time.strftime("%Y-%m-%dT%H:%M:%S")), None
            data = subs[0].path.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                raise OSError("the file changed while it was being graded; re-run")
            return grade_notebook_bytes(data, ctx, cancel, register, log_name=f"{subs[0].submission_id}")
        except _Cancelled:
            raise
        except Exception as error:  # a grader problem: recorded, not final (a re-run retries it)
            reason = f"grader error: {type(error).__name__}: {_short(error, 200)}"
            return SubmissionResult(sha, "error", _all_exercises(assignment, "not graded", reason), final=False,
                                    assignment_sha256=assignment.sha256,
                                    graded_at=time.strftime("%Y-%m-%dT%H:%M:%S")), None
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
                    _atomic_write(out / "feedback" / _feedback_name(sub), render_feedback(sub, result, assignment, nb))
                done_count += 1
                errors += result.status == "error"
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
    head = (f"[{done:>{len(str(total))}}/{total}] {who}: {_num(result.total)}/{_num(result.max_total)} points, "
            f"{result.status}, {result.seconds:.1f} s")
    lost = [f"    {e.exercise}: {e.reason}" for e in result.exercises if e.points < e.max_points]
    return "\n".join([head, *lost[:4]])


def run_cli(args) -> int:
    """``course grade``: the implementation behind the CLI (returns the exit status)."""
    options = GradeOptions(cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout, workers=args.workers,
                           memory_mb=args.memory_mb, max_output_kb=args.max_output_kb, force=args.force)
    summary = grade_batch(args.submissions, args.day, args.out, options)
    return 1 if summary.errors else 0

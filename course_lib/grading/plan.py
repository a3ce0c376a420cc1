"""Rebuilding a submission: trusted cells from the lesson, answers from the submission, and the steps to run."""

from __future__ import annotations

import ast
import copy
import json
import re
import threading
from dataclasses import dataclass
from enum import Enum

from course_lib.grading.assignment import Assignment, nbgrader_meta
from course_lib.lessons import cell_source

# Names in a student's own cells that ordinary exercise code has no use for. They cost nothing;
# the gradebook lists them as "flags" so that an instructor can look at those submissions.
AUDIT_PATTERNS = {
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

# `course grade` plans submissions in several threads. CPython's conversion of a parse tree into `ast` objects keeps
# its recursion depth in state shared by the interpreter; when a garbage collection in one thread lets another
# thread parse at the same moment, Python 3.11 raises "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905). One parse at a time avoids it.
_PARSE_LOCK = threading.RLock()


def _parse(source: str) -> ast.Module:
    """``ast.parse`` one source at a time (see ``_PARSE_LOCK``); raises SyntaxError as ``ast.parse`` does."""
    with _PARSE_LOCK:
        return ast.parse(source)


class StepKind(str, Enum):
    """What a step of a plan is."""

    BOOT = "boot"          # grader set-up in a fresh kernel (the guard)
    CAPTURE = "capture"    # guard bookkeeping before a student cell
    TRUSTED = "trusted"    # an instructor cell
    STUDENT = "student"    # a solution cell from the submission
    TEST = "test"          # an exercise's check cell with hidden tests, run through the guard


@dataclass
class Step:
    """One code execution in the grading kernel.

    Attributes:
        kind: see :class:`StepKind`.
        code: the cell's source; for ``CAPTURE`` the JSON list of names to capture; for ``TEST``
            the solution-side check cell (with hidden tests), sent to the kernel only when it runs.
        cell_index: the rebuilt notebook's cell whose outputs this step fills (None for set-up).
        grade_id: the answer or check cell's grade_id.
        exercise: the exercise (check cell grade_id) the step belongs to.
    """

    kind: StepKind
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
    missing: dict[str, str]          # exercise grade_id -> grade_id of its answer cell, missing
    dropped_names: set[str]          # names defined only in cells the student added (not run)
    matched: int                     # answer cells found in the submission


def bound_names(source: str) -> list[str]:
    """Top-level names a cell binds (assignments, imports, defs, loop/with targets)."""
    try:
        tree = _parse(source)
    except SyntaxError:
        cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            tree = _parse(cleaned)
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


def defined_functions(source: str) -> set[str]:
    """Names of the functions and classes a cell defines at top level."""
    try:
        tree = _parse(source)
    except SyntaxError:
        return set(re.findall(r"^def\s+([A-Za-z_]\w*)", source, flags=re.M))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _answers(nb, assignment: Assignment, notes: list[str]) -> tuple[dict[str, str], set[int]]:
    """The student's source per answer cell (grade_id -> code) and the ids of the cells used."""
    lesson = assignment.lesson
    student_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    by_id: dict[str, list] = {}
    for cell in student_cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if isinstance(grade_id, str):
            by_id.setdefault(grade_id, []).append(cell)
    used: set[int] = set()
    answers: dict[str, str] = {}
    for grade_id, index in assignment.solution_cells.items():
        cells = by_id.get(grade_id, [])
        how = "grade_id"
        if not cells:  # metadata lost (cell re-created, notebook copied): match by defined functions
            wanted = defined_functions(cell_source(lesson.cells[index]))
            cells = [c for c in student_cells
                     if wanted and wanted <= defined_functions(cell_source(c)) and not nbgrader_meta(c).get("grade_id")]
            how = "content"
        if not cells:
            continue
        if len(cells) > 1:
            notes.append(f"{len(cells)} cells carry the answer {grade_id!r}; they were run one after the other")
        if how == "content":
            notes.append(f"the answer cell {grade_id!r} had lost its grading metadata; matched by the functions it defines")
        used.update(id(c) for c in cells)
        answers[grade_id] = "\n\n".join(cell_source(c) for c in cells)
    return answers, used


def build_plan(nb, assignment: Assignment) -> Plan:
    """Rebuild a submission from the lesson plus the student's solution cells, and list the steps.

    The student's notebook contributes only the source of its solution cells (matched by nbgrader
    ``grade_id``; a cell that lost its metadata is matched by the functions it defines; several
    cells with the same ``grade_id`` are run one after the other, as in the student's notebook).
    Everything else, including the check cells and all metadata, is the instructor's.
    """
    lesson = assignment.lesson
    notes: list[str] = []
    missing: dict[str, str] = {}
    answers, used = _answers(nb, assignment, notes)

    # What did the student change outside the answers? (Reported, never used.)
    student_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    submitted_sources = {cell_source(c).strip() for c in nb.cells}
    trusted_cells = [c for i, c in enumerate(lesson.cells) if i not in assignment.solution_cells.values()]
    changed = sum(1 for c in trusted_cells if cell_source(c).strip() and cell_source(c).strip() not in submitted_sources)
    if changed:
        notes.append(f"{changed} of the {len(trusted_cells)} instructor cells were edited or deleted in the "
                     "submission; the instructor's versions were run")
    lesson_sources = {cell_source(c).strip() for c in lesson.cells}
    added = [c for c in student_cells if id(c) not in used and cell_source(c).strip()
             and cell_source(c).strip() not in lesson_sources
             and nbgrader_meta(c).get("grade_id") not in assignment.solution_cells]
    dropped: set[str] = set()
    for cell in added:
        dropped.update(bound_names(cell_source(cell)))
    if added:
        notes.append(f"{len(added)} cell(s) added or edited outside the answer cells were not run "
                     "(only the answer cells of a submission are graded)")
    exercise_of = {}
    for exercise in assignment.exercises:
        for grade_id in exercise.solution_ids:
            exercise_of[grade_id] = exercise.grade_id
    for grade_id, exercise in exercise_of.items():
        if grade_id not in answers:
            missing[exercise] = grade_id

    rebuilt = copy.deepcopy(lesson)
    answer_names = set()  # names the answer cells define: the student's, never overridden by the guard
    for index in assignment.solution_cells.values():
        answer_names.update(bound_names(cell_source(lesson.cells[index])))
    flags: set[str] = set()
    steps: list[Step] = [Step(StepKind.BOOT, "")]
    pending_names: list[str] = []
    check_index = {e.cell_index: e for e in assignment.exercises}
    solution_index = {index: gid for gid, index in assignment.solution_cells.items()}
    for index, cell in enumerate(rebuilt.cells):
        if cell.cell_type != "code":
            continue
        if index in solution_index:
            grade_id = solution_index[index]
            source = answers.get(grade_id, cell_source(cell))
            for label, pattern in AUDIT_PATTERNS.items():
                if grade_id in answers and re.search(pattern, source) and not re.search(pattern, cell_source(cell)):
                    flags.add(label)
            steps.append(Step(StepKind.CAPTURE, json.dumps(pending_names)))
            pending_names = []
            steps.append(Step(StepKind.STUDENT, source, index, grade_id, exercise_of.get(grade_id)))
            cell.source = source
        elif index in check_index:
            exercise = check_index[index]
            steps.append(Step(StepKind.TEST, cell_source(assignment.solution.cells[index]), index,
                              exercise.grade_id, exercise.grade_id))
        else:
            source = cell_source(cell)
            if source.strip():
                steps.append(Step(StepKind.TRUSTED, source, index))
                pending_names.extend(n for n in bound_names(source) if n not in answer_names)
    return Plan(rebuilt, steps, notes, sorted(flags), missing, dropped, len(answers))

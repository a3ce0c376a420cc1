"""Submitted files: finding them, naming their student, identifying them by content, reading them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading.assignment import GradingError

MAX_SUBMISSION_MB = 100   # larger files are not read (a lesson notebook with outputs is a few MB)


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
        """The first 12 hex digits of ``sha256``: the gradebook's ``submission_id`` column."""
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
                found.setdefault(path.resolve(), Submission(path, student, file_sha256(path)))
        else:
            found.setdefault(root.resolve(), Submission(root, _student_from_file(root, lesson_stem), file_sha256(root)))
    if not found:
        raise GradingError("no submission files found in " + ", ".join(map(str, inputs)))
    return sorted(found.values(), key=lambda s: (s.student, str(s.path)))


def _student_from_file(path: Path, lesson_stem: str) -> str:
    stem = path.stem
    lesson_like = stem[:3] == "day" and stem[3:5].isdigit()   # a lesson's file name, not a student's
    if (lesson_stem and stem.startswith(lesson_stem)) or lesson_like:
        return path.resolve().parent.name
    return stem


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_submission(data: bytes):
    """Parse submitted bytes as a version-4 notebook (older versions are converted).

    Returns:
        ``(notebook, "")`` or ``(None, reason)`` saying why it is not a usable notebook.
    """
    import nbformat

    from course_lib.lessons import cell_source

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
            cell["source"] = cell_source(cell)
            cells.append(cell)
    nb["cells"] = cells
    return nb, ""

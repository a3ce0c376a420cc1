"""The gradebook of an output folder: ``journal.jsonl`` (append-only) and ``gradebook.csv`` / ``gradebook.json``."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path

from course_lib.grading.assignment import Assignment, GradingError
from course_lib.grading.feedback import feedback_name
from course_lib.grading.results import SubmissionResult, num
from course_lib.grading.submissions import Submission

JOURNAL = "journal.jsonl"
GRADEBOOK_CSV = "gradebook.csv"
GRADEBOOK_JSON = "gradebook.json"
CSV_COLUMNS = ("student", "file", "submission_id", "day", "exercise", "points", "max_points", "status", "reason",
               "total", "max_total", "notes", "flags")
_FORMAT = 1  # journal record format


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync and rename: readers see the old or the new file."""
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

    Args:
        out: the output folder (created if missing).
        assignment: the day being graded; journal lines recorded for another version of its solution
            (another ``sha256``) are not loaded, and unreadable lines are counted in ``ignored_lines``.

    Raises:
        GradingError: ``out`` holds the ``gradebook.json`` of another day.
        OSError: the folder cannot be created, or the journal cannot be read or rewritten.
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
                atomic_write(self.journal_path, self.text)
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
            atomic_write(self.journal_path, self.text)

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
        """The gradebook rows of ``submissions``: one dict per (submission, exercise), keys :data:`CSV_COLUMNS`.

        Submissions without a recorded result are left out. Points are written with :func:`num`; a
        notebook that is not named like the solution gets a note saying so.
        """
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
                             "day": self.assignment.day, "exercise": ex.exercise, "points": num(ex.points),
                             "max_points": num(ex.max_points), "status": ex.status.value, "reason": ex.reason,
                             "total": num(result.total), "max_total": num(result.max_total),
                             "notes": " | ".join(notes), "flags": " | ".join(result.flags)})
        return rows

    def write(self, submissions: list[Submission]) -> None:
        """Rewrite gradebook.csv and gradebook.json (atomically) for ``submissions``."""
        rows = self.rows(submissions)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.out / GRADEBOOK_CSV, buffer.getvalue())
        summary = []
        for sub in submissions:
            result = self.records.get(sub.sha256)
            if result is not None:
                summary.append({"student": sub.student, "file": str(sub.path), "submission_id": sub.submission_id,
                                "sha256": sub.sha256, "status": result.status.value, "total": num(result.total),
                                "max_total": num(result.max_total), "notes": result.notes, "flags": result.flags,
                                "seconds": result.seconds, "kernel_restarts": result.restarts,
                                "graded_at": result.graded_at,
                                "feedback": str(Path("feedback") / feedback_name(sub))})
        document = {"day": self.assignment.day, "assignment": self.assignment.name,
                    "max_points": num(self.assignment.max_points),
                    "exercises": [{"exercise": e.grade_id, "title": e.title, "points": num(e.points)}
                                  for e in self.assignment.exercises],
                    "submissions": summary, "rows": rows}
        atomic_write(self.out / GRADEBOOK_JSON, json.dumps(document, indent=1) + "\n")

    def finish(self, submissions: list[Submission]) -> None:
        """End of a run: restore ``journal.jsonl`` if something else changed it, then rewrite the gradebook files."""
        with self.lock:
            self._check_journal()
            self.write(submissions)

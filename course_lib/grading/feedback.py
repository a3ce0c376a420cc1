"""The feedback page returned to a student: points and reasons per exercise, then the notebook as graded.

The notebook part is rendered by nbconvert (``basic`` template). What a submission produced is
reduced first to what is safe to show: text (escaped by nbconvert) and PNG figures; HTML,
JavaScript, SVG and other rich outputs are dropped, tracebacks of the hidden tests are reduced to
the exception's name, and the check cells show the lesson's visible self-check, never the hidden
tests.
"""

from __future__ import annotations

import copy
import html
import re
import threading

from course_lib.grading.results import num
from course_lib.lessons import cell_source
from course_lib.reporting import strip_ansi

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_ABSL_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\).*|[IWE]\d{4} [\d:. ]+\d+ [\w.]+:\d+\].*|"
                       r"To enable the following instructions:.*)\n?", re.M)
_TEXT_LIMIT = 20000
_PNG_LIMIT = 4_000_000
_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;
vertical-align:top}.passed{background:#e8f6e8}.lost{background:#fdecec}pre{background:#f6f6f6;padding:.5rem;
overflow-x:auto;white-space:pre-wrap;margin:.2rem 0}.output_area pre{background:#fff;border-left:3px solid #ddd}
.output_error pre{background:#fff3f3;border-left:3px solid #d33}.text_cell_render{color:#555;font-size:.9rem}
.cell{margin:.2rem 0 1rem}.tag{font-size:.8rem;color:#666;margin-top:1rem}img{max-width:100%}
.ansi-red-fg{color:#c00}.ansi-green-fg{color:#080}.ansi-yellow-fg{color:#a60}.ansi-blue-fg{color:#00c}
.ansi-bold{font-weight:bold}"""

_exporter = None
_exporter_lock = threading.Lock()


def feedback_name(sub) -> str:
    """The feedback file of a submission: ``<student>-<submission id>.html`` (a safe file name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", sub.student).strip("._") or "student"
    return f"{safe}-{sub.submission_id}.html"


def _clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} more characters]"


def safe_outputs(outputs, test_step: bool) -> list:
    """The outputs of a cell reduced to clipped text and valid PNG figures.

    Args:
        outputs: nbformat outputs as the grader collected them.
        test_step: the outputs of a check cell (hidden tests ran there): tracebacks become the
            exception's name only.
    """
    from nbformat.v4 import new_output

    kept = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            text = _ABSL_LOG.sub("", str(output.get("text", "")))  # native start-up logs are noise here
            if text.strip():
                kept.append(new_output("stream", name=output.get("name") or "stdout", text=_clip(text)))
        elif kind == "error":
            name = str(output.get("ename", ""))
            trace = [name] if test_step else [_clip(strip_ansi("\n".join(map(str, output.get("traceback") or []))) or name)]
            kept.append(new_output("error", ename=name, evalue="", traceback=trace))
        elif kind in ("display_data", "execute_result"):
            data = output.get("data", {}) or {}
            png = data.get("image/png")
            if isinstance(png, str) and _BASE64.match(png) and len(png) < _PNG_LIMIT:
                kept.append(new_output("display_data", data={"image/png": "".join(png.split())}))
            elif "text/plain" in data:
                kept.append(new_output("display_data", data={"text/plain": _clip(cell_source({"source": data["text/plain"]}))}))
    return kept


def _tag(text: str):
    from nbformat.v4 import new_raw_cell

    return new_raw_cell(f"<div class=tag>{html.escape(text)}</div>", metadata={"format": "text/html"})


def _notebook_html(nb, result, assignment) -> str:
    """The graded notebook as HTML (nbconvert), after :func:`safe_outputs` and the cell tags."""
    global _exporter
    from nbconvert import HTMLExporter

    shown = copy.deepcopy(nb)
    check_cells = {e.cell_index: e for e in assignment.exercises}
    answers = set(assignment.solution_cells.values())
    results = {e.exercise: e for e in result.exercises}
    cells = []
    for index, cell in enumerate(shown.cells):
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        if index in check_cells:
            ex = results.get(check_cells[index].grade_id)
            verdict = f"{num(ex.points)} / {num(ex.max_points)} points {ex.status}" if ex else ""
            cells.append(_tag(f"check cell: {verdict}"))
            cell.source = cell_source(assignment.lesson.cells[index])   # the visible self-check only
            cell.outputs = safe_outputs(cell.get("outputs"), True)
        else:
            cells.append(_tag("your answer" if index in answers else "instructor cell"))
            cell.source = _clip(cell_source(cell))
            cell.outputs = safe_outputs(cell.get("outputs"), False)
        cell.execution_count = None
        cells.append(cell)
    shown.cells = cells
    with _exporter_lock:
        if _exporter is None:
            _exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True,
                                     exclude_anchor_links=True)
        body, _ = _exporter.from_notebook_node(shown)
    return body


def render_feedback(sub, result, assignment, nb=None) -> str:
    """The feedback page for one student: points per exercise with reasons, then the run notebook.

    Args:
        sub: the :class:`~course_lib.grading.submissions.Submission`.
        result: its :class:`~course_lib.grading.results.SubmissionResult`.
        assignment: the :class:`~course_lib.grading.assignment.Assignment`.
        nb: the rebuilt notebook with the outputs of the run (None: the summary only).

    Everything the submission produced is escaped; only PNG figures are embedded. Hidden tests are
    never shown (only whether they passed and the failure message).
    """
    esc = html.escape
    rows = []
    for ex in result.exercises:
        cls = "passed" if ex.points >= ex.max_points else "lost"
        rows.append(f"<tr class={cls}><td>{esc(ex.title)}<br><span class=tag>{esc(ex.exercise)}</span></td>"
                    f"<td>{num(ex.points)} / {num(ex.max_points)}</td><td>{esc(str(ex.status))}</td>"
                    f"<td>{esc(ex.reason)}</td></tr>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in result.notes)
    body = [f"<h1>{esc(assignment.name)}: feedback for {esc(sub.student)}</h1>",
            f"<p>File <code>{esc(sub.path.name)}</code> (id {esc(sub.submission_id)}), graded {esc(result.graded_at)}."
            f"</p><p><b>Total: {num(result.total)} / {num(result.max_total)} points</b></p>",
            "<table><tr><th>exercise</th><th>points</th><th>status</th><th>reason</th></tr>"
            + "".join(rows) + "</table>"]
    if notes:
        body.append(f"<h2>Notes</h2><ul>{notes}</ul>")
    if nb is not None:
        body.append("<h2>Your notebook as graded</h2><p class=tag>Instructor cells come from the lesson; "
                    "answer cells are yours. Check cells show the visible self-check; hidden tests are not shown.</p>")
        body.append(_notebook_html(nb, result, assignment))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(assignment.name)} - {esc(sub.student)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")

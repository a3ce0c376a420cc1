"""The lessons run as students run them: blank (nothing written yet) and fully solved.

- A blank lesson runs to its end (every exercise falls back to the reference with a one-line note) and no
  line of any solution region appears in any of its outputs: hints, verdicts and the code it shows never
  give an answer away.
- A lesson with the solutions pasted in reaches the same quality floors as its solution notebook (it
  raises nothing, so every floor assertion held) for the days whose exercises train the day's model.

The lessons run on the tiny ``digits`` dataset unless ``COURSE_LESSON_DATASET`` names another: what these tests
check (no solution line shown, no crash, the student's code reaching the floors) does not depend on the images,
and the solution notebooks themselves run on the default dataset (nbval), so CI pays for the 28x28 runs once.
"""

from __future__ import annotations

import os

import pytest

from course_lib import lessons, paths
from course_lib.reporting import extract_metrics, strip_ansi

LESSONS = sorted(paths.lessons_dir().glob("day*.ipynb"))
#: Days whose lesson is also run with the solutions pasted in: days whose exercises train the day's model.
SOLVED_DAYS = ("day05", "day07", "day10")
CELL_TIMEOUT = 900
LESSON_DATASET = os.environ.get("COURSE_LESSON_DATASET", "digits")


@pytest.fixture(scope="module")
def shared_build_dir(tmp_path_factory):
    """One build folder for the lesson runs of this module (Day 10 reuses the encoder Day 07 saves there), and
    the dataset of the lesson kernels (:data:`LESSON_DATASET`); both environment variables restored afterwards."""
    folder = tmp_path_factory.mktemp("lesson-build")
    settings = {"COURSE_BUILD_DIR": str(folder), "COURSE_DATASET": LESSON_DATASET}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield folder
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _execute(nb, allow_errors: bool):
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(paths.lessons_dir())}})
    client.execute()
    return nb


def _output_text(nb) -> str:
    """Everything a student sees below the cells: streams, rich outputs and error tracebacks."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif output.get("output_type") == "error":
                parts.append(strip_ansi("\n".join(output.get("traceback", []) or [])))
            else:
                for mime, value in (output.get("data") or {}).items():
                    if mime.startswith("text/") or mime.endswith("+json"):
                        parts.append(value if isinstance(value, str) else repr(value))
    return "\n".join(parts)


def _errors(nb) -> list[tuple[int, str, str]]:
    return [(index, output.get("ename", ""), output.get("evalue", ""))
            for index, cell in enumerate(nb.cells) for output in cell.get("outputs", []) or []
            if output.get("output_type") == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem[:5] for p in LESSONS])
def test_blank_lesson_runs_and_shows_no_solution_line(lesson, shared_build_dir):
    executed = _execute(lessons.read(lesson), allow_errors=True)
    solution = lessons.read(paths.solutions_dir() / lesson.name)
    text = _output_text(executed)
    leaked = sorted(line for line in lessons.solution_lines(solution) if line in text)
    assert not leaked, f"{lesson.name}: solution lines appear in the outputs of the blank lesson: {leaked}"
    # A blank student can read the whole notebook: the only error allowed is the final self-check summary
    # (assert_all_passed lists the exercises still to do), never a NameError or a crash half-way.
    errors = _errors(executed)
    unexpected = [e for e in errors if e[1] != "AssertionError" or "self-checks not passing" not in e[2]]
    assert not unexpected, f"{lesson.name}: the blank lesson stops with {unexpected}"
    assert errors, f"{lesson.name}: a blank lesson should end by listing the exercises still to do"


@pytest.mark.slow
@pytest.mark.parametrize("day", SOLVED_DAYS)
def test_solved_lesson_reaches_the_solution_floors(day, shared_build_dir):
    (solution_path,) = sorted(paths.solutions_dir().glob(f"{day}_*.ipynb"))
    solved = lessons.solved_lesson(lessons.read(solution_path), name=solution_path.name)
    lesson = lessons.read(paths.lessons_dir() / solution_path.name)
    assert [c.cell_type for c in solved.cells] == [c.cell_type for c in lesson.cells]
    executed = _execute(solved, allow_errors=False)  # raises CellExecutionError if a floor does not hold
    assert extract_metrics(executed).get(day), f"{day}: the solved lesson recorded no metrics"

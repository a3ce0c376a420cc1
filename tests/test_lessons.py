"""Unit tests for course_lib.lessons: lessons generated from solution notebooks (nbgrader-style markers), and the
notebook helpers cell_source and day_key."""

import copy

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_lib import lessons, paths
from course_lib import lessons as notebooks
from course_lib.lessons import MarkerError, find_regions, generate_lessons, make_lesson

FUNCTION_SOLUTION = '''def square(x):
    """Return x squared."""
    ### BEGIN SOLUTION
    y = x * x
    return y
    ### END SOLUTION

print(square(3))'''

HIDDEN_TESTS = '''assert square(2) == 4
### BEGIN HIDDEN TESTS
assert square(5) == 25
assert square(-1) == 1
### END HIDDEN TESTS
print("visible")'''

MARKDOWN_ANSWER = '''**Question.** Why does k-means need several restarts?

### BEGIN SOLUTION
Because Lloyd's algorithm only finds a local optimum.
### END SOLUTION'''


def solution_notebook():
    nb = new_notebook()
    executed = new_code_cell(FUNCTION_SOLUTION, execution_count=3)
    executed.outputs = [new_output("stream", name="stdout", text="9\n")]
    nb.cells = [
        new_markdown_cell("# Day 01\nIntro text."),
        new_code_cell("import numpy as np", execution_count=1),
        executed,
        new_code_cell(HIDDEN_TESTS, execution_count=4),
        new_markdown_cell(MARKDOWN_ANSWER),
        new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
    ]
    return nb


# --- make_lesson ----------------------------------------------------------------------------------

def test_solution_region_in_function_body_keeps_indentation():
    lesson = make_lesson(solution_notebook())
    assert lesson.cells[2].source == ('def square(x):\n'
                                      '    """Return x squared."""\n'
                                      '    # YOUR CODE HERE\n'
                                      '    raise NotImplementedError()\n'
                                      '\n'
                                      'print(square(3))')
    compile(lesson.cells[2].source, "<lesson>", "exec")  # still valid Python


def test_top_level_solution_region():
    lesson = make_lesson(solution_notebook())
    assert lesson.cells[5].source == "# YOUR CODE HERE\nraise NotImplementedError()"


def test_hidden_tests_removed():
    lesson = make_lesson(solution_notebook())
    assert lesson.cells[3].source == 'assert square(2) == 4\nprint("visible")'
    assert "square(5)" not in lesson.cells[3].source


def test_markdown_region_becomes_answer_placeholder():
    lesson = make_lesson(solution_notebook())
    assert lesson.cells[4].source == ("**Question.** Why does k-means need several restarts?\n\n"
                                      "YOUR ANSWER HERE")


def test_unmarked_cells_unchanged_and_outputs_cleared():
    solution = solution_notebook()
    lesson = make_lesson(solution)
    assert lesson.cells[0].source == solution.cells[0].source
    assert lesson.cells[1].source == "import numpy as np"
    for cell in lesson.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
    assert len(lesson.cells) == len(solution.cells)
    assert [c.cell_type for c in lesson.cells] == [c.cell_type for c in solution.cells]
    nbformat.validate(lesson)


def test_input_not_mutated():
    solution = solution_notebook()
    before = copy.deepcopy(solution)
    make_lesson(solution)
    assert solution == before
    assert solution.cells[2].outputs[0].text == "9\n"
    assert solution.cells[2].execution_count == 3
    assert "### BEGIN SOLUTION" in solution.cells[2].source


def test_list_source_is_accepted():
    nb = new_notebook(cells=[new_code_cell("")])
    nb.cells[0].source = ["x = 1\n", "### BEGIN SOLUTION\n", "x = 2\n", "### END SOLUTION"]
    assert make_lesson(nb).cells[0].source == "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()"


def test_several_regions_in_one_cell():
    source = ("a = 1\n"
              "### BEGIN SOLUTION\nb = 2\n### END SOLUTION\n"
              "if a:\n"
              "        ### BEGIN SOLUTION\n        c = 3\n        ### END SOLUTION\n"
              "### BEGIN HIDDEN TESTS\nassert b == 2\n### END HIDDEN TESTS\n"
              "d = 4")
    lesson = make_lesson(new_notebook(cells=[new_code_cell(source)]))
    assert lesson.cells[0].source == ("a = 1\n# YOUR CODE HERE\nraise NotImplementedError()\n"
                                      "if a:\n        # YOUR CODE HERE\n        raise NotImplementedError()\n"
                                      "d = 4")


def test_find_regions_reports_lines_and_indent():
    regions = find_regions(FUNCTION_SOLUTION)
    assert regions == [notebooks.Region("solution", 2, 5, "    ")]
    regions = find_regions(HIDDEN_TESTS)
    assert regions == [notebooks.Region("hidden", 1, 4, "")]
    assert find_regions("x = 1  # ### BEGIN SOLUTION in a comment is not a marker") == []


@pytest.mark.parametrize("source, fragment", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a matching"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "inside an open"),
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "inside an open"),
    ("### BEGIN HIDDEN TESTS\nx = 1\n### END SOLUTION", "without a matching"),
])
def test_marker_errors_name_the_cell(source, fragment):
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell("ok = 1"), new_code_cell(source)])
    with pytest.raises(MarkerError) as info:
        make_lesson(nb, name="day02_clustering.ipynb")
    message = str(info.value)
    assert fragment in message
    assert "day02_clustering.ipynb" in message
    assert "cell 2" in message
    assert "line" in message


def test_marker_error_is_value_error():
    assert issubclass(MarkerError, ValueError)


def test_strip_outputs_in_place():
    nb = solution_notebook()
    assert notebooks.strip_outputs(nb) is nb
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "### BEGIN SOLUTION" in nb.cells[2].source  # sources untouched


# --- generate_lessons -----------------------------------------------------------------------------

def write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def course_dirs(tmp_path):
    solutions, lessons = tmp_path / "solutions", tmp_path / "lessons"
    write(solutions / "day01_intro.ipynb", solution_notebook())
    write(solutions / "day02_clustering.ipynb",
          new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nk = 3\n### END SOLUTION")]))
    write(solutions / "notes.ipynb", new_notebook(cells=[new_code_cell("x = 1")]))  # not a day: ignored
    write(solutions / "day3_bad_name.ipynb", new_notebook())  # not dayNN_: ignored
    return solutions, lessons


def test_solution_notebooks_filters_and_sorts(course_dirs):
    solutions, _ = course_dirs
    write(solutions / "day10_capstone.ipynb", new_notebook())
    names = [p.name for p in notebooks.solution_notebooks(solutions)]
    assert names == ["day01_intro.ipynb", "day02_clustering.ipynb", "day10_capstone.ipynb"]


def test_generate_lessons_writes_lessons(course_dirs):
    solutions, lessons = course_dirs
    changed = generate_lessons(solutions, lessons)
    assert changed == [lessons / "day01_intro.ipynb", lessons / "day02_clustering.ipynb"]
    assert sorted(p.name for p in lessons.iterdir()) == ["day01_intro.ipynb", "day02_clustering.ipynb"]
    lesson = notebooks.read(lessons / "day01_intro.ipynb")
    assert lesson == make_lesson(notebooks.read(solutions / "day01_intro.ipynb"))
    text = (lessons / "day02_clustering.ipynb").read_text(encoding="utf-8")
    assert "k = 3" not in text and "raise NotImplementedError()" in text
    assert text.endswith("\n")
    assert text == notebooks.dumps(make_lesson(notebooks.read(solutions / "day02_clustering.ipynb")))


def test_generate_lessons_is_idempotent(course_dirs):
    solutions, lessons = course_dirs
    generate_lessons(solutions, lessons)
    first = {p.name: p.read_bytes() for p in lessons.iterdir()}
    assert generate_lessons(solutions, lessons) == []
    assert generate_lessons(solutions, lessons, check=True) == []
    assert {p.name: p.read_bytes() for p in lessons.iterdir()} == first


def test_generate_lessons_check_reports_without_writing(course_dirs):
    solutions, lessons = course_dirs
    changed = generate_lessons(solutions, lessons, check=True)
    assert [p.name for p in changed] == ["day01_intro.ipynb", "day02_clustering.ipynb"]
    assert not lessons.exists()

    generate_lessons(solutions, lessons)
    edited = lessons / "day02_clustering.ipynb"
    edited.write_text(edited.read_text(encoding="utf-8").replace("NotImplementedError", "Oops"), encoding="utf-8")
    before = edited.read_text(encoding="utf-8")
    assert generate_lessons(solutions, lessons, check=True) == [edited]
    assert edited.read_text(encoding="utf-8") == before  # check mode never writes
    assert generate_lessons(solutions, lessons) == [edited]
    assert "Oops" not in edited.read_text(encoding="utf-8")


def test_generate_lessons_follows_solution_edits(course_dirs):
    solutions, lessons = course_dirs
    generate_lessons(solutions, lessons)
    write(solutions / "day02_clustering.ipynb",
          new_notebook(cells=[new_code_cell("print('new text')\n### BEGIN SOLUTION\nk = 4\n### END SOLUTION")]))
    assert generate_lessons(solutions, lessons, check=True) == [lessons / "day02_clustering.ipynb"]
    generate_lessons(solutions, lessons)
    assert "new text" in (lessons / "day02_clustering.ipynb").read_text(encoding="utf-8")


def test_generate_lessons_deletes_stale(course_dirs):
    solutions, lessons = course_dirs
    generate_lessons(solutions, lessons)
    stale = write(lessons / "day09_removed.ipynb", new_notebook())
    keep = lessons / "README.md"
    keep.write_text("not a lesson", encoding="utf-8")
    assert generate_lessons(solutions, lessons, check=True) == [stale]
    assert stale.exists()
    assert generate_lessons(solutions, lessons) == [stale]
    assert not stale.exists()
    assert keep.exists()


def test_generate_lessons_marker_error(course_dirs):
    solutions, lessons = course_dirs
    write(solutions / "day03_pca.ipynb", new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1")]))
    with pytest.raises(MarkerError, match="day03_pca.ipynb, cell 0"):
        generate_lessons(solutions, lessons)


# --- cell_source / day_key ------------------------------------------------------------------------

def test_cell_source_joins_lists_and_accepts_dicts():
    assert notebooks.cell_source(new_code_cell("x = 1\ny = 2")) == "x = 1\ny = 2"
    assert notebooks.cell_source({"cell_type": "code", "source": ["x = 1\n", "y = 2"]}) == "x = 1\ny = 2"
    assert notebooks.cell_source({"cell_type": "markdown"}) == ""
    nb = nbformat.reads(nbformat.writes(solution_notebook()), as_version=4)  # survives a save / load
    assert notebooks.cell_source(nb.cells[2]) == FUNCTION_SOLUTION


@pytest.mark.parametrize("given", [2, "2", "02", "day02", "DAY02", " day2 ", "day02_clustering.ipynb",
                                   "solutions/day02_clustering.ipynb", "day02_clustering"])
def test_day_key_normalises(given):
    assert notebooks.day_key(given) == "day02"


def test_day_key_two_digits_and_zero():
    assert notebooks.day_key(10) == "day10" and notebooks.day_key("day10_semi_supervised.ipynb") == "day10"
    assert notebooks.day_key("0") == "day00"


@pytest.mark.parametrize("bad", ["x", "day", "", "day100", "100", "-1", "day02x", "2.5"])
def test_day_key_rejects_what_names_no_day(bad):
    with pytest.raises(ValueError, match="not a day"):
        notebooks.day_key(bad)


# --- solved lessons and solution lines ------------------------------------------------------------

def _two_region_solution():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x * x + 1  # the answer\n"
                                  "    ### END SOLUTION"),
        nbformat.v4.new_code_cell("check(f)\n### BEGIN HIDDEN TESTS\nassert f(2) == 5\n### END HIDDEN TESTS"),
        nbformat.v4.new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause squares grow faster than lines.\n"
                                      "### END SOLUTION"),
    ]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="old output")]
    return nb


def test_solved_lesson_keeps_solutions_and_drops_markers_and_hidden_tests():
    solution = _two_region_solution()
    solved = lessons.solved_lesson(solution)
    assert solved.cells[0].source == "def f(x):\n    return x * x + 1  # the answer"
    assert solved.cells[0].outputs == [] and solved.cells[0].execution_count is None
    assert solved.cells[1].source == "check(f)"
    assert solved.cells[2].source == "Why?\nBecause squares grow faster than lines."
    assert "BEGIN" in lessons.cell_source(solution.cells[0])  # the input is not modified


def test_solution_lines_are_the_long_lines_of_solution_regions():
    found = lessons.solution_lines(_two_region_solution())
    assert found == {"return x * x + 1  # the answer", "Because squares grow faster than lines."}
    assert "assert f(2) == 5" not in found  # hidden tests are not solutions
    assert lessons.solution_lines(_two_region_solution(), min_length=100) == set()


def test_every_course_solution_has_solution_lines():
    for path in lessons.solution_notebooks(paths.solutions_dir()):
        assert lessons.solution_lines(lessons.read(path)), path.name

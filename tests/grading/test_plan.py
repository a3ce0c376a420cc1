"""Rebuilding a submission (course_lib.grading.plan)."""

from nbformat.v4 import new_code_cell

from course_lib.grading.assignment import load_assignment
from course_lib.grading.plan import StepKind, bound_names, build_plan


def test_rebuild_takes_only_answer_cells_from_the_submission(day02, make_submission):
    assignment = load_assignment("02")
    right = day02.answers

    def edit(nb):
        nb.cells[0].source = "# hacked"
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == day02.LLOYD:
                cell.metadata = {}                      # lost metadata: matched by the function it defines
        nb.cells.append(new_code_cell("def helper():\n    return 1"))
        dup = new_code_cell("def cluster_accuracy(a, b):\n    return 0.5",
                            metadata={"nbgrader": {"grade_id": day02.ACC, "solution": True}})
        nb.cells.append(dup)
    plan = build_plan(make_submission({day02.KPP: right[day02.KPP], day02.LLOYD: right[day02.LLOYD],
                                       day02.ACC: right[day02.ACC]}, edit), assignment)
    student = {s.grade_id: s.code for s in plan.steps if s.kind is StepKind.STUDENT}
    assert student[day02.KPP] == right[day02.KPP] and student[day02.LLOYD] == right[day02.LLOYD]
    assert student[day02.ACC].startswith(right[day02.ACC]) and student[day02.ACC].endswith("return 0.5")
    tests = [s for s in plan.steps if s.kind is StepKind.TEST]
    assert [s.grade_id for s in tests] == [day02.EX1, day02.EX2, day02.EX3]
    assert all("BEGIN HIDDEN TESTS" in s.code for s in tests)          # sent to the kernel only when they run
    assert "BEGIN HIDDEN TESTS" not in "".join(c.source for c in plan.notebook.cells)
    assert plan.notebook.cells[0].source.startswith("# Day 02")
    assert "helper" in plan.dropped_names and plan.matched == 3 and not plan.missing
    assert any("lost its grading metadata" in n for n in plan.notes)
    assert any("2 cells carry the answer" in n for n in plan.notes)
    kinds = [s.kind for s in plan.steps]
    assert kinds[0] is StepKind.BOOT and all(kinds[i - 1] is StepKind.CAPTURE
                                             for i, k in enumerate(kinds) if k is StepKind.STUDENT)


def test_missing_answers_and_audit_flags(day02, make_submission):
    assignment = load_assignment("02")

    def drop_lloyd(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != day02.LLOYD]
    answer = day02.answers[day02.KPP] + "\nimport sys, gc\n_m = sys.modules\ngc.collect()\n"
    plan = build_plan(make_submission({day02.KPP: answer}, drop_lloyd), assignment)
    assert plan.missing == {day02.EX2: day02.LLOYD}
    assert {"sys.modules", "gc"} <= set(plan.flags) and "course_lib" not in plan.flags


def test_bound_names():
    source = "import numpy as np, os.path\nx, (y, *z) = 1, (2, 3)\nfor i in []: pass\nwith open('f') as h: k = 1\n" \
             "def f(): pass\nclass C: pass\nif True:\n    w = 2\n%time q = 1"
    assert bound_names(source) == ["np", "os", "x", "y", "z", "i", "h", "k", "f", "C", "w"]


def test_planning_in_several_threads_at_once_never_raises():
    """`course grade` plans submissions in worker threads; a garbage collection that hands the interpreter to
    another thread in the middle of a parse must not break either parse (python/cpython#106905)."""
    import gc
    import threading
    import time

    source = "\n".join(f"def f{i}(x):\n    return [[[(x + {i}) for a in b] for b in c] for c in d]" for i in range(20))
    expected = [f"f{i}" for i in range(20)]
    results, errors = [], []

    def plan_many():
        for _ in range(40):
            try:
                results.append(bound_names(source))
            except Exception as error:          # noqa: BLE001 - any error fails the test below
                errors.append(repr(error))

    def yield_during_collection(phase, info):
        if phase == "start":
            time.sleep(0.0001)                  # lets the other thread run mid-parse

    threshold = gc.get_threshold()
    gc.set_threshold(50)
    gc.callbacks.append(yield_during_collection)
    try:
        threads = [threading.Thread(target=plan_many) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.callbacks.remove(yield_during_collection)
        gc.set_threshold(*threshold)
    assert errors == []
    assert len(results) == 120 and all(r == expected for r in results)

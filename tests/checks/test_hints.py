"""Hints teach without giving the answer: no hint or to-do text contains a line of its day's solutions."""

import importlib

import pytest

from course_lib import checks, lessons, paths

DAYS = [p.name[:5] for p in lessons.solution_notebooks(paths.solutions_dir())]


@pytest.mark.parametrize("day", DAYS)
def test_no_hint_contains_a_solution_line(day):
    importlib.import_module(f"course_lib.checks.{day}")
    (path,) = sorted(paths.solutions_dir().glob(f"{day}_*.ipynb"))
    solution = lessons.solution_lines(lessons.read(path), min_length=12)
    day_hints = {cid: h for cid, h in checks.all_hints().items() if cid.startswith(day + ".")}
    assert day_hints, f"{day} registers no hints"
    leaks = [(cid, line) for cid, h in day_hints.items() for text in (h.todo, *h.tiers)
             for line in solution if line in text]
    assert not leaks, f"{day}: hints contain solution lines: {leaks}"


@pytest.mark.parametrize("day", DAYS)
def test_every_check_of_a_day_has_hints_in_tiers(day):
    module = importlib.import_module(f"course_lib.checks.{day}")
    ids = set(getattr(module, "HINTS", {}))
    assert ids, f"course_lib.checks.{day} has no HINTS table"
    assert all(cid.startswith(day + ".") for cid in ids)
    assert all(2 <= len(h.tiers) <= 3 for h in module.HINTS.values())

"""Every test of a self-check starts with an empty ``course_lib.checks.RESULTS`` (restored afterwards)."""

import pytest

from course_lib import checks


@pytest.fixture(autouse=True)
def _fresh_results(monkeypatch):
    monkeypatch.setattr(checks, "RESULTS", {})

"""Every test of a self-check starts with empty ``RESULTS`` and revealed-hint levels (restored afterwards)."""

import pytest

from course_lib import checks


@pytest.fixture(autouse=True)
def _fresh_results(monkeypatch):
    monkeypatch.setattr(checks, "RESULTS", {})
    monkeypatch.setattr(checks, "_REVEALED", {})

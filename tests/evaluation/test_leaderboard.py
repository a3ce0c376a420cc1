"""Unit tests for course_lib.evaluation.leaderboard: the leaderboard's metrics (and the results table)."""

import pytest

from course_lib.evaluation import leaderboard
from course_lib.evaluation.label_efficiency import LabelEfficiencyResult, results_table


def make_result(method, accs):
    return LabelEfficiencyResult(method, [1, 10], accs)


def test_leaderboard_table_and_metrics():
    a = make_result("alpha", [[0.5, 0.7], [0.9, 0.9]])
    b = make_result("beta", [[0.8], [0.85]])
    text = results_table([a, b], sort_by=10)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "1", "labels/class"]
    assert lines[2].startswith("alpha") and "0.600 ± 0.100 (2)" in lines[2]
    assert lines[3].startswith("beta") and "0.850 ± 0.000 (1)" in lines[3]
    assert results_table([b, a], sort_by=1).splitlines()[2].startswith("beta")
    markdown = results_table([a], markdown=True).splitlines()
    assert markdown[0].startswith("| method |") and markdown[1] == "|---|---:|---:|"
    metrics = leaderboard.leaderboard_metrics({"a": a, "b": b})
    assert metrics == {"a_1": 0.6, "a_1_std": 0.1, "a_10": 0.9, "a_10_std": 0.0, "a_draws": 2,
                       "b_1": 0.8, "b_1_std": 0.0, "b_10": 0.85, "b_10_std": 0.0, "b_draws": 1}
    with pytest.raises(ValueError):
        results_table([a], budgets=[5])

"""Unit tests for course_lib.evaluation.leaderboard: the leaderboard's metrics, its JSON form, recording it in
a notebook and reading it back."""

import json

import numpy as np
import pytest

from course_lib.evaluation import leaderboard
from course_lib.evaluation.label_efficiency import LabelEfficiencyResult, results_table


# --- leaderboard_metrics, and the table of the results -----------------------------------------------

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


# --- build_leaderboard ------------------------------------------------------------------------------

def test_build_leaderboard_is_json_ready():
    results = [LabelEfficiencyResult("pixels", [1, 10, None], [[0.5, 0.7], [0.9, 0.9], [0.95]]),
               LabelEfficiencyResult("SimCLR linear probe", [1, 10], [[0.61234567], [0.9]])]
    clustering = {"k-means": {"nmi": np.float64(0.51234567), "acc": 0.6, "ari": np.float32(0.25)}}
    board = leaderboard.build_leaderboard(results, clustering, dataset="mnist5k", image_shape=np.array([28, 28, 1]),
                                          mode="quick")
    assert board == {
        "dataset": "mnist5k", "image_shape": [28, 28, 1], "mode": "quick",
        "classification": {
            "pixels": {"1": {"mean": 0.6, "std": 0.1, "draws": 2}, "10": {"mean": 0.9, "std": 0.0, "draws": 2},
                       "all": {"mean": 0.95, "std": 0.0, "draws": 1}},
            "SimCLR linear probe": {"1": {"mean": 0.6123, "std": 0.0, "draws": 1},
                                    "10": {"mean": 0.9, "std": 0.0, "draws": 1}}},
        "clustering": {"k-means": {"nmi": 0.5123, "acc": 0.6, "ari": 0.25}}}
    assert list(board["classification"]) == ["pixels", "SimCLR linear probe"]  # the given order
    assert json.loads(json.dumps(board)) == board
    assert all(type(v) is int for v in board["image_shape"])


def test_build_leaderboard_rejects_duplicates_missing_scores_and_non_finite_values():
    a = make_result("alpha", [[0.5, 0.7], [0.9, 0.9]])
    args = dict(dataset="digits", image_shape=(8, 8, 1), mode="quick")
    with pytest.raises(ValueError, match="two leaderboard rows"):
        leaderboard.build_leaderboard([a, make_result("alpha", [[0.1], [0.2]])], {}, **args)
    with pytest.raises(ValueError, match="lacks"):
        leaderboard.build_leaderboard([a], {"k-means": {"nmi": 0.5}}, **args)
    with pytest.raises(ValueError, match="finite"):
        leaderboard.build_leaderboard([a], {"k-means": {"nmi": float("nan"), "acc": 0.5}}, **args)
    with pytest.raises(ValueError, match="finite"):
        leaderboard.build_leaderboard([make_result("nan", [[float("nan")], [0.5]])], {}, **args)


# --- record_leaderboard / extract_leaderboard -------------------------------------------------------

BOARD = {"dataset": "digits", "image_shape": [8, 8, 1], "mode": "quick",
         "classification": {"pixels": {"1": {"mean": 0.6, "std": 0.1, "draws": 2}}},
         "clustering": {"k-means": {"nmi": 0.5, "acc": 0.6}, "GMM": {"nmi": 0.55, "acc": 0.62}}}


def test_record_leaderboard_outside_ipython_only_returns_it(capsys):
    assert leaderboard.record_leaderboard(BOARD) is BOARD
    assert leaderboard.record_leaderboard(BOARD, display=False) is BOARD
    assert capsys.readouterr().out == ""


def test_record_leaderboard_in_ipython_attaches_a_bundle_that_extract_reads_back(monkeypatch):
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    leaderboard.record_leaderboard(BOARD)
    (bundle, raw), = shown
    assert raw is True
    assert bundle[leaderboard.LEADERBOARD_MIME] == BOARD
    assert bundle["text/plain"] == "leaderboard recorded (3 rows)"
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": bundle}]}]}
    assert leaderboard.extract_leaderboard(nb) == BOARD


def test_extract_leaderboard_takes_the_last_one_and_ignores_malformed_payloads():
    import nbformat

    older = {**BOARD, "mode": "full"}
    cells = []
    for payload in (older, "not a dict", BOARD, None):
        cell = nbformat.v4.new_code_cell("...")
        cell.outputs = [nbformat.v4.new_output("display_data", data={leaderboard.LEADERBOARD_MIME: payload,
                                                                     "text/plain": "..."})]
        cells.append(cell)
    cells.append(nbformat.v4.new_markdown_cell("text"))
    nb = nbformat.v4.new_notebook(cells=cells)
    assert leaderboard.extract_leaderboard(nb) == BOARD
    assert leaderboard.extract_leaderboard(nbformat.v4.new_notebook(cells=cells[:1])) == older
    assert leaderboard.extract_leaderboard(nbformat.v4.new_notebook()) is None
    assert leaderboard.extract_leaderboard({}) is None

"""Unit tests for course_lib.reporting: recording a notebook's metrics and reading them back, the table
renderer and strip_ansi."""

import json

import numpy as np
import pytest

from course_lib import reporting
from course_lib.reporting import METRICS_MIME, extract_metrics, format_metrics, record_metrics


# --- record_metrics -------------------------------------------------------------------------------

def test_record_metrics_returns_clean_copy(capsys):
    given = {"acc": 0.123456789, "n_train": 1347, "loss.val": np.float32(0.5), "auroc-x": np.float64(0.25)}
    clean = record_metrics("day01", given)
    assert clean == {"acc": 0.123457, "n_train": 1347, "loss.val": 0.5, "auroc-x": 0.25}
    assert isinstance(clean["n_train"], int)
    assert all(type(v) is float for k, v in clean.items() if k != "n_train")
    assert clean is not given
    assert given["acc"] == 0.123456789  # input untouched
    out = capsys.readouterr().out  # outside IPython: printed as a table
    assert "day01 metrics" in out and "n_train" in out and "1347" in out
    json.dumps(clean)  # JSON-serialisable (numpy scalars converted)


def test_record_metrics_keeps_numpy_integers_exact():
    mask = np.ones(1_234_567, dtype=bool)
    clean = record_metrics("day10", {"n_pseudo": np.sum(mask), "k": np.int32(7), "f": np.float64(1234567.0)},
                           display=False)
    assert clean == {"n_pseudo": 1234567, "k": 7, "f": 1234570.0}
    assert type(clean["n_pseudo"]) is int and type(clean["k"]) is int
    json.dumps(clean)


def test_record_metrics_rejects_numpy_bool():
    with pytest.raises(ValueError, match="finite number"):
        record_metrics("day01", {"flag": np.True_}, display=False)


def test_record_metrics_display_false_prints_nothing(capsys):
    assert record_metrics("day10", {"x": 1.0}, display=False) == {"x": 1.0}
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("day", ["day1", "Day01", "day001", "01", "", None, 1, "day01 "])
def test_record_metrics_bad_day(day):
    with pytest.raises(ValueError, match="day"):
        record_metrics(day, {"acc": 1.0}, display=False)


@pytest.mark.parametrize("name", ["1acc", "", "acc score", "_acc", "acc/1", 3, None])
def test_record_metrics_bad_name(name):
    with pytest.raises(ValueError, match="metric name"):
        record_metrics("day01", {name: 1.0}, display=False)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True, False, "0.5", None, [1.0],
                                   complex(1, 0)])
def test_record_metrics_bad_value(value):
    with pytest.raises(ValueError, match="finite number"):
        record_metrics("day01", {"acc": value}, display=False)


def test_format_metrics():
    assert format_metrics({}) == "(no metrics)"
    text = format_metrics({"a": 0.5, "longer_name": 3})
    lines = text.splitlines()
    assert lines == ["a            0.5", "longer_name  3"]


def make_notebook(outputs_per_cell):
    return {"cells": [{"cell_type": "code", "source": "", "outputs": outputs} for outputs in outputs_per_cell]
            + [{"cell_type": "markdown", "source": "text"}]}


def metrics_output(day, values, output_type="display_data"):
    return {"output_type": output_type, "metadata": {},
            "data": {METRICS_MIME: {"day": day, "metrics": values}, "text/plain": "..."}}


def test_extract_metrics_merges_calls_in_order():
    nb = make_notebook([
        [{"output_type": "stream", "name": "stdout", "text": "hello"}],
        [metrics_output("day02", {"nmi": 0.5, "ari": 0.4})],
        [],
        [{"output_type": "execute_result", "data": {"text/plain": "3"}, "metadata": {}, "execution_count": 1},
         metrics_output("day02", {"ari": 0.45, "acc": 0.6})],
        [metrics_output("day03", {"mse": 0.01})],
    ])
    found = extract_metrics(nb)
    assert found == {"day02": {"nmi": 0.5, "ari": 0.45, "acc": 0.6}, "day03": {"mse": 0.01}}
    assert list(found["day02"]) == ["nmi", "ari", "acc"]


def test_extract_metrics_ignores_malformed_payloads():
    nb = make_notebook([
        [{"output_type": "display_data", "data": {METRICS_MIME: "not a dict"}}],
        [{"output_type": "display_data", "data": {METRICS_MIME: {"day": "day01", "metrics": [1, 2]}}}],
        [{"output_type": "display_data", "data": None}],
        None,
    ])
    assert extract_metrics(nb) == {}
    assert extract_metrics({}) == {}


def test_extract_metrics_on_nbformat_notebook():
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("course_lib.record_metrics('day05', {...})")
    cell.outputs = [nbformat.v4.new_output("display_data", data={METRICS_MIME: {"day": "day05",
                                                                                 "metrics": {"elbo": 101.5}},
                                                                  "text/plain": "day05 metrics"})]
    nb.cells = [cell]
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # survives a save / load
    assert extract_metrics(nb) == {"day05": {"elbo": 101.5}}


def test_record_metrics_in_ipython_attaches_mime_bundle(monkeypatch):
    """Inside IPython the metrics are displayed as a raw MIME bundle that extract_metrics reads back."""
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    record_metrics("day04", {"psnr_gain": 3.25})
    assert len(shown) == 1
    bundle, raw = shown[0]
    assert raw is True
    assert bundle[METRICS_MIME] == {"day": "day04", "metrics": {"psnr_gain": 3.25}}
    assert "psnr_gain" in bundle["text/plain"]
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": bundle}]}]}
    assert extract_metrics(nb) == {"day04": {"psnr_gain": 3.25}}


def test_shortcut_is_the_same_function():
    import course_lib

    assert course_lib.record_metrics is reporting.record_metrics


# --- render_table / strip_ansi ------------------------------------------------------------------

def test_render_table_plain_text_aligns_columns():
    text = reporting.render_table(["method", "acc"], [["pixels", 0.5], ["SimCLR probe", "0.91"]])
    assert text.splitlines() == ["method         acc",
                                 "------------  ----",
                                 "pixels         0.5",
                                 "SimCLR probe  0.91"]
    assert reporting.render_table(["a", "b"], [["x", 1]], rule=False).splitlines() == ["a  b", "x  1"]
    assert reporting.render_table(["a"], []) == "a\n-"


def test_render_table_alignment_and_markdown():
    rows = [["x", "1", "left"], ["yy", "22", "l"]]
    lines = reporting.render_table(["name", "n", "note"], rows, align="lrl").splitlines()
    assert lines[0] == "name   n  note" and lines[2] == "x      1  left" and lines[3] == "yy    22  l"
    markdown = reporting.render_table(["name", "n", "note"], rows, markdown=True, align="lrl").splitlines()
    assert markdown == ["| name | n | note |", "|---|---:|---|", "| x | 1 | left |", "| yy | 22 | l |"]
    assert reporting.render_table(["a", "b"], [[1, 2]], markdown=True).splitlines()[1] == "|---|---:|"


def test_render_table_rejects_ragged_rows_and_bad_alignment():
    with pytest.raises(ValueError, match="cells"):
        reporting.render_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="align"):
        reporting.render_table(["a", "b"], [], align="l")
    with pytest.raises(ValueError, match="align"):
        reporting.render_table(["a", "b"], [], align="lc")


def test_strip_ansi():
    coloured = "\x1b[0;31mValueError\x1b[0m: boom\x1b[1;32m!\x1b[39m"
    assert reporting.strip_ansi(coloured) == "ValueError: boom!"
    assert reporting.strip_ansi("plain [0;31m text") == "plain [0;31m text"  # no escape character: unchanged
    assert reporting.strip_ansi("") == ""


# --- show_source ------------------------------------------------------------------------------------

def test_show_source_prints_the_installed_code(capsys):
    from course_lib.reporting import show_source
    from course_lib.training import reset_seed_generators

    text = show_source(reset_seed_generators)
    assert text.startswith("def reset_seed_generators(") and text == capsys.readouterr().out.rstrip("\n") + "\n"
    with pytest.raises(TypeError, match="no Python source"):
        show_source(len)


def test_show_source_displays_highlighted_code_in_ipython(monkeypatch):
    import IPython
    import IPython.display

    from course_lib.reporting import show_source

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    show_source(show_source)
    (code,) = shown
    assert isinstance(code, IPython.display.Code) and "def show_source" in code.data

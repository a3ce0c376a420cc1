"""Unit tests for the ``course`` command (course_lib.cli).

Every test works on a throw-away course checkout made in tmp_path (the ``project`` fixture: a pyproject.toml
naming the project, a solutions/ folder with tiny notebooks), never on the real notebooks.
"""

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import nbformat
import pytest

from course_lib import cli, paths
from course_lib.cli import CourseError, DayRun, format_table, main, select_days


@pytest.fixture(autouse=True)
def _cli_env(clean_course_env, monkeypatch):
    # cmd_run sets COURSE_MODE / COURSE_DATASET / KERAS_BACKEND for its kernels: setenv first so they are restored
    monkeypatch.setenv("COURSE_MODE", "quick")
    monkeypatch.setenv("COURSE_DATASET", "digits")
    monkeypatch.setenv("KERAS_BACKEND", keras_backend())


def keras_backend():
    """The backend this test process runs on (the kernels of ``course run`` get the same by default)."""
    import keras

    return keras.backend.backend()


def run_cli(*args, cwd, env=None):
    """``python -m course_lib ARGS`` in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "course_lib", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def one_error_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("course: error:"), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- select_days / format_table -------------------------------------------------------------------

DAYS = {"day01": Path("day01_intro.ipynb"), "day02": Path("day02_clustering.ipynb"),
        "day10": Path("day10_capstone.ipynb")}


@pytest.mark.parametrize("given, expected", [
    (["1"], ["day01"]),
    (["01"], ["day01"]),
    (["day01"], ["day01"]),
    (["DAY02"], ["day02"]),
    (["day01_intro.ipynb"], ["day01"]),
    (["solutions/day02_clustering.ipynb"], ["day02"]),
    (["10"], ["day10"]),
    (["2", "1", "day02", "02"], ["day02", "day01"]),  # request order, no duplicates
    ([], ["day01", "day02", "day10"]),
])
def test_select_days_normalises(given, expected):
    assert select_days(given, DAYS) == expected


@pytest.mark.parametrize("bad", ["4", "day04", "x", "day4x", "day04_missing.ipynb"])
def test_select_days_unknown(bad):
    with pytest.raises(CourseError) as info:
        select_days([bad], DAYS)
    assert info.value.status == 2
    assert repr(bad) in str(info.value)
    assert "available days are 01, 02, 10" in str(info.value)


def test_select_days_none_available():
    with pytest.raises(CourseError, match="available days are none"):
        select_days(["1"], {})


def test_format_table():
    runs = [DayRun("day01", "day01_intro.ipynb", "ok", 12.34, {"acc_1": 0.123456, "n": 1347}, cpu_s=20.06),
            DayRun("day02", "day02_clustering.ipynb", "failed", 3.0, {}, "ValueError: boom")]
    lines = format_table(runs).splitlines()
    assert lines[0].split() == ["day", "status", "wall_s", "cpu_s", "metric", "value"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["day01", "ok", "12.3", "20.1", "acc_1", "0.1235"]
    assert lines[3].split() == ["n", "1347"]
    assert lines[3].startswith(" ")  # continuation row of day01
    assert lines[4].split() == ["day02", "failed", "3.0", "-", "-"]  # CPU time not measured
    assert len(lines) == 5
    # columns line up: every "metric" cell starts at the same offset
    offset = lines[0].index("metric")
    assert lines[2][offset:].startswith("acc_1") and lines[3][offset:].startswith("n ")


# --- usage errors: one line, exit 2 ---------------------------------------------------------------

def test_unknown_day_in_process(project, capsys):
    assert main(["run", "7"]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "unknown day '7'" in line and "available days are 01, 03" in line
    assert captured.out == ""


def test_unknown_day_with_monkeypatched_solutions(tmp_path, monkeypatch, capsys, write_nb):
    write_nb(tmp_path / "sols" / "day05_vae.ipynb", "z = 0")
    monkeypatch.setattr(paths, "solutions_dir", lambda: tmp_path / "sols")
    assert main(["run", "day06"]) == 2
    assert "available days are 05" in one_error_line(capsys.readouterr().err)


def test_unknown_day_subprocess(project):
    result = run_cli("run", "day09", cwd=project)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "available days are 01, 03" in line
    assert result.stdout == ""


def test_unknown_mode(project, capsys):
    assert main(["run", "--mode", "fast"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "fast" in line and "quick" in line and "full" in line


def test_unknown_mode_subprocess(project):
    result = run_cli("run", "--mode", "turbo", cwd=project)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "turbo" in line and "quick" in line


def test_unknown_mode_from_env(project, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODE", "warp")
    assert main(["run"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "warp" in line and "COURSE_MODE" in line


def test_missing_command_and_unknown_option(capsys):
    assert main([]) == 2
    one_error_line(capsys.readouterr().err)
    assert main(["run", "--bogus"]) == 2
    assert "--bogus" in one_error_line(capsys.readouterr().err)


def test_no_solutions(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "solutions_dir", lambda: tmp_path / "empty")
    assert main(["run"]) == 1
    assert "no solution notebooks" in one_error_line(capsys.readouterr().err)


# --- backend and devices: one line, exit 2, before anything runs ----------------------------------

def test_unknown_backend(project, capsys):
    assert main(["run", "--backend", "mxnet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "mxnet" in line and "tensorflow" in line and "jax" in line and "torch" in line


def test_unknown_backend_from_env(project, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    assert main(["run"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "theano" in line and "KERAS_BACKEND" in line


def test_backend_not_installed(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "backend_installed", lambda name: name == "tensorflow")
    assert main(["run", "--backend", "torch", "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "torch backend is not installed" in line and 'pip install -e ".[torch]"' in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_devices_all_needs_jax(project, tmp_path, monkeypatch, capsys, backend):
    monkeypatch.setattr(cli, "backend_installed", lambda name: True)
    assert main(["run", "--backend", backend, "--devices", "all", "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--devices all needs the JAX backend" in line and backend in line
    assert not (tmp_path / "out").exists()


def test_unknown_devices_subprocess(project):
    result = run_cli("run", "--devices", "several", cwd=project)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "several" in line and "one" in line and "all" in line


def test_unknown_devices_from_env(project, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICES", "many")
    assert main(["run"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "many" in line and "COURSE_DEVICES" in line


# --- dataset not cached while offline: exit 1, says which file to put where ----------------------------

def test_offline_dataset_missing_in_process(project, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    assert main(["run", "--dataset", "mnist", "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "mnist.npz" in line
    assert str(cache.resolve() / "mnist" / "mnist.npz") in line
    assert "https://" in line
    assert not (tmp_path / "out").exists()  # failed before running anything
    assert list(cache.iterdir()) == []


def test_offline_dataset_missing_subprocess(project, tmp_path):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    result = run_cli("run", "1", "--dataset", "fashion_mnist", cwd=project,
                     env={"COURSE_OFFLINE": "1", "COURSE_DATA_DIR": str(cache)})
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "train-images-idx3-ubyte.gz" in line
    assert str(cache.resolve() / "fashion_mnist" / "train-images-idx3-ubyte.gz") in line


# --- course run, end to end -----------------------------------------------------------------------

LEADERBOARD_CELL = """from course_lib.evaluation.label_efficiency import LabelEfficiencyResult
from course_lib.evaluation.leaderboard import build_leaderboard, record_leaderboard

results = [LabelEfficiencyResult("pixels", [1, None], [[0.5, 0.7], [0.9]])]
record_leaderboard(build_leaderboard(results, {"k-means": {"nmi": 0.5, "acc": 0.6}}, "digits", (8, 8, 1), "full"))"""


EXPECTED_LEADERBOARD = {"dataset": "digits", "image_shape": [8, 8, 1], "mode": "full",
                        "classification": {"pixels": {"1": {"mean": 0.6, "std": 0.1, "draws": 2},
                                      "all": {"mean": 0.9, "std": 0.0, "draws": 1}}},
                        "clustering": {"k-means": {"nmi": 0.5, "acc": 0.6}}}


def test_cmd_run_end_to_end(project, tmp_path, capsys, write_nb):
    solutions = project / "solutions"
    for old in solutions.iterdir():
        old.unlink()
    write_nb(solutions / "day01_x.ipynb", "import course_lib",
             'course_lib.record_metrics("day01", {"acc": 0.5})')
    write_nb(solutions / "day02_fails.ipynb", "x = 1", 'raise ValueError("boom")', "never = True")
    write_nb(solutions / "day03_after.ipynb", "import os\nimport course_lib",
             'course_lib.record_metrics("day03", {"n": 3, "mode_is_env": float(os.environ["COURSE_MODE"] == "full")})',
             LEADERBOARD_CELL)
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"day09": {"wall_s": 1.0, "metrics": {"old": 1}}}),
                                      encoding="utf-8")

    status = main(["run", "--mode", "full", "--out", str(out), "--timeout", "120"])
    captured = capsys.readouterr()
    assert status == 1
    line = one_error_line(captured.err)
    assert "day02" in line and "1 notebook(s) failed" in line

    for stem in ("day01_x", "day02_fails", "day03_after"):  # the failure did not stop the later day
        assert (out / f"{stem}.ipynb").is_file()
        assert (out / f"{stem}.html").is_file()
    executed = nbformat.read(str(out / "day01_x.ipynb"), as_version=4)
    assert executed.cells[2].outputs, "the executed notebook keeps its outputs"

    recorded = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert list(recorded) == ["day01", "day02", "day03", "day09"]  # sorted, earlier results kept
    assert recorded["day09"] == {"wall_s": 1.0, "metrics": {"old": 1}}
    day01 = recorded["day01"]
    assert day01["metrics"] == {"acc": 0.5}
    assert day01["status"] == "ok" and day01["mode"] == "full" and day01["dataset"] == "digits"
    assert isinstance(day01["wall_s"], float) and day01["wall_s"] >= 0
    assert "error" not in day01
    assert recorded["day02"]["status"] == "failed"
    assert recorded["day02"]["error"] == "ValueError: boom"
    assert recorded["day02"]["metrics"] == {}
    # the kernels inherit the mode chosen on the command line
    assert recorded["day03"] == {**recorded["day03"], "status": "ok", "metrics": {"n": 3, "mode_is_env": 1.0}}

    assert "day02 FAILED" in captured.out and "ValueError: boom" in captured.out
    assert "acc" in captured.out and "0.5" in captured.out
    assert str(out / "metrics.json") in captured.out
    assert not (out / "metrics.json.tmp").exists()

    # the leaderboard the day-03 notebook recorded is written beside the metrics
    assert json.loads((out / "leaderboard.json").read_text(encoding="utf-8")) == EXPECTED_LEADERBOARD
    assert f"leaderboard written to {out / 'leaderboard.json'}" in captured.out
    assert not (out / "leaderboard.json.tmp").exists()


def test_cmd_run_selected_day_only(project, tmp_path, capsys, write_nb):
    backend = keras_backend()
    write_nb(project / "solutions" / "day01_intro.ipynb", "import os\nimport course_lib",
             'course_lib.record_metrics("day01", {"acc": 0.25})',
             # the kernel runs on the backend and devices chosen (asserted here: record_metrics takes numbers)
             f'assert os.environ["KERAS_BACKEND"] == "{backend}" and os.environ["COURSE_DEVICES"] == "one"')
    out = tmp_path / "out"
    args = Namespace(days=["day01_intro.ipynb"], mode=None, dataset=None, corpus=None, timeout=120, out=str(out),
                     backend=backend, devices=None)
    assert cli.cmd_run(args) == 0
    captured = capsys.readouterr()
    assert f"backend={backend}, devices=one" in captured.out
    assert captured.err == ""
    assert sorted(p.name for p in out.glob("*.ipynb")) == ["day01_intro.ipynb"]
    recorded = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert recorded == {"day01": {"wall_s": recorded["day01"]["wall_s"], "cpu_s": recorded["day01"]["cpu_s"],
                                  "status": "ok", "mode": "quick", "dataset": "digits", "backend": keras_backend(),
                                  "devices": "one", "metrics": {"acc": 0.25}}}
    assert recorded["day01"]["cpu_s"] > 0  # the kernel's own CPU time (it is reaped after each notebook)
    assert not (out / "leaderboard.json").exists()  # no notebook recorded one


# --- course lessons -------------------------------------------------------------------------------

def test_lessons_check_and_generate(project, capsys, write_nb):
    write_nb(project / "solutions" / "day01_intro.ipynb", "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION")
    lessons = project / "lessons"

    assert main(["lessons", "--check"]) == 1
    out = capsys.readouterr().out
    assert "out of date" in out
    assert os.path.join("lessons", "day01_intro.ipynb") in out and os.path.join("lessons", "day03_pca.ipynb") in out
    assert not lessons.exists()

    assert main(["lessons"]) == 0
    assert "regenerated 2 lesson(s)" in capsys.readouterr().out
    text = (lessons / "day01_intro.ipynb").read_text(encoding="utf-8")
    assert "answer = 42" not in text and "NotImplementedError" in text

    assert main(["lessons", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["lessons"]) == 0
    assert "regenerated 0 lesson(s) (all up to date)" in capsys.readouterr().out


def test_lessons_check_subprocess(project):
    result = run_cli("lessons", "--check", cwd=project)
    assert result.returncode == 1
    assert "day01_intro.ipynb" in result.stdout
    assert not (project / "lessons").exists()


def test_lessons_marker_error(project, capsys, write_nb):
    write_nb(project / "solutions" / "day03_pca.ipynb", "### BEGIN SOLUTION\nx = 1")
    assert main(["lessons"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "day03_pca.ipynb, cell 1" in line and "never closed" in line

"""Tests of benchmarks/backends.py on a throw-away course checkout (the ``project`` fixture), never on the real
notebooks: it runs ``course run`` per backend, tabulates wall / CPU time and status per day, and sizes packages."""

import importlib.util
import json
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("backends_benchmark", ROOT / "benchmarks" / "backends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_each_backend_and_tabulates_days(bench, project, tmp_path, monkeypatch, capsys, write_nb):
    write_nb(project / "solutions" / "day01_intro.ipynb", "import os\nimport course_lib",
             'course_lib.record_metrics("day01", {"acc": 0.5})',
             f'assert os.environ["KERAS_BACKEND"] == "{BACKEND}"')
    write_nb(project / "solutions" / "day03_pca.ipynb", 'raise AssertionError("floor not reached")')
    monkeypatch.setattr(bench, "measure_sizes", lambda backends: {b: {"mb": 123.4, "packages": ["x"],
                                                                      "largest": ["x 123"]} for b in backends})
    monkeypatch.setenv("KERAS_BACKEND", "not-a-backend")  # the benchmark passes --backend; the environment is ignored
    out = tmp_path / "bench"
    (out / BACKEND).mkdir(parents=True)
    (out / BACKEND / "metrics.json").write_text(json.dumps({"day09": {"wall_s": 1.0, "status": "ok"}}))

    status = bench.main(["1", "3", "--backends", BACKEND, "--dataset", "digits", "--timeout", "120",
                         "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 1  # a day failed

    lines = printed[printed.index("per day"):].splitlines()
    header = lines[1].split()
    assert header == ["day", BACKEND, "wall_s", BACKEND, "cpu_s", BACKEND, "status"]
    rows = {line.split()[0]: line.split() for line in lines[3:6]}
    assert set(rows) == {"day01", "day03", "total"}  # the earlier run's day09 is not in this table
    assert rows["day01"][3] == "ok" and rows["day03"][3] == "failed"
    assert float(rows["day01"][1]) > 0 and float(rows["day01"][2]) > 0  # wall and kernel CPU seconds
    assert rows["total"][3:] == ["1/2", "ok"]
    assert "day03 on " + BACKEND + ": AssertionError: floor not reached" in printed
    assert "123" in printed[printed.index("install size"):]

    report = json.loads((out / "backends.json").read_text(encoding="utf-8"))
    assert report["backends"] == [BACKEND] and report["mode"] == "quick"
    assert set(report["days"][BACKEND]) == {"day01", "day03"}
    assert report["days"][BACKEND]["day01"]["backend"] == BACKEND
    assert report["install_size"][BACKEND]["mb"] == 123.4


def test_refuses_a_backend_that_is_not_installed(bench, project, monkeypatch, capsys):
    monkeypatch.setattr(bench, "installed_backends", lambda: ["tensorflow"])
    assert bench.main(["--backends", "torch"]) == 2
    err = capsys.readouterr().err
    assert "not installed here: torch" in err and '".[torch]"' in err


def test_backend_packages_are_the_backend_and_what_only_it_needs(bench):
    packages = bench.backend_packages(BACKEND)
    assert set(bench.BACKEND_DISTRIBUTIONS[BACKEND]) <= packages
    for shared in ("numpy", "keras", "scikit-learn", "learning-without-labels"):
        assert shared not in packages  # the course installs these whatever the backend
    assert all(bench.distribution_size(name) >= 0 for name in packages)
    assert bench.distribution_size(bench.BACKEND_DISTRIBUTIONS[BACKEND][0]) > 10_000_000  # a backend is big


def test_train_step_benchmark_prints_the_three_timings(capsys):
    spec = importlib.util.spec_from_file_location("train_step_benchmark", ROOT / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--images", "256", "--epochs", "1"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(BACKEND)
    timings = [float(part.split()[-2]) for part in line.split("|")]   # "... 12.3 ms" -> 12.3
    assert len(timings) == 3 and all(t > 0 for t in timings), line

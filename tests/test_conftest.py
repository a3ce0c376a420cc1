"""The test suite's own conventions (tests/conftest.py): the ``slow`` marker and the list of slow tests."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def slow_tests():
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    (value,) = [node.value for node in tree.body
                if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["SLOW_TESTS"]]
    return ast.literal_eval(value.args[0])


def test_every_listed_slow_test_exists():
    for node_id in slow_tests():
        path, name = node_id.split("::")
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        assert name in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, node_id


def test_not_slow_deselects_notebooks_and_listed_tests():
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow",
                             "solutions/day02_clustering.ipynb", "tests/test_cli.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/test_cli.py::") for line in collected)
    assert not any("test_cmd_run_end_to_end" in line for line in collected)
    assert "deselected" in result.stdout

"""The guard inside the kernel (course_lib.grading.guard): undoing patches, catching tampering, forgetting tests."""

import os
from pathlib import Path

import pytest

import course_lib
from course_lib.grading import guard
from course_lib.grading.kernel import Kernel, Limits

pytestmark = pytest.mark.slow
GUARD = "__import__('course_lib.grading.guard', fromlist=['_'])"


def test_guard_undoes_patches_and_catches_tampering_during_tests(tmp_path):
    files = guard.package_files(Path(course_lib.__file__).parent)
    session = Kernel(tmp_path, dict(os.environ), Limits(), None)

    def verdict(outcome):
        return [o["data"][guard.VERDICT_MIME] for o in outcome.outputs if guard.VERDICT_MIME in o.get("data", {})][0]

    def test(source, nonce="n1"):
        return verdict(session.execute(f"{GUARD}.run_test('t', {source!r}, {nonce!r})", 60, None))
    try:
        assert session.execute(guard.boot_code(files, "day02"), 60, None).state.value == "ok"
        session.execute(f"{GUARD}.capture(['np'])", 30, None)
        session.execute("import numpy as np", 30, None)
        patch = ("import builtins, sys, numpy as np\n"
                 "builtins.all = lambda *a, **k: True\n"
                 "np.allclose._implementation.__code__ = (lambda *a, **k: True).__code__\n"
                 "sys.settrace(lambda *a: None)\n"
                 "sys.modules['course_lib.checks.day02'] = type(sys)('fake')\n")
        assert session.execute(patch, 30, None).state.value == "ok"
        record = test("import sys, numpy as np\nassert not all([False])\nassert not np.allclose(1, 2)\n"
                      "import course_lib.checks.day02 as d\nassert hasattr(d, 'check_lloyd_step')\n"
                      "assert sys.gettrace() is None")
        assert record["passed"] and record["nonce"] == "n1", record
        assert {"builtins.all", "sys.settrace/setprofile", "sys.modules['course_lib.checks.day02']"} <= \
            set(record["restored"]) and any("allclose" in r for r in record["restored"])
        session.execute("def sneaky():\n    import numpy\n    numpy.isclose = lambda *a, **k: True\n    return 1",
                        30, None)
        record = test("assert sneaky() == 1", "n2")
        assert not record["passed"] and "numpy.isclose" in record["tampered"]
        record = test("raise SystemExit(0)", "n3")   # even SystemExit is a failed test, not a crash
        assert not record["passed"] and record["error"]["type"] == "SystemExit"
        test("secret_line = 'the hidden tests'", "n4")
        leak = session.execute("import linecache\nprint(any('hidden' + ' tests' in ''.join(e[2]) "
                               "for e in linecache.cache.values() if len(e) > 2))", 30, None)
        assert "".join(o.get("text", "") for o in leak.outputs).strip() == "False"
    finally:
        session.close()


def test_boot_code_preloads_the_modules_the_days_checks_name():
    files = guard.package_files(Path(course_lib.__file__).parent)
    code = guard.boot_code(files, "day02")
    preload = eval(code.split("course_lib.grading.guard.boot(finder, ", 1)[1].split(")", 1)[0])
    assert preload[:3] == ["course_lib", "course_lib.checks", "course_lib.checks.day02"]
    assert "course_lib.evaluation.clustering" in preload

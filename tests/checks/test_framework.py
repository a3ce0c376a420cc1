"""Unit tests of the course_lib.checks framework: run_check, expect, assert_all_passed, summary."""

import pytest

from course_lib import checks
from course_lib.checks import CheckFailed, CheckResult, assert_all_passed, expect, run_check


# --- checks framework -----------------------------------------------------------------------------

def test_run_check_pass(capsys):
    result = run_check("day01.square", "Exercise 1 - square", lambda: "square(2) == 4", hint="multiply")
    assert result == CheckResult("day01.square", "Exercise 1 - square", "pass", "square(2) == 4", "")
    assert result.passed
    assert checks.RESULTS["day01.square"] is result
    out = capsys.readouterr().out
    assert out.startswith("[PASS] Exercise 1 - square: square(2) == 4")
    assert "hint" not in out


def test_run_check_pass_default_message():
    result = run_check("day01.a", "A", lambda: None, hint="h", display=False)
    assert result.status == "pass" and result.message == "all expectations met"


def test_run_check_fail_with_check_failed(capsys):
    def test():
        expect(1 + 1 == 2, "arithmetic")
        expect(False, "square(3) should be 9, got 6")
        return "unreachable"

    result = run_check("day01.square", "Exercise 1", test, hint="x * x, not x + x")
    assert result.status == "fail" and not result.passed
    assert result.message == "square(3) should be 9, got 6"
    assert result.hint == "x * x, not x + x"
    out = capsys.readouterr().out
    assert "[FAIL] Exercise 1: square(3) should be 9, got 6" in out
    assert "hint: x * x, not x + x" in out


def test_run_check_fail_with_plain_assertion():
    def test():
        raise AssertionError("two is not three")  # what a plain `assert` raises (pytest rewrites asserts here)

    result = run_check("day02.x", "X", test, hint="h", display=False)
    assert result.status == "fail" and result.message == "two is not three"

    def bare():
        raise AssertionError()

    result = run_check("day02.y", "Y", bare, hint="h", display=False)
    assert result.status == "fail" and result.message == "an expectation failed"


def test_run_check_todo():
    def test():
        raise NotImplementedError()

    result = run_check("day03.pca", "PCA", test, hint="use np.linalg.svd", display=False)
    assert result.status == "todo"
    assert "NotImplementedError" in result.message
    assert "[TODO]" in str(result) and "hint: use np.linalg.svd" in str(result)


def test_run_check_error_names_exception_type():
    def test():
        return {}["missing"]

    result = run_check("day04.ae", "Autoencoder", test, hint="h", display=False)
    assert result.status == "error"
    assert "KeyError" in result.message and "missing" in result.message
    assert "line" in result.message
    assert str(result).startswith("[ERROR] Autoencoder: your code raised KeyError")


def test_run_check_never_raises_and_records_all():
    outcomes = {
        "day05.a": lambda: "ok",
        "day05.b": lambda: expect(False, "nope"),
        "day05.c": lambda: 1 / 0,
        "day05.d": lambda: (_ for _ in ()).throw(NotImplementedError),
        "day05.e": lambda: (_ for _ in ()).throw(TypeError("bad arg")),
    }
    statuses = {cid: run_check(cid, cid, fn, hint="", display=False).status for cid, fn in outcomes.items()}
    assert statuses == {"day05.a": "pass", "day05.b": "fail", "day05.c": "error", "day05.d": "todo",
                        "day05.e": "error"}
    assert set(checks.RESULTS) == set(outcomes)
    assert "ZeroDivisionError" in checks.RESULTS["day05.c"].message


def test_run_check_rerun_replaces_result():
    run_check("day01.x", "X", lambda: expect(False, "first"), hint="", display=False)
    run_check("day01.x", "X", lambda: "fixed", hint="", display=False)
    assert len(checks.RESULTS) == 1 and checks.RESULTS["day01.x"].passed


def test_check_failed_is_assertion_error():
    assert issubclass(CheckFailed, AssertionError)
    with pytest.raises(CheckFailed, match="msg"):
        expect(0, "msg")
    expect([1], "non-empty is true")  # does not raise


def test_assert_all_passed_when_nothing_ran():
    with pytest.raises(AssertionError, match="no self-check"):
        assert_all_passed()
    run_check("day01.a", "A", lambda: "ok", hint="", display=False)
    with pytest.raises(AssertionError, match="day02"):
        assert_all_passed("day02")


def test_assert_all_passed_lists_failures():
    run_check("day01.a", "Alpha", lambda: "ok", hint="", display=False)
    run_check("day01.b", "Beta", lambda: expect(False, "beta is wrong"), hint="fix beta", display=False)
    run_check("day01.c", "Gamma", lambda: (_ for _ in ()).throw(NotImplementedError), hint="", display=False)
    run_check("day02.a", "Other day", lambda: "ok", hint="", display=False)
    with pytest.raises(AssertionError) as info:
        assert_all_passed("day01")
    message = str(info.value)
    assert "Beta" in message and "beta is wrong" in message and "Gamma" in message
    assert "Alpha" not in message
    assert_all_passed("day02")  # only passing checks under that prefix: no error
    assert_all_passed("day01.a")


def test_summary():
    assert checks.summary() == "(no checks run)"
    run_check("day01.a", "A", lambda: "ok", hint="", display=False)
    run_check("day01.b", "B", lambda: expect(False, "wrong"), hint="a hint", display=False)
    assert checks.summary().splitlines() == ["[PASS] A: ok", "[FAIL] B: wrong"]


def test_run_check_in_ipython_displays_mime_bundle(monkeypatch):
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    run_check("day07.ntxent", "NT-Xent", lambda: expect(False, "loss too high"), hint="divide by tau")
    (bundle, raw), = shown
    assert raw is True
    assert bundle[checks.CHECK_MIME] == {"check_id": "day07.ntxent", "title": "NT-Xent", "status": "fail",
                                         "message": "loss too high", "hint": "divide by tau"}
    assert bundle["text/plain"].startswith("[FAIL] NT-Xent")

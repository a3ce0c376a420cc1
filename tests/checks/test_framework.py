"""Unit tests of the course_lib.checks framework: verdicts, tiered hints, the reference spy, the fallback."""

import pytest

from course_lib import checks
from course_lib.checks import (CheckFailed, CheckResult, Hints, ReferenceSpy, assert_all_passed, expect, hint,
                               register_hints, run_check, use_or_reference)

register_hints({
    f"test{day:02d}.{name}": Hints(todo=f"write {name}", tiers=(f"idea of {name}", f"equation of {name}",
                                                               f"pitfall of {name}"))
    for day in (1, 2, 3, 4, 5, 7) for name in ("square", "a", "b", "c", "d", "e", "x", "y", "pca", "ae", "ntxent")
})


def reference_square(x):
    return x * x


# --- verdicts -----------------------------------------------------------------------------------

def test_run_check_pass(capsys):
    result = run_check("test01.square", "Exercise 1 - square", lambda: "square(2) == 4")
    assert result == CheckResult("test01.square", "Exercise 1 - square", "pass", "square(2) == 4", "")
    assert result.passed
    assert checks.RESULTS["test01.square"] is result
    out = capsys.readouterr().out
    assert out.startswith("[PASS] Exercise 1 - square: square(2) == 4")
    assert "hint" not in out


def test_run_check_pass_default_message():
    result = run_check("test01.a", "A", lambda: None, display=False)
    assert result.status == "pass" and result.message == "all expectations met"


def test_run_check_fail_shows_the_first_hint_tier(capsys):
    def test():
        expect(1 + 1 == 2, "arithmetic")
        expect(False, "square(3) should be 9, got 6")
        return "unreachable"

    result = run_check("test01.square", "Exercise 1", test)
    assert result.status == "fail" and not result.passed
    assert result.message == "square(3) should be 9, got 6"
    assert result.hint.startswith("idea of square") and "checks.hint('test01.square')" in result.hint
    out = capsys.readouterr().out
    assert "[FAIL] Exercise 1: square(3) should be 9, got 6" in out
    assert "hint: idea of square" in out
    assert "equation of square" not in out and "pitfall" not in out


def test_run_check_fail_with_plain_assertion():
    def test():
        raise AssertionError("two is not three")  # what a plain `assert` raises (pytest rewrites asserts here)

    result = run_check("test02.x", "X", test, display=False)
    assert result.status == "fail" and result.message == "two is not three"

    def bare():
        raise AssertionError()

    result = run_check("test02.y", "Y", bare, display=False)
    assert result.status == "fail" and result.message == "an expectation failed"


def test_run_check_todo_says_what_to_do_and_gives_no_hint():
    def test():
        raise NotImplementedError()

    result = run_check("test03.pca", "PCA", test, display=False)
    assert result.status == "todo"
    assert "NotImplementedError" in result.message
    assert result.hint == "write pca"
    text = str(result)
    assert "[TODO]" in text and "to do: write pca" in text and "idea of" not in text


def test_run_check_error_names_exception_type_and_shows_the_first_hint():
    def test():
        return {}["missing"]

    result = run_check("test04.ae", "Autoencoder", test, display=False)
    assert result.status == "error"
    assert "KeyError" in result.message and "missing" in result.message
    assert "line" in result.message
    assert str(result).startswith("[ERROR] Autoencoder: your code raised KeyError")
    assert result.hint.startswith("idea of ae")


def test_run_check_never_raises_and_records_all():
    outcomes = {
        "test05.a": lambda: "ok",
        "test05.b": lambda: expect(False, "nope"),
        "test05.c": lambda: 1 / 0,
        "test05.d": lambda: (_ for _ in ()).throw(NotImplementedError),
        "test05.e": lambda: (_ for _ in ()).throw(TypeError("bad arg")),
    }
    statuses = {cid: run_check(cid, cid, fn, display=False).status for cid, fn in outcomes.items()}
    assert statuses == {"test05.a": "pass", "test05.b": "fail", "test05.c": "error", "test05.d": "todo",
                        "test05.e": "error"}
    assert set(checks.RESULTS) == set(outcomes)
    assert "ZeroDivisionError" in checks.RESULTS["test05.c"].message


def test_run_check_needs_registered_hints():
    with pytest.raises(KeyError, match="no hints registered"):
        run_check("test99.unknown", "?", lambda: "ok", display=False)


def test_run_check_rerun_replaces_result():
    run_check("test01.x", "X", lambda: expect(False, "first"), display=False)
    run_check("test01.x", "X", lambda: "fixed", display=False)
    assert len(checks.RESULTS) == 1 and checks.RESULTS["test01.x"].passed


def test_check_failed_is_assertion_error():
    assert issubclass(CheckFailed, AssertionError)
    with pytest.raises(CheckFailed, match="msg"):
        expect(0, "msg")
    expect([1], "non-empty is true")  # does not raise


# --- hints ------------------------------------------------------------------------------------------

def test_hints_need_a_todo_and_two_or_three_tiers():
    with pytest.raises(ValueError):
        Hints(todo="x", tiers=("only one",))
    with pytest.raises(ValueError):
        Hints(todo="", tiers=("a", "b"))
    with pytest.raises(ValueError):
        Hints(todo="x", tiers=("a", "b", "c", "d"))
    with pytest.raises(TypeError):
        register_hints({"test01.bad": "a plain string"})


def test_hint_reveals_the_next_tier_then_stays_on_the_last(capsys):
    texts = [hint("test07.ntxent") for _ in range(4)]
    assert [t.split(": ", 1)[1].split("\n")[0] for t in texts] == [
        "idea of ntxent", "equation of ntxent", "pitfall of ntxent", "pitfall of ntxent"]
    assert texts[0].startswith("hint 1 of 3 (test07.ntxent)") and "again" in texts[0]
    assert "again" not in texts[2]
    assert "hint 2 of 3" in capsys.readouterr().out
    # a failure after revealing tiers shows the highest tier revealed so far
    result = run_check("test07.ntxent", "NT-Xent", lambda: expect(False, "wrong"), display=False)
    assert result.hint.startswith("pitfall of ntxent")
    with pytest.raises(KeyError):
        hint("test07.nothing")


def test_every_course_check_has_tiered_hints():
    import importlib

    for day in range(1, 11):
        importlib.import_module(f"course_lib.checks.day{day:02d}")
    course = {cid: h for cid, h in checks.all_hints().items() if cid.startswith("day")}
    assert len(course) >= 20
    assert all(2 <= len(h.tiers) <= 3 and h.todo for h in course.values())


# --- calling the reference ------------------------------------------------------------------------

def test_reference_spy_catches_direct_aliased_and_nested_calls():
    square_alias = reference_square

    def direct(x):
        return reference_square(x)

    def aliased(x):
        return square_alias(x)

    def nested(x):
        return (lambda y: direct(y))(x)

    def honest(x):
        return x ** 2

    for answer, calls in ((direct, True), (aliased, True), (nested, True), (honest, False)):
        spy = ReferenceSpy(reference_square)
        wrapped = spy.wrap(answer)
        assert wrapped(3) == 9
        assert bool(spy.called) is calls, answer.__name__
        assert wrapped.__wrapped__ is answer and wrapped.__name__ == answer.__name__


def test_reference_spy_ignores_the_checks_own_calls_and_restores_the_profiler():
    import sys

    spy = ReferenceSpy(reference_square)
    wrapped = spy.wrap(lambda x: x ** 2)
    assert reference_square(4) == wrapped(4)   # the check computes the expected value itself
    assert not spy.called
    assert sys.getprofile() is None
    with pytest.raises(TypeError):
        ReferenceSpy(len)


def test_an_answer_calling_the_reference_gets_the_reference_status():
    def lazy(x):
        return reference_square(x)

    spy = ReferenceSpy(reference_square)
    answer = spy.wrap(lazy)

    def test():
        expect(answer(3) == 9, "square(3) should be 9")
        return "square(3) == 9"

    result = run_check("test01.square", "Exercise 1 - square", test, spy=spy, display=False)
    assert result.status == "reference" and not result.passed
    assert "reference_square" in result.message and "earns nothing" in result.message
    assert "[REFERENCE]" in str(result)
    with pytest.raises(AssertionError, match="course_lib's own implementation"):
        assert_all_passed("test01")


def test_a_todo_stays_todo_even_with_a_spy():
    def blank(x):
        raise NotImplementedError()

    spy = ReferenceSpy(reference_square)
    answer = spy.wrap(blank)
    result = run_check("test01.square", "square", lambda: answer(2), spy=spy, display=False)
    assert result.status == "todo"


# --- the fallback for later cells -------------------------------------------------------------------

def test_use_or_reference(capsys):
    def mine(x):
        return x * x

    assert use_or_reference("test01.square", mine, reference_square) is reference_square
    assert "has not been checked" in capsys.readouterr().out
    run_check("test01.square", "square", lambda: (_ for _ in ()).throw(NotImplementedError), display=False)
    assert use_or_reference("test01.square", mine, reference_square, "Exercise 1.1 (square)") is reference_square
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Exercise 1.1 (square) is not done yet" in out
    run_check("test01.square", "square", lambda: "ok", display=False)
    assert use_or_reference("test01.square", mine, reference_square) is mine
    assert capsys.readouterr().out == ""


# --- summaries --------------------------------------------------------------------------------------

def test_assert_all_passed_when_nothing_ran():
    with pytest.raises(AssertionError, match="no self-check"):
        assert_all_passed()
    run_check("test01.a", "A", lambda: "ok", display=False)
    with pytest.raises(AssertionError, match="test02"):
        assert_all_passed("test02")


def test_assert_all_passed_lists_failures():
    run_check("test01.a", "Alpha", lambda: "ok", display=False)
    run_check("test01.b", "Beta", lambda: expect(False, "beta is wrong"), display=False)
    run_check("test01.c", "Gamma", lambda: (_ for _ in ()).throw(NotImplementedError), display=False)
    run_check("test02.a", "Other day", lambda: "ok", display=False)
    with pytest.raises(AssertionError) as info:
        assert_all_passed("test01")
    message = str(info.value)
    assert "self-checks not passing" in message
    assert "Beta" in message and "beta is wrong" in message and "Gamma" in message
    assert "Alpha" not in message
    assert_all_passed("test02")  # only passing checks under that prefix: no error
    assert_all_passed("test01.a")


def test_summary():
    assert checks.summary() == "(no checks run)"
    run_check("test01.a", "A", lambda: "ok", display=False)
    run_check("test01.b", "B", lambda: expect(False, "wrong"), display=False)
    assert checks.summary().splitlines() == ["[PASS] A: ok", "[FAIL] B: wrong"]


def test_run_check_in_ipython_displays_mime_bundle(monkeypatch):
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    run_check("test07.ntxent", "NT-Xent", lambda: expect(False, "loss too high"))
    (bundle, raw), = shown
    assert raw is True
    record = bundle[checks.CHECK_MIME]
    assert {k: record[k] for k in ("check_id", "title", "status", "message")} == {
        "check_id": "test07.ntxent", "title": "NT-Xent", "status": "fail", "message": "loss too high"}
    assert record["hint"].startswith("idea of ntxent")
    assert bundle["text/plain"].startswith("[FAIL] NT-Xent")

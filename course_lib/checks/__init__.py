"""Student self-checks: run a student's function on known inputs, say pass or fail with a hint.

Each day has a module (``course_lib.checks.day01`` ...) with one ``check_*`` function per
exercise. A check never raises: it prints a one-line verdict (and a hint when it fails), shows a
structured record under the MIME type :data:`CHECK_MIME`, stores the :class:`CheckResult` in
:data:`RESULTS` and returns it. A notebook's results cell calls :func:`assert_all_passed`.

Writing a check::

    def check_thing(student_fn):
        def test():
            expect(student_fn(2) == 4, "thing(2) should be 4")
            return "thing(2) == 4"          # what was verified, shown on success
        return run_check("day01.thing", "Exercise 1 - thing", test, hint="square the input")
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from typing import Callable

CHECK_MIME = "application/vnd.course.check+json"


class CheckFailed(AssertionError):
    """Raised inside a check's test to report a failed expectation."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one self-check.

    Attributes:
        check_id: stable id, ``"dayNN.name"``.
        title: human title, e.g. ``"Exercise 2.1 - k-means++ initialisation"``.
        status: ``"pass"``, ``"fail"`` (wrong result), ``"error"`` (the code raised) or ``"todo"``
            (``NotImplementedError``: not attempted yet).
        message: what was verified, or what went wrong.
        hint: a hint for fixing it (empty on pass).
    """

    check_id: str
    title: str
    status: str
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.status == "pass"

    def __str__(self) -> str:
        mark = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "todo": "TODO"}[self.status]
        text = f"[{mark}] {self.title}: {self.message}"
        return text + (f"\n       hint: {self.hint}" if self.hint and not self.passed else "")


RESULTS: dict[str, CheckResult] = {}


def expect(condition, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` is true."""
    if not condition:
        raise CheckFailed(message)


def run_check(check_id: str, title: str, test: Callable[[], str], hint: str, display: bool = True) -> CheckResult:
    """Run ``test`` and turn its outcome into a :class:`CheckResult` (never raises).

    Args:
        check_id: stable id ``"dayNN.name"``.
        title: shown to the student.
        test: callable returning a short description of what passed; it raises :class:`CheckFailed`
            (or ``AssertionError``) for a wrong result. ``NotImplementedError`` means "not done yet";
            any other exception is reported with its type and message.
        hint: shown when the check does not pass.
        display: print the verdict and attach the structured record to the cell's output.
    """
    try:
        message = test() or "all expectations met"
        result = CheckResult(check_id, title, "pass", message)
    except NotImplementedError:
        result = CheckResult(check_id, title, "todo", "not implemented yet (the cell still raises NotImplementedError)",
                             hint)
    except AssertionError as error:
        result = CheckResult(check_id, title, "fail", str(error) or "an expectation failed", hint)
    except Exception as error:  # a student's bug: report it, never crash the notebook
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result = CheckResult(check_id, title, "error",
                             f"your code raised {error.__class__.__name__}: {error} (line {frame.lineno})", hint)
    RESULTS[check_id] = result
    if display:
        _display(result)
    return result


def _display(result: CheckResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({CHECK_MIME: asdict(result), "text/plain": str(result)}, raw=True)
            return
    except ImportError:
        pass
    print(result)


def summary() -> str:
    """One line per check run so far in this kernel."""
    return "\n".join(str(r).splitlines()[0] for r in RESULTS.values()) or "(no checks run)"


def assert_all_passed(prefix: str = "") -> None:
    """Raise ``AssertionError`` listing every check (whose id starts with ``prefix``) that did not pass.

    Raises:
        AssertionError: some check failed, errored or is not done, or no check ran at all.
    """
    selected = [r for r in RESULTS.values() if r.check_id.startswith(prefix)]
    if not selected:
        raise AssertionError(f"no self-check with id prefix {prefix!r} has run")
    bad = [r for r in selected if not r.passed]
    if bad:
        raise AssertionError("self-checks not passing:\n" + "\n".join(str(r) for r in bad))

"""Student self-checks: run a student's function on known inputs, say pass or fail, and teach with hints.

Each day has a module (``course_lib.checks.day01`` ...) with one ``check_*`` function per exercise and a
``HINTS`` table registered with :func:`register_hints`. A check never raises: it prints a one-line
verdict, shows a structured record under the MIME type :data:`CHECK_MIME`, stores the
:class:`CheckResult` in :data:`RESULTS` and returns it. A notebook's results cell calls
:func:`assert_all_passed`.

**Hints come in tiers and never contain code.** Every check has an :class:`Hints` entry: ``todo`` (what the
exercise asks for, shown while the cell still raises ``NotImplementedError``: no hint yet), then two or
three ``tiers`` — the idea, then the equation or the API to use, then the usual pitfall. A failing or
erroring check shows the first tier; ``checks.hint("day07.nt_xent")`` reveals the next one each time it
is called.

**Calling the reference is not an answer.** A check that wraps the student's function with
:meth:`ReferenceSpy.wrap` learns whether the answer called (directly or through any alias)
course_lib's own implementation of the same exercise; such an answer gets the status ``"reference"``,
whatever its result, and the grader gives it no points.

Writing a check::

    HINTS = register_hints({
        "day01.square": Hints(todo="return the square of the input",
                              tiers=("multiply the number by itself", "x ** 2 in Python", "not x * 2")),
    })

    def check_square(square):
        spy = ReferenceSpy(reference_square)
        square = spy.wrap(square)

        def test():
            expect(square(2) == 4, "square(2) should be 4")
            return "square(2) == 4"          # what was verified, shown on success
        return run_check("day01.square", "Exercise 1.1 - square", test, spy=spy)

Later cells that need an exercise's result use :func:`use_or_reference`, which takes the student's version
when its check passed and otherwise says so in one line and goes on with the reference.
"""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

CHECK_MIME = "application/vnd.course.check+json"

#: The statuses a check can end with (``CheckResult.status``).
STATUSES = ("pass", "fail", "error", "todo", "reference")


class CheckFailed(AssertionError):
    """Raised inside a check's test to report a failed expectation."""


@dataclass(frozen=True)
class Hints:
    """What a check tells a student who is not there yet.

    Attributes:
        todo: what the exercise asks for, in one or two sentences (shown while nothing is implemented).
        tiers: two or three hints of increasing precision: the idea, the equation or API, the usual pitfall.
            Prose only: a hint never contains a line of the solution.

    Raises:
        ValueError: (on construction) an empty ``todo``, fewer than 2 or more than 3 tiers, or an empty tier.
    """

    todo: str
    tiers: tuple[str, ...]

    def __post_init__(self):
        if not self.todo or not 2 <= len(self.tiers) <= 3 or not all(self.tiers):
            raise ValueError(f"a check needs a todo text and 2-3 non-empty hint tiers, got {len(self.tiers)}")


_HINTS: dict[str, Hints] = {}
_REVEALED: dict[str, int] = {}


def register_hints(table: Mapping[str, Hints]) -> dict[str, Hints]:
    """Register a day's hints (``{check_id: Hints}``); returns the table, so a module can keep it as ``HINTS``.

    Args:
        table: check id (``"dayNN.name"``) -> :class:`Hints`; an id registered before is replaced.

    Returns:
        A copy of ``table`` as a dict.

    Raises:
        TypeError: a value that is not a :class:`Hints` (the entries before it are already registered).
    """
    for check_id, hints in table.items():
        if not isinstance(hints, Hints):
            raise TypeError(f"hints of {check_id!r} must be a Hints object, got {type(hints).__name__}")
        _HINTS[check_id] = hints
    return dict(table)


def all_hints() -> dict[str, Hints]:
    """Every registered hint table entry, ``{check_id: Hints}`` (import the day modules first)."""
    return dict(_HINTS)


def _hints_for(check_id: str) -> Hints:
    try:
        return _HINTS[check_id]
    except KeyError:
        raise KeyError(f"no hints registered for check {check_id!r}") from None


def hint(check_id: str) -> str:
    """Reveal (print and return) the next hint tier of a check; after the last one, repeat it.

    Args:
        check_id: e.g. ``"day07.nt_xent"`` (see the id printed with a verdict).

    Raises:
        KeyError: an unknown check id.
    """
    hints = _hints_for(check_id)
    level = min(_REVEALED.get(check_id, 0) + 1, len(hints.tiers))
    _REVEALED[check_id] = level
    text = f"hint {level} of {len(hints.tiers)} ({check_id}): {hints.tiers[level - 1]}"
    if level < len(hints.tiers):
        text += f"\n  (stuck? run checks.hint({check_id!r}) again for the next one)"
    print(text)
    return text


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one self-check.

    Attributes:
        check_id: stable id, ``"dayNN.name"``.
        title: human title, e.g. ``"Exercise 2.1 - k-means++ initialisation"``.
        status: one of :data:`STATUSES`: ``"pass"``, ``"fail"`` (wrong result), ``"error"`` (the code raised),
            ``"todo"`` (``NotImplementedError``: not attempted yet) or ``"reference"`` (the answer calls
            course_lib's implementation of the exercise instead of implementing it).
        message: what was verified, or what went wrong.
        hint: the hint shown with the verdict (empty on pass; the ``todo`` text for a ``"todo"``).
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
        mark = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "todo": "TODO", "reference": "REFERENCE"}[self.status]
        text = f"[{mark}] {self.title}: {self.message}"
        if self.passed or not self.hint:
            return text
        label = "to do" if self.status == "todo" else "hint"
        return text + f"\n       {label}: {self.hint}"


RESULTS: dict[str, CheckResult] = {}


def as_tensors(*arrays) -> tuple:
    """The arrays as backend tensors (``keras.ops.convert_to_tensor``), as a training step passes them.

    Checks call a student's loss with these rather than NumPy arrays: the loss runs inside ``train_step`` on
    tensors, and some ``keras.ops`` functions accept no NumPy input on every backend (``stop_gradient`` on
    PyTorch calls ``.detach()``).

    Args:
        *arrays: NumPy arrays or numbers (any shape and dtype; the dtype is kept).

    Returns:
        A tuple of backend tensors, one per argument, in order.
    """
    from keras import ops

    return tuple(ops.convert_to_tensor(a) for a in arrays)


def expect(condition, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` is true.

    Args:
        condition: any value; its truth is tested (a NumPy array of several elements raises ``ValueError``:
            reduce it first, e.g. with ``np.all``).
        message: what the student sees when the expectation fails.

    Raises:
        CheckFailed: ``condition`` is false.
    """
    if not condition:
        raise CheckFailed(message)


class ReferenceSpy:
    """Detects whether a student's function calls course_lib's implementation of the same exercise.

    While a function wrapped by :meth:`wrap` runs, a profile hook (``sys.setprofile``) watches every Python
    call; entering the code object of one of the ``references`` marks the spy. Aliases (``from ... import f
    as g``), wrappers and copies of the function that share its code object are all caught; the check's own
    calls of the reference (to compute the expected value) happen outside the wrapped function and are not.

    Args:
        *references: the library functions (or methods) that implement the exercise.

    Attributes:
        called: names of the references the student's code called.

    Raises:
        TypeError: (on construction) a reference without a Python code object (a builtin or C function).
    """

    def __init__(self, *references):
        self._codes = {}
        for ref in references:
            func = getattr(ref, "__func__", ref)
            code = getattr(func, "__code__", None)
            if code is None:
                raise TypeError(f"cannot watch {ref!r}: not a Python function")
            self._codes[code] = f"{func.__module__}.{func.__qualname__}"
        self.called: set[str] = set()
        self._depth = 0

    def wrap(self, student_fn: Callable) -> Callable:
        """Return ``student_fn`` wrapped so that its calls of a reference are recorded (same signature)."""
        spy = self

        def watched(*args, **kwargs):
            if spy._depth or threading.current_thread() is not threading.main_thread():
                return student_fn(*args, **kwargs)
            previous = sys.getprofile()

            def profile(frame, event, arg):
                if event == "call" and frame.f_code in spy._codes:
                    spy.called.add(spy._codes[frame.f_code])

            spy._depth += 1
            sys.setprofile(profile)
            try:
                return student_fn(*args, **kwargs)
            finally:
                sys.setprofile(previous)
                spy._depth -= 1

        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            try:
                setattr(watched, attribute, getattr(student_fn, attribute))
            except (AttributeError, TypeError):
                pass
        watched.__wrapped__ = student_fn
        return watched


def run_check(check_id: str, title: str, test: Callable[[], str], spy: ReferenceSpy | None = None,
              display: bool = True) -> CheckResult:
    """Run ``test`` and turn its outcome into a :class:`CheckResult` (never raises).

    Args:
        check_id: stable id ``"dayNN.name"`` with registered :class:`Hints`.
        title: shown to the student.
        test: callable returning a short description of what passed; it raises :class:`CheckFailed`
            (or ``AssertionError``) for a wrong result. ``NotImplementedError`` means "not done yet";
            any other exception is reported with its type and message.
        spy: the :class:`ReferenceSpy` whose ``wrap`` the test's student functions went through; if it saw a
            call of the reference, the status is ``"reference"``.
        display: print the verdict and attach the structured record to the cell's output.

    Raises:
        KeyError: no hints registered for ``check_id`` (a mistake in the course, not the student's).
    """
    hints = _hints_for(check_id)
    first_hint = hints.tiers[min(max(_REVEALED.get(check_id, 1), 1), len(hints.tiers)) - 1]
    more = f" (more: checks.hint({check_id!r}))"
    try:
        message = test() or "all expectations met"
        result = CheckResult(check_id, title, "pass", message)
    except NotImplementedError:
        result = CheckResult(check_id, title, "todo", "not implemented yet (the cell still raises "
                             "NotImplementedError)", hints.todo)
    except AssertionError as error:
        result = CheckResult(check_id, title, "fail", str(error) or "an expectation failed", first_hint + more)
    except Exception as error:  # a student's bug: report it, never crash the notebook
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result = CheckResult(check_id, title, "error",
                             f"your code raised {error.__class__.__name__}: {error} (line {frame.lineno})",
                             first_hint + more)
    if spy is not None and spy.called and result.status != "todo":
        result = CheckResult(check_id, title, "reference",
                             f"your answer calls course_lib's own implementation ({', '.join(sorted(spy.called))}) "
                             "instead of computing it: that is what your result is compared with, so it earns "
                             "nothing. Write the computation yourself.", hints.todo)
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


def use_or_reference(check_id: str, student_fn: Callable, reference_fn: Callable, what: str = "") -> Callable:
    """The student's function when its check passed, else the reference with a one-line note.

    For the cells after an exercise: a student who has not finished it can still run (and read) the rest
    of the notebook, with course_lib's implementation standing in.

    Args:
        check_id: the exercise's check, e.g. ``"day07.nt_xent"``.
        student_fn: the student's function.
        reference_fn: course_lib's implementation with the same signature.
        what: how the note names the exercise (default: the check's id).

    Returns:
        ``student_fn`` or ``reference_fn``.
    """
    result = RESULTS.get(check_id)
    if result is not None and result.passed:
        return student_fn
    state = "has not been checked" if result is None else {"todo": "is not done yet", "fail": "does not pass yet",
                                                           "error": "raises an error",
                                                           "reference": "calls the library"}[result.status]
    print(f"note: {what or check_id} {state}; this cell uses course_lib's reference implementation instead.")
    return reference_fn


def summary() -> str:
    """One line per check run so far in this kernel."""
    return "\n".join(str(r).splitlines()[0] for r in RESULTS.values()) or "(no checks run)"


def assert_all_passed(prefix: str = "") -> None:
    """Raise ``AssertionError`` listing every check (whose id starts with ``prefix``) that did not pass.

    Raises:
        AssertionError: some check failed, errored, called the reference or is not done, or no check ran at all.
    """
    selected = [r for r in RESULTS.values() if r.check_id.startswith(prefix)]
    if not selected:
        raise AssertionError(f"no self-check with id prefix {prefix!r} has run")
    bad = [r for r in selected if not r.passed]
    if bad:
        raise AssertionError("self-checks not passing:\n" + "\n".join(str(r) for r in bad))

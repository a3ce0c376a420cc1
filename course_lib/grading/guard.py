"""The guard: the only grading code that runs inside a student's kernel.

Before any student code, the boot step (:func:`boot_code`) installs an import hook that serves
``course_lib`` from the sources the grader read at start-up (files changed on disk during grading
never reach a kernel), imports the day's checks and snapshots ``course_lib``, NumPy, ``math`` and
``builtins``. Before each exercise's tests, :func:`run_test` puts back everything the student's
code changed in them, runs the trusted check-cell source (sent as code only at that moment, never
written to disk) in a sealed namespace, compares the state again afterwards, forgets the test
source, and displays a verdict tagged with the grader's one-time nonce.

This module is imported in the grader too (for :func:`boot_code`, :func:`package_files`,
:data:`VERDICT_MIME` and :func:`short`), so it imports nothing beyond the standard library.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import zlib
from pathlib import Path

VERDICT_MIME = "application/vnd.course.grade+json"

# The boot code: installs an import hook that serves course_lib from the sources the grader read at
# start-up (so files changed on disk during grading never reach a kernel), then hands over to
# boot() below. Executed before any other code in a fresh kernel.
_BOOT_TEMPLATE = r'''
def _course_grader_boot(payload):
    import base64, importlib.abc, importlib.util, json, os, sys, zlib
    files = json.loads(zlib.decompress(base64.b64decode(payload)).decode("utf-8"))
    by_path = {entry[0]: entry[1] for entry in files.values()}

    class Loader(importlib.abc.SourceLoader):
        def get_filename(self, fullname):
            return files[fullname][0]

        def get_data(self, path):
            if path in by_path:
                return by_path[path].encode("utf-8")
            raise OSError(path)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            entry = files.get(fullname)
            if entry is None:
                return None
            locations = [os.path.dirname(entry[0])] if entry[2] else None
            return importlib.util.spec_from_file_location(fullname, entry[0], loader=Loader(),
                                                          submodule_search_locations=locations)

    finder = Finder()
    sys.meta_path.insert(0, finder)
    for name in [n for n in sys.modules if n == "course_lib" or n.startswith("course_lib.")]:
        del sys.modules[name]
    import course_lib.grading.guard
    course_lib.grading.guard.boot(finder, PRELOAD)

_course_grader_boot(PAYLOAD)
del _course_grader_boot
'''

_KERNEL_WATCH = ("builtins", "math", "numpy", "numpy.linalg", "numpy.random", "numpy.testing", "numpy.fft")
# Builtins that IPython / ipykernel legitimately replace per request (input() is swapped for stdin).
_BUILTINS_IGNORED = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "help", "copyright", "credits",
                     "license", "dreload", "runfile", "open", "input", "raw_input", "getpass"}
_K: dict = {}          # kernel-side state of the guard
_MISSING = object()


def boot(finder, preload):
    """Set up the guard in a fresh grading kernel: import the trusted modules and snapshot them."""
    import builtins
    import importlib
    import types

    from IPython import get_ipython
    from IPython.display import display

    _K.update(shell=get_ipython(), display=display, finder=finder, builtins=builtins,
              builtins_dict=builtins.__dict__, module_type=types.ModuleType, function_type=types.FunctionType,
              modules={}, classes=[], codes=[], trusted={}, results_class=None)
    for name in ("numpy", "numpy.linalg", "numpy.random", "numpy.testing", "numpy.fft", "math", *preload):
        try:
            importlib.import_module(name)
        except Exception:  # a broken optional module must not stop grading; the notebook will show it
            pass
    checks = sys.modules.get("course_lib.checks")
    _K["results_class"] = getattr(checks, "CheckResult", None)
    _snapshot()


def _snapshot():
    """Snapshot watched modules loaded since the last call (course_lib fully; the others' callables)."""
    modules, module_type = _K["modules"], _K["module_type"]
    for name, module in list(sys.modules.items()):
        ours = name == "course_lib" or name.startswith("course_lib.")
        if name in modules or module is None or not (ours or name in _KERNEL_WATCH):
            continue
        items = {}
        for key, value in list(vars(module).items()):
            if isinstance(value, module_type):
                continue
            if name == "builtins" and key in _BUILTINS_IGNORED:
                continue
            if not ours and (not callable(value) or (key.startswith("_") and name != "builtins")):
                continue
            items[key] = value
            for func in _functions_behind(value):
                _K["codes"].append((func, func.__code__, func.__defaults__, func.__kwdefaults__))
            if ours and isinstance(value, type) and getattr(value, "__module__", "") == name:
                # methods and descriptors only: data attributes may be legitimate caches
                attrs = {k: v for k, v in vars(value).items()
                         if k not in ("__dict__", "__weakref__") and (callable(v) or hasattr(v, "__get__"))}
                _K["classes"].append((value, attrs, frozenset(vars(value))))
                for attr in attrs.values():
                    func = getattr(attr, "__func__", attr)
                    if isinstance(func, _K["function_type"]):
                        _K["codes"].append((func, func.__code__, func.__defaults__, func.__kwdefaults__))
        modules[name] = (module, items, ours)


def _functions_behind(value) -> list:
    """The Python functions whose code runs when ``value`` is called: itself, or what a NumPy
    dispatcher (``_implementation``) or a decorator (``__wrapped__``) wraps."""
    function_type = _K["function_type"]
    found = [value] if isinstance(value, function_type) else []
    for attr in ("_implementation", "__wrapped__"):
        try:
            inner = getattr(value, attr, None) if callable(value) else None
        except Exception:  # an object whose attribute lookup fails is not a wrapper
            inner = None
        if isinstance(inner, function_type):
            found.append(inner)
    return found


def capture(names):
    """Before a student cell runs: remember what the instructor cells bound to ``names``."""
    user_ns = _K["shell"].user_ns
    for name in names:
        value = user_ns.get(name, _MISSING)
        if value is _MISSING:
            _K["trusted"].pop(name, None)
        else:
            _K["trusted"][name] = value
    _snapshot()


def _restore() -> list[str]:
    """Undo changes to the watched modules, classes and functions; return what had to be undone."""
    fixed: list[str] = []
    if "builtins" in _K["modules"]:  # first, so that the code below runs with the real builtins
        namespace, items = _K["builtins_dict"], _K["modules"]["builtins"][1]
        fixed += [f"builtins.{k}" for k, v in items.items() if namespace.get(k, _MISSING) is not v]
        namespace.update(items)
    module_type, modules = _K["module_type"], _K["modules"]
    for name, (module, items, ours) in modules.items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            fixed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in items.items():
            if namespace.get(key, _MISSING) is not value:
                namespace[key] = value
                fixed.append(f"{name}.{key}")
        if ours:
            for key in [k for k, v in namespace.items() if k not in items and not isinstance(v, module_type)
                        and callable(v) and not k.startswith("__")]:
                del namespace[key]
                fixed.append(f"{name}.{key} (added)")
    for cls, attrs, keys in _K["classes"]:
        current = vars(cls)
        for key, value in attrs.items():
            if current.get(key, _MISSING) is not value:
                try:
                    type.__setattr__(cls, key, value)
                    fixed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
                except (AttributeError, TypeError):
                    pass
        for key in [k for k in current if k not in keys and any(k in vars(b) for b in cls.__mro__[1:])]:
            try:
                type.__delattr__(cls, key)
                fixed.append(f"{cls.__module__}.{cls.__qualname__}.{key} (added)")
            except (AttributeError, TypeError):
                pass
    for func, code, defaults, kwdefaults in _K["codes"]:
        if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
            func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults
            fixed.append(f"{func.__module__}.{func.__qualname__} (code)")
    for name in [n for n in sys.modules if (n == "course_lib" or n.startswith("course_lib.")) and n not in modules]:
        del sys.modules[name]  # imported after the snapshot: re-imported from the trusted sources on demand
    finder = _K["finder"]
    if not sys.meta_path or sys.meta_path[0] is not finder:
        while finder in sys.meta_path:
            sys.meta_path.remove(finder)
        sys.meta_path.insert(0, finder)
        fixed.append("sys.meta_path")
    import threading

    if sys.gettrace() is not None or sys.getprofile() is not None:
        fixed.append("sys.settrace/setprofile")
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)
    threading.setprofile(None)
    return fixed


def _tampered(results_dict, checks_module) -> list[str]:
    """After the tests: what the code under test changed in the watched state (callables only)."""
    changed = []
    for name, (module, items, _ours) in _K["modules"].items():
        if sys.modules.get(name) is not module:
            changed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in items.items():
            if callable(value) and namespace.get(key, _MISSING) is not value:
                changed.append(f"{name}.{key}")
    for cls, attrs, _keys in _K["classes"]:
        current = vars(cls)
        for key, value in attrs.items():
            if current.get(key, _MISSING) is not value:
                changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
    for func, code, defaults, kwdefaults in _K["codes"]:
        if func.__code__ is not code or func.__defaults__ is not defaults or func.__kwdefaults__ is not kwdefaults:
            changed.append(f"{func.__module__}.{func.__qualname__}")
    if checks_module is not None and getattr(checks_module, "RESULTS", None) is not results_dict:
        changed.append("course_lib.checks.RESULTS")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        changed.append("sys.settrace/setprofile")
    return changed


def short(value, limit=300) -> str:
    """``str(value)`` on one line, at most ``limit`` characters (never raises)."""
    try:
        text = str(value)
    except BaseException:  # a student's exception whose __str__ fails
        text = "<unprintable>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_test(grade_id, source, nonce):
    """Run one exercise's trusted check-cell source through the guard and display the verdict."""
    restored = _restore()
    checks_module = _K["modules"].get("course_lib.checks", (None,))[0]
    namespace = dict(_K["shell"].user_ns)
    namespace.update(_K["trusted"])
    namespace["__builtins__"] = _K["builtins"]
    namespace["__name__"] = "__main__"
    saved = getattr(checks_module, "RESULTS", None) if checks_module is not None else None
    fresh: dict = {}
    if checks_module is not None:
        checks_module.RESULTS = fresh
    error = None
    try:
        exec(compile(source, f"<tests of {grade_id}>", "exec"), namespace)
    except BaseException as exc:  # everything the student's code may raise, including SystemExit
        error = exc
    tampered = _tampered(fresh, checks_module)
    if checks_module is not None:
        checks_module.RESULTS = saved if isinstance(saved, dict) else {}
        checks_module.RESULTS.update({k: v for k, v in fresh.items() if isinstance(k, str)})
    checks = []
    results_class = _K["results_class"]
    for result in list(fresh.values()):
        if results_class is None or type(result) is not results_class:
            tampered.append("a self-check result that is not a course_lib CheckResult")
            continue
        checks.append({"check_id": short(result.check_id), "status": short(result.status),
                       "message": short(result.message), "hint": short(result.hint)})
    record = {"nonce": nonce, "grade_id": grade_id, "checks": checks, "restored": restored[:20],
              "tampered": tampered[:20], "error": None}
    if error is not None:
        record["error"] = {"type": type(error).__name__, "message": short(error),
                           "not_implemented": isinstance(error, NotImplementedError),
                           "assertion": isinstance(error, AssertionError)}
    passed = error is None and not tampered and all(c["status"] == "pass" for c in checks)
    record["passed"] = passed
    text = f"[grader] {grade_id}: {'passed' if passed else 'not passed'}"
    _forget(nonce)
    _K["display"]({VERDICT_MIME: record, "text/plain": text}, raw=True)


def _forget(nonce):
    """Drop IPython's cached copy of the cell that carried these tests (it keeps every cell's
    source in ``linecache`` for tracebacks), so that later student code cannot read them back."""
    import linecache

    for key, entry in list(linecache.cache.items()):
        lines = entry[2] if isinstance(entry, tuple) and len(entry) > 2 else None
        if isinstance(lines, list) and any(nonce in line for line in lines if isinstance(line, str)):
            linecache.cache.pop(key, None)


# ==================================================================================================
# Grader side: what the boot step carries
# ==================================================================================================

def package_files(package_dir: Path) -> dict[str, list]:
    """``{module name: [path, source, is_package]}`` for every ``.py`` file of the package."""
    files = {}
    root = package_dir.resolve()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        parts = [root.name, *rel.with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        try:
            files[".".join(parts)] = [str(path), path.read_text(encoding="utf-8"), is_package]
        except (OSError, UnicodeDecodeError):
            continue
    return files


def boot_code(files: dict, day: str) -> str:
    """The code of a kernel's boot step: the import hook over ``files`` (see :func:`package_files`),
    then :func:`boot` with the modules to import and snapshot before any student code: the day's
    checks and every ``course_lib`` module they name (e.g. the reference implementations they
    compare against)."""
    preload = ["course_lib", "course_lib.checks"]
    day_checks = f"course_lib.checks.{day}"
    if day_checks in files:
        preload.append(day_checks)
        for dotted in sorted(set(re.findall(r"course_lib((?:\.\w+)+)", files[day_checks][1]))):
            parts = dotted.strip(".").split(".")
            for depth in range(1, len(parts) + 1):
                name = "course_lib." + ".".join(parts[:depth])
                if name in files and name not in preload:
                    preload.append(name)
    payload = base64.b64encode(zlib.compress(json.dumps(files).encode("utf-8"), 9)).decode("ascii")
    return _BOOT_TEMPLATE.replace("PRELOAD", repr(preload)).replace("PAYLOAD", repr(payload))



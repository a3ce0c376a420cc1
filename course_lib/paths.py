"""Where the course keeps its files: the project root, ``build/`` and the dataset cache ``data/``."""

from __future__ import annotations

import os
from pathlib import Path

_MARKER = "pyproject.toml"
_PROJECT_NAME = 'name = "learning-without-labels"'


def _is_project_root(path: Path) -> bool:
    marker = path / _MARKER
    try:
        return marker.is_file() and _PROJECT_NAME in marker.read_text(encoding="utf-8")
    except OSError:
        return False


def project_root(start: Path | None = None) -> Path:
    """Return the course's root folder (the one holding its ``pyproject.toml``).

    Searches upwards from ``start`` (default: the current directory, so a notebook running in
    ``lessons/`` finds the root), then from this package's own location (an editable install).
    Falls back to ``start`` when neither is inside the course checkout.
    """
    start = Path.cwd() if start is None else Path(start)
    for origin in (start.resolve(), Path(__file__).resolve().parent):
        for candidate in (origin, *origin.parents):
            if _is_project_root(candidate):
                return candidate
    return start.resolve()


def build_dir() -> Path:
    """Folder for executed notebooks, HTML, metrics and saved models: ``$COURSE_BUILD_DIR`` or ``<root>/build``."""
    env = os.environ.get("COURSE_BUILD_DIR")
    return Path(env).expanduser().resolve() if env else project_root() / "build"


def data_dir() -> Path:
    """Dataset cache folder: ``$COURSE_DATA_DIR`` or ``<root>/data``."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env).expanduser().resolve() if env else project_root() / "data"


def solutions_dir() -> Path:
    """The source notebooks, ``<root>/solutions``."""
    return project_root() / "solutions"


def lessons_dir() -> Path:
    """The generated student notebooks, ``<root>/lessons``."""
    return project_root() / "lessons"

"""Unit tests for course_lib.paths: finding the project root, and the build / data folders."""

from pathlib import Path

import course_lib
from course_lib import paths


# --- paths ----------------------------------------------------------------------------------------

def test_project_root_found_from_subfolder(project):
    deep = project / "lessons" / "sub" / "deeper"
    deep.mkdir(parents=True)
    assert paths.project_root(deep) == project.resolve()
    assert paths.project_root() == project.resolve()  # from the cwd
    assert paths.solutions_dir() == project.resolve() / "solutions"
    assert paths.lessons_dir() == project.resolve() / "lessons"
    assert paths.build_dir() == project.resolve() / "build"
    assert paths.data_dir() == project.resolve() / "data"


def test_project_root_ignores_other_projects(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n', encoding="utf-8")
    assert not paths._is_project_root(other)
    # not the unrelated project: falls back to the checkout holding this package (editable install),
    # else to the start folder itself
    checkout = Path(course_lib.__file__).resolve().parent.parent
    expected = checkout if paths._is_project_root(checkout) else other.resolve()
    assert paths.project_root(other) == expected


def test_build_dir_and_data_dir_env_override(project, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "elsewhere" / "build"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    assert paths.build_dir() == (tmp_path / "elsewhere" / "build").resolve()
    assert paths.data_dir() == (tmp_path / "cache").resolve()
    monkeypatch.setenv("COURSE_BUILD_DIR", "~/course-build")
    assert paths.build_dir() == Path("~/course-build").expanduser().resolve()

"""environment.yml installs exactly what ``pip install -e ".[dev]"`` installs, on a supported Python, and its
comments say how to add the optional extras (``gpu``; the ``jax`` / ``torch`` backends) as pyproject.toml has them."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def normalise(requirement: str) -> str:
    """Canonical text of a requirement: normalised name, sorted extras, sorted specifiers, marker."""
    req = Requirement(requirement)
    extras = f"[{','.join(sorted(canonicalize_name(e) for e in req.extras))}]" if req.extras else ""
    specifier = ",".join(sorted(str(s) for s in req.specifier))
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{specifier}{marker}"


@pytest.fixture(scope="module")
def pyproject():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def environment():
    with open(ROOT / "environment.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def conda_python(environment) -> str:
    pythons = [d for d in environment["dependencies"] if isinstance(d, str) and d.split("=")[0].strip() == "python"]
    assert len(pythons) == 1, f"environment.yml must pin python once, found {pythons}"
    return pythons[0]


def pip_section(environment) -> list[str]:
    sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml must have exactly one pip: section"
    return sections[0]


def test_normalise_helper():
    assert normalise("Scikit_Learn >= 1.5") == normalise("scikit-learn>=1.5")
    assert normalise("tensorflow<2.22,>=2.21") == normalise("tensorflow>=2.21,<2.22")
    assert normalise("keras>=3") != normalise("keras>=3.15")
    assert normalise("tensorflow[and-cuda]>=2.21") != normalise("tensorflow>=2.21")


def test_pip_requirements_equal_dependencies_plus_dev(pyproject, environment):
    project = pyproject["project"]
    expected = {normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    pip = pip_section(environment)
    listed = [line for line in pip if not line.startswith("-")]
    actual = {normalise(r) for r in listed}
    assert len(actual) == len(listed), "duplicate requirement in environment.yml"
    assert actual - expected == set(), "in environment.yml but not in pyproject.toml"
    assert expected - actual == set(), "in pyproject.toml but not in environment.yml"


def test_environment_installs_the_project_itself(environment):
    pip = pip_section(environment)
    assert "-e ." in [line.strip() for line in pip]
    assert [line for line in pip if line.startswith("-")] == ["-e ."]  # no other pip options sneaked in
    assert "pip" in environment["dependencies"]


def test_environment_python_satisfies_requires_python(pyproject, environment):
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    pinned = conda_python(environment)
    version = pinned.split("=")[-1].strip()
    assert Version(version) in requires, f"{pinned} does not satisfy requires-python {requires}"
    # a conda pin "3.11" means any 3.11.x: every patch release must be allowed too
    assert Version(version + ".99") in requires


def test_gpu_extra_is_the_same_tensorflow(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    deps = {canonicalize_name(Requirement(r).name): Requirement(r) for r in pyproject["project"]["dependencies"]}
    (gpu,) = [Requirement(r) for r in extras["gpu"]]
    assert canonicalize_name(gpu.name) == "tensorflow" and "and-cuda" in gpu.extras
    assert gpu.specifier == deps["tensorflow"].specifier


def test_console_script(pyproject):
    assert pyproject["project"]["scripts"]["course"] == "course_lib.cli:main"
    from course_lib import cli

    assert callable(cli.main)


# --- the backend extras ------------------------------------------------------------------------------

def environment_comments() -> str:
    lines = (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines()
    return "\n".join(line.lstrip("# ") for line in lines if line.lstrip().startswith("#"))


def test_backend_extras_install_what_course_lib_checks_for(pyproject):
    from course_lib.backends import BACKEND_EXTRAS, BACKEND_MODULES

    extras = pyproject["project"]["optional-dependencies"]
    for backend, extra in BACKEND_EXTRAS.items():
        if extra is None:  # TensorFlow: a base dependency
            names = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["dependencies"]}
        else:
            names = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
            assert len(names) == len(extras[extra]), f"duplicate requirement in the {extra} extra"
        assert set(BACKEND_MODULES[backend]) <= names, (backend, names)


def test_jax_and_jaxlib_move_together(pyproject):
    extra = pyproject["project"]["optional-dependencies"]["jax"]
    jax = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extra}
    assert set(jax) == {"jax", "jaxlib"}
    assert jax["jax"].specifier == jax["jaxlib"].specifier
    assert any(s.operator == "<" for s in jax["jax"].specifier), "an upper bound, as for tensorflow"


def test_torch_is_pinned_exactly(pyproject):
    # an unpinned torch resolves to the newest multi-GB CUDA build
    (torch,) = [Requirement(r) for r in pyproject["project"]["optional-dependencies"]["torch"]]
    assert canonicalize_name(torch.name) == "torch" and not torch.extras
    (pin,) = list(torch.specifier)
    assert pin.operator == "==" and "*" not in pin.version


def test_environment_comments_explain_every_extra(pyproject):
    comments = environment_comments()
    extras = pyproject["project"]["optional-dependencies"]
    for extra in ("jax", "torch"):
        assert f"-e .[{extra}]" in comments, f"environment.yml does not say how to add the {extra} extra"
    assert "-e .[jax,torch]" in comments
    named = set(re.findall(r"-e \.\[([a-z,]+)\]", comments))
    for group in named:
        assert set(group.split(",")) <= set(extras), f"environment.yml names an extra that does not exist: {group}"
    # the gpu extra is spelled out in full: it must be the extra's own requirement
    (gpu_comment,) = re.findall(r'"(tensorflow\[and-cuda\][^"]*)"', comments)
    assert [normalise(gpu_comment)] == [normalise(r) for r in extras["gpu"]]

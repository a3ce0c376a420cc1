"""The public names of course_lib.models (``__all__``): each resolves, lazily, to the object of its family module."""

import importlib
import subprocess
import sys

import pytest

from course_lib import models


def test_every_exported_name_resolves_to_its_family_module():
    assert models.__all__ == sorted(set(models.__all__))
    assert not set(models.__all__) & set(models._EXPORTS)  # a name that is also a module's would be shadowed
    for name in models.__all__:
        family = models._WHERE[name]
        obj = getattr(models, name)
        assert obj is getattr(importlib.import_module(f"course_lib.models.{family}"), name), name
        assert getattr(obj, "__module__", "") == f"course_lib.models.{family}", name
    assert set(dir(models)) >= set(models.__all__)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'embed'"):
        models.embed  # noqa: B018
    with pytest.raises(ImportError):
        exec("from course_lib.models import save_encoder", {})  # noqa: S102


def test_importing_the_package_loads_no_family():
    code = ("import sys, course_lib.models as m; "
            "print(sorted(k for k in sys.modules if k.startswith('course_lib.models.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"

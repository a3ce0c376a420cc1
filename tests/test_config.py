"""Unit tests for course_lib.config: mode / dataset resolution, seeding, CourseConfig."""

import numpy as np
import pytest

from course_lib import config
from course_lib.config import ConfigError, CourseConfig, resolve_dataset, resolve_mode, setup


# --- resolve_mode -----------------------------------------------------------------------------

def test_resolve_mode_default_is_quick():
    assert resolve_mode() == "quick"
    assert resolve_mode(None) == "quick"


def test_resolve_mode_argument_is_normalised():
    assert resolve_mode("full") == "full"
    assert resolve_mode("  FULL ") == "full"
    assert resolve_mode("Quick") == "quick"


def test_resolve_mode_reads_env(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "full")
    assert resolve_mode() == "full"
    # an explicit argument wins over the environment
    assert resolve_mode("quick") == "quick"


def test_resolve_mode_empty_env_falls_back_to_default(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "")
    assert resolve_mode() == "quick"


def test_resolve_mode_unknown_names_allowed_values(monkeypatch):
    with pytest.raises(ConfigError) as info:
        resolve_mode("fast")
    message = str(info.value)
    assert "'fast'" in message
    for mode in config.MODES:
        assert mode in message
    assert "COURSE_MODE" in message

    monkeypatch.setenv("COURSE_MODE", "turbo")
    with pytest.raises(ConfigError, match="turbo"):
        resolve_mode()


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- resolve_dataset --------------------------------------------------------------------------

def test_resolve_dataset_default_is_mnist5k():
    assert resolve_dataset() == "mnist5k"
    assert resolve_dataset("MNIST5K") == "mnist5k"


@pytest.mark.parametrize("spelling", ["fashion-mnist", "Fashion-MNIST", "fashion_mnist", " fashion_mnist "])
def test_resolve_dataset_fashion_spellings(spelling):
    assert resolve_dataset(spelling) == "fashion_mnist"


def test_resolve_dataset_reads_env(monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", "fashion-mnist")
    assert resolve_dataset() == "fashion_mnist"
    monkeypatch.setenv("COURSE_DATASET", "MNIST")
    assert resolve_dataset() == "mnist"
    assert resolve_dataset("digits") == "digits"


def test_resolve_dataset_unknown_names_allowed_values(monkeypatch):
    with pytest.raises(ConfigError) as info:
        resolve_dataset("cifar10")
    message = str(info.value)
    assert "'cifar10'" in message
    for name in ("digits", "mnist", "fashion_mnist"):
        assert name in message
    assert "COURSE_DATASET" in message

    monkeypatch.setenv("COURSE_DATASET", "svhn")
    with pytest.raises(ConfigError, match="svhn"):
        resolve_dataset()


# --- CourseConfig -----------------------------------------------------------------------------

def test_course_config_pick_and_quick():
    quick = CourseConfig("quick", "digits", 0)
    full = CourseConfig("full", "mnist", 1)
    assert quick.quick is True and full.quick is False
    assert quick.pick(3, 30) == 3
    assert full.pick(3, 30) == 30
    assert full.pick(quick=None, full=[1, 2]) == [1, 2]


def test_course_config_is_frozen():
    cfg = CourseConfig("quick", "digits", 0)
    with pytest.raises(Exception):
        cfg.mode = "full"


# --- setup ------------------------------------------------------------------------------------

def test_setup_returns_resolved_config(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODE", "full")
    monkeypatch.setenv("COURSE_DATASET", "fashion-mnist")
    cfg = setup(seed=7)
    import keras

    from course_lib.backends import list_devices

    assert cfg == CourseConfig("full", "fashion_mnist", 7, keras.backend.backend(), tuple(list_devices()[:1]))
    out = capsys.readouterr().out
    assert "mode=full" in out and "dataset=fashion_mnist" in out and "seed=7" in out
    assert f"on {keras.backend.backend()}" in out and "training on one device" in out


def test_setup_rejects_unknown_devices():
    with pytest.raises(ConfigError, match="devices"):
        setup("quick", "digits", 0, verbose=False, devices="most")


def test_setup_quiet(capsys):
    cfg = setup("quick", "digits", 0, verbose=False)
    assert cfg.mode == "quick" and cfg.dataset == "digits" and cfg.seed == 0
    assert capsys.readouterr().out == ""


def test_setup_seeds_reproducibly():
    import random

    import keras

    def draw():
        return (random.random(),
                np.random.rand(4),
                keras.ops.convert_to_numpy(keras.random.normal((4,))),
                keras.ops.convert_to_numpy(keras.random.uniform((3,), seed=keras.random.SeedGenerator())))

    setup("quick", "digits", 123, verbose=False)
    first = draw()
    setup("quick", "digits", 123, verbose=False)
    second = draw()
    setup("quick", "digits", 124, verbose=False)
    third = draw()

    assert first[0] == second[0]
    for a, b in zip(first[1:], second[1:]):
        np.testing.assert_array_equal(a, b)
    assert first[0] != third[0]
    assert not np.array_equal(first[1], third[1])
    assert not np.array_equal(first[2], third[2])


@pytest.mark.parametrize("seed", [-1, True, False, 1.5, "0", None])
def test_setup_rejects_bad_seeds(seed):
    with pytest.raises(ConfigError, match="seed"):
        setup("quick", "digits", seed, verbose=False)


def test_setup_rejects_bad_mode_before_seeding():
    with pytest.raises(ConfigError, match="mode"):
        setup("slow", "digits", 0, verbose=False)
    with pytest.raises(ConfigError, match="dataset"):
        setup("quick", "imagenet", 0, verbose=False)

"""Shared fixtures of the test suite, and the ``slow`` marker.

The tests mirror the package: ``tests/<folder>/test_<module>.py`` tests ``course_lib/<folder>/<module>.py``.
Test modules are imported with ``--import-mode=importlib`` (pyproject.toml), so equal basenames in different
folders never clash and no folder needs an ``__init__.py``; helpers are shared as fixtures from this file
(or a folder's own ``conftest.py``), never imported from another test module.

``pytest -m "not slow"`` is the inner loop. :func:`pytest_collection_modifyitems` marks as ``slow`` every
notebook item of nbval (the ``solutions/*.ipynb`` executed cell by cell) and every test named in
:data:`SLOW_TESTS` (each takes more than about 10 s alone on 2 CPU cores). ``pytest`` runs everything.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: Tests that take about 10 s or more alone on 2 idle CPU cores, their fixtures included (12 s or more of CPU
#: time; the three users of the trained self-supervised models share a 14 s fixture), the end-to-end runs of
#: ``course run`` (notebook kernels) and the two-device training (a JAX process of its own). Node ids without
#: parameters, relative to the project root;
#: tests/test_conftest.py checks that each one still exists.
SLOW_TESTS = frozenset({
    "tests/test_cli.py::test_cmd_run_end_to_end",
    "tests/models/test_bert.py::test_training_learns_a_predictable_language_and_beats_unigram",
    "tests/models/test_contrastive.py::test_a_few_epochs_reduce_every_loss",
    "tests/models/test_contrastive.py::test_save_load_round_trip",
    "tests/models/test_pretext.py::test_rotation_accuracy_rises",
    "tests/models/test_gan.py::test_same_seed_same_result",
    "tests/test_backends.py::test_two_simulated_devices_train_like_one",
    "tests/test_benchmarks.py::test_runs_each_backend_and_tabulates_days",
})

PYPROJECT = '[project]\nname = "learning-without-labels"\nversion = "0.0.0"\n'


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so that -m "not slow" sees the marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or item.nodeid.split("[", 1)[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


# --- environment ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def clean_course_env(monkeypatch):
    """Every test starts without the ``COURSE_*`` settings of the shell that runs pytest, and whatever a test (or
    the code it runs, e.g. ``course run``) sets is removed afterwards; the shell's values come back after."""
    for name in [name for name in os.environ if name.startswith("COURSE_")]:
        monkeypatch.delenv(name)
    yield
    for name in [name for name in os.environ if name.startswith("COURSE_")]:
        del os.environ[name]  # then monkeypatch puts back what the shell had


# --- data -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def digits_dataset():
    """The ``digits`` dataset of course_lib (1,347 train / 450 test 8x8 images; cached, read-only arrays)."""
    from course_lib.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digit_images():
    """``digit_images(n)``: the first ``n`` of scikit-learn's 8x8 digits, float32 ``(n, 8, 8, 1)`` in [0, 1]."""
    from sklearn.datasets import load_digits

    images = (load_digits().images / 16.0).astype("float32")[..., None]

    def make(n=256):
        return images[:n].copy()

    return make


def _blobs(n_per_class=40, n_classes=4, dim=6, spread=0.3, seed=0, scale=5.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * scale
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


@pytest.fixture(scope="session")
def blobs():
    """``blobs(n_per_class=40, n_classes=4, dim=6, spread=0.3, seed=0, scale=5.0) -> (x, y)``.

    Gaussian blobs around ``n_classes`` centres drawn from ``N(0, scale^2)``, shuffled: float32 ``x``
    ``(n_per_class * n_classes, dim)`` and int ``y``. The defaults give well separated classes.
    """
    return _blobs


@pytest.fixture(scope="session")
def blob_split():
    """``blob_split(n_train_per_class=30, n_test_per_class=10, seed=0, **blobs_kwargs)``: train / test blobs
    around the same centres, ``(x_train, y_train, x_test, y_test)``."""

    def split(n_train_per_class=30, n_test_per_class=10, seed=0, **kwargs):
        x, y = _blobs(n_per_class=n_train_per_class + n_test_per_class, seed=seed, **kwargs)
        n_train = n_train_per_class * len(np.unique(y))
        return x[:n_train], y[:n_train], x[n_train:], y[n_train:]

    return split


@pytest.fixture(scope="session")
def two_class_images():
    """``two_class_images(n=64, seed=0) -> (x, y)``: 8x8 images, class 0 a bright left half, class 1 a bright
    right half, plus Gaussian noise (sd 0.1), clipped to [0, 1]."""

    def make(n=64, seed=0):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n)
        x = np.zeros((n, 8, 8, 1), np.float32)
        x[y == 0, :, :4] = 1.0
        x[y == 1, :, 4:] = 1.0
        x = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1).astype(np.float32)
        return x, y

    return make


@pytest.fixture(scope="session")
def small_classifier():
    """``small_classifier()``: a new Keras MLP mapping 8x8x1 images to 2 class probabilities (softmax)."""
    import keras

    def build():
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(2, activation="softmax")])

    return build


@pytest.fixture(scope="session")
def small_encoder():
    """``small_encoder(shape=(8, 8, 1), **kwargs)``: a new conv encoder of width 8 with 16-d features."""
    from course_lib.models.encoders import build_encoder

    def build(shape=(8, 8, 1), **kwargs):
        return build_encoder(shape, width=8, embedding_dim=16, **kwargs)

    return build


@pytest.fixture(scope="session")
def token_batch():
    """``token_batch(seed=0)``: Day 09's synthetic token ids, int32 ``(600, 64)`` over a vocabulary of 500, with
    [CLS] / [SEP], padding and [UNK]s (``course_lib.checks.day09.synthetic_batch``)."""
    from course_lib.checks import day09

    def make(seed=0):
        return day09.synthetic_batch(seed, batch=600, length=64, vocabulary_size=500)

    return make


# --- notebooks and course checkouts -----------------------------------------------------------------

@pytest.fixture(scope="session")
def write_nb():
    """``write_nb(path, *sources)``: write a notebook of a ``# <stem>`` markdown cell then one code cell
    per source (parent folders created); returns ``path``."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    def write(path, *sources):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}")] + [new_code_cell(s) for s in sources])
        nbformat.write(nb, str(path))
        return path

    return write


@pytest.fixture
def project(tmp_path, monkeypatch, write_nb):
    """A throw-away course checkout (a pyproject.toml naming the project, ``solutions/day01_intro.ipynb`` and
    ``solutions/day03_pca.ipynb``); the current directory is its root."""
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    write_nb(root / "solutions" / "day01_intro.ipynb", "x = 1")
    write_nb(root / "solutions" / "day03_pca.ipynb", "y = 2")
    monkeypatch.chdir(root)
    return root

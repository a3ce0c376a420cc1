"""Unit tests for course_lib.models.pretext: rotation prediction."""

import numpy as np
import pytest

from course_lib.models import pretext


def test_rotation_accuracy_rises(trained):
    history = trained["rotation"][1]
    assert history["accuracy"][-1] > 0.5 > 0.25   # chance is 0.25


def test_rotations_match_numpy():
    x = np.random.default_rng(0).uniform(size=(3, 5, 5, 1)).astype("float32")
    rotated, labels = pretext.rotation_batch(x)
    rotated = np.asarray(rotated)
    assert rotated.shape == (12, 5, 5, 1) and np.asarray(labels).tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for k in range(4):
        np.testing.assert_array_equal(rotated[3 * k: 3 * k + 3], np.rot90(x, k, axes=(1, 2)))
    with pytest.raises(ValueError):
        pretext.rotate90(np.zeros((1, 4, 5, 1), "float32"), 1)

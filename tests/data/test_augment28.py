"""The 28x28 view generator: RandomAffine and build_augmenter28."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib.data.augment import AUGMENT28_DEFAULTS, RandomAffine, build_augmenter28


def _digit(n=4):
    x = np.zeros((n, 28, 28, 1), "float32")
    x[:, 6:22, 12:16] = 1.0
    return x


def test_random_affine_is_identity_at_inference_and_at_strength_zero():
    x = _digit()
    layer = RandomAffine(seed=0)
    assert np.array_equal(ops.convert_to_numpy(layer(x, training=False)), x)
    still = RandomAffine(0, 0, 0, 0, 0, 0, seed=0)
    assert np.allclose(ops.convert_to_numpy(still(x, training=True)), x, atol=1e-5)


def test_random_affine_moves_every_image_and_keeps_the_ink_roughly():
    x = _digit(8)
    y = ops.convert_to_numpy(RandomAffine(seed=1)(x, training=True))
    assert y.shape == x.shape
    assert np.all(np.abs(y - x).reshape(8, -1).max(axis=1) > 1e-3)
    ratio = y.reshape(8, -1).sum(1) / x.reshape(8, -1).sum(1)
    assert np.all((ratio > 0.5) & (ratio < 2.0))


def test_random_affine_rejects_bad_strengths():
    with pytest.raises(ValueError):
        RandomAffine(rotate=-1)
    with pytest.raises(ValueError):
        RandomAffine(zoom_out=1.0)


def test_build_augmenter28_views_are_independent_clipped_and_seeded():
    x = _digit(6)
    aug = build_augmenter28(seed=3)
    v1, v2 = (ops.convert_to_numpy(aug(x, training=True)) for _ in range(2))
    assert v1.min() >= 0 and v1.max() <= 1 and not np.allclose(v1, v2)
    assert np.array_equal(ops.convert_to_numpy(aug(x, training=False)), x)
    again = ops.convert_to_numpy(build_augmenter28(seed=3)(x, training=True))
    assert np.allclose(again, v1)
    names = [layer.__class__.__name__ for layer in build_augmenter28(rotate=0, zoom_in=0, zoom_out=0, aspect=0,
                                                                     shear=0, translate=0, noise=0).layers]
    assert "RandomAffine" not in names and "GaussianNoise" not in names
    assert set(AUGMENT28_DEFAULTS) >= {"rotate", "noise", "erase"}


def test_build_augmenter28_round_trip(tmp_path):
    aug = build_augmenter28(seed=0)
    model = keras.Sequential([keras.Input((28, 28, 1)), aug])
    model.save(tmp_path / "a.keras")
    loaded = keras.models.load_model(tmp_path / "a.keras")
    assert [l.__class__.__name__ for l in loaded.layers[0].layers] == [l.__class__.__name__ for l in aug.layers]

"""Tests of course_lib.data.augment: the view augmentations (shapes, ranges, independence of the two views,
reproducibility) and the denoising corruption add_noise."""

import keras
import numpy as np
import pytest

from course_lib.data import augment


def _images(shape=(8, 8, 1), n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, *shape), "float32")
    h, w = shape[:2]
    x[:, h // 4: 3 * h // 4, w // 4: 3 * w // 4, :] = rng.uniform(0.3, 1.0, size=(n, h - 2 * (h // 4), w - 2 * (w // 4), 1))
    return x


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_shapes_range_and_inference_identity(shape):
    x = _images(shape)
    aug = augment.build_augmenter(shape, seed=1)
    out = np.asarray(aug(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, x)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_two_views_are_independent_and_come_from_their_image(digits_dataset):
    x = digits_dataset.x_train[:64]
    v1, v2 = (np.asarray(v) for v in augment.two_views(augment.build_augmenter(seed=0), x))
    assert not np.allclose(v1, v2)
    assert np.mean(np.abs(v1 - v2).reshape(64, -1).max(1) > 1e-3) > 0.9   # nearly every image changed
    flat = x.reshape(64, -1)
    for view in (v1, v2):
        flat_view = view.reshape(64, -1)
        distances = np.sum((flat_view[:, None] - flat[None]) ** 2, axis=2)     # (view, image)
        own, others = np.diag(distances), distances[~np.eye(64, dtype=bool)].reshape(64, 63)
        assert np.mean(own < np.median(others, axis=1)) > 0.9   # a view resembles its own image


def test_same_seed_same_views_and_different_seed_different_views():
    x = _images()
    a = np.asarray(augment.build_augmenter(seed=3)(x, training=True))
    b = np.asarray(augment.build_augmenter(seed=3)(x, training=True))
    c = np.asarray(augment.build_augmenter(seed=4)(x, training=True))
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


def test_zero_strengths_give_identity_and_bad_strengths_raise():
    x = _images()
    aug = augment.build_augmenter(translate=0, rotate=0, zoom=0, noise=0, erase=0)
    np.testing.assert_array_equal(np.asarray(aug(x, training=True)), x)
    assert [type(layer).__name__ for layer in aug.layers] == ["ClipValues"]
    with pytest.raises(ValueError):
        augment.build_augmenter(noise=-0.1)
    with pytest.raises(ValueError):
        augment.build_augmenter(erase=1.5)


def test_translation_only_moves_pixels_by_at_most_one():
    x = np.zeros((200, 8, 8, 1), "float32")
    x[:, 3:5, 3:5] = 1.0
    aug = augment.build_augmenter(translate=0.125, rotate=0, zoom=0, noise=0, erase=0, seed=0)
    out = np.asarray(aug(x, training=True))[..., 0]
    rows, cols = np.nonzero(out.sum(axis=0) > 1e-6)
    assert rows.min() >= 2 and rows.max() <= 5 and cols.min() >= 2 and cols.max() <= 5
    assert np.allclose(out.sum(axis=(1, 2)), 4.0, atol=1e-4)         # a shift keeps all the ink


def test_patch_erasing():
    x = np.ones((50, 8, 8, 1), "float32")
    layer = augment.RandomPatchErasing(rate=1.0, size=0.25, seed=0)
    out = np.asarray(layer(x, training=True))
    assert np.all((out == 0).sum(axis=(1, 2, 3)) == 4)                 # one 2x2 patch per image
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    none = np.asarray(augment.RandomPatchErasing(rate=0.0)(x, training=True))
    np.testing.assert_array_equal(none, x)
    with pytest.raises(ValueError):
        augment.RandomPatchErasing(rate=2.0)


def test_augmenter_serializes(tmp_path):
    aug = augment.build_augmenter((8, 8, 1), seed=5)
    path = tmp_path / "aug.keras"
    aug.save(path)
    loaded = keras.models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in aug.layers]
    x = _images()
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), x)


# --- jax.jit for models holding an augmenter (allow_jit_on_jax) --------------------------------------

def _geometric(model):
    return [layer for layer in model.layers if isinstance(layer, augment.JAX_JIT_COMPATIBLE)]


def test_a_model_holding_the_augmenter_jit_compiles_on_jax():
    aug = augment.build_augmenter((8, 8, 1), seed=0)
    model = keras.Sequential([keras.Input((8, 8, 1)), aug, keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    assert len(_geometric(aug)) == 3
    if keras.backend.backend() == "jax":
        assert all(layer.supports_jit for layer in _geometric(aug))
        assert model.jit_compile is True  # the training step runs under jax.jit
    else:
        # left as Keras made them: TensorFlow's XLA cannot compile these layers (a tf.function graph is used), and
        # "auto" means eager on PyTorch
        assert not any(layer.supports_jit for layer in _geometric(aug))
        assert model.jit_compile is False


def test_allow_jit_on_jax_reaches_nested_pipelines():
    inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.RandomRotation(0.05, seed=1)])
    pipeline = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.RandomZoom(0.1, seed=2), inner])
    assert augment.allow_jit_on_jax(pipeline) is pipeline
    assert augment.allow_jit_on_jax(None) is None
    marked = [layer.supports_jit for layer in (pipeline.layers[0], inner.layers[0])]
    assert marked == [keras.backend.backend() == "jax"] * 2


# --- add_noise (the denoising corruption) -------------------------------------------------------

def test_add_noise_is_seeded_clipped_and_leaves_input():
    x = np.full((100, 8, 8, 1), 0.5, "float32")
    a = augment.add_noise(x, "gaussian", 0.1, seed=1)
    np.testing.assert_array_equal(a, augment.add_noise(x, "gaussian", 0.1, seed=1))
    assert not np.array_equal(a, augment.add_noise(x, "gaussian", 0.1, seed=2))
    assert abs((a - x).std() - 0.1) < 0.005 and a.dtype == np.float32
    assert (x == 0.5).all()
    heavy = augment.add_noise(x, "gaussian", 3.0, seed=0)
    assert heavy.min() == 0.0 and heavy.max() == 1.0
    masked = augment.add_noise(x, "masking", 0.25, seed=0)
    assert abs(np.mean(masked == 0) - 0.25) < 0.01
    with pytest.raises(ValueError):
        augment.add_noise(x, "masking", 1.0)


def test_gaussian_noise_is_backend_random_clipped_and_seeded():
    x = keras.ops.full((200, 8, 8, 1), 0.5)
    generator = keras.random.SeedGenerator(0)
    first = keras.ops.convert_to_numpy(augment.gaussian_noise(x, 0.1, generator))
    second = keras.ops.convert_to_numpy(augment.gaussian_noise(x, 0.1, generator))
    assert first.shape == (200, 8, 8, 1) and first.dtype == np.float32
    assert abs((first - 0.5).std() - 0.1) < 0.005 and abs((first - 0.5).mean()) < 0.005
    assert not np.allclose(first, second)  # a SeedGenerator advances: new noise at every call
    again = keras.ops.convert_to_numpy(augment.gaussian_noise(x, 0.1, keras.random.SeedGenerator(0)))
    np.testing.assert_array_equal(first, again)
    fixed = [keras.ops.convert_to_numpy(augment.gaussian_noise(x, 0.1, 7)) for _ in range(2)]
    np.testing.assert_array_equal(*fixed)  # an int seed: the same draw every time
    heavy = keras.ops.convert_to_numpy(augment.gaussian_noise(np.full((50, 4), 0.5), 3.0, 1))
    assert heavy.dtype == np.float32 and heavy.min() == 0.0 and heavy.max() == 1.0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment.gaussian_noise(x, 0.0, 2)), 0.5)
    with pytest.raises(ValueError, match="std"):
        augment.gaussian_noise(x, -0.1)

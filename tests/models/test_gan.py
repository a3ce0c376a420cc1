"""Unit tests for course_lib.models.gan: builders, the alternating steps, DCGAN, SampleGrid, saving."""

import keras
import numpy as np
import pytest

from course_lib.models import gan as G


def small_gan(image_shape=(8, 8, 1), seed=0, latent_dim=8):
    keras.utils.set_random_seed(seed)
    model = G.DCGAN(G.build_generator(latent_dim, image_shape, filters=8),
                    G.build_discriminator(image_shape, filters=8), seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    return model


def blob_images(n=64, image_shape=(8, 8, 1), seed=0):
    """Images in [-1, 1] with a bright square at one of two places (a simple two-mode "dataset")."""
    rng = np.random.default_rng(seed)
    images = -np.ones((n, *image_shape), dtype=np.float32)
    h, w = image_shape[:2]
    for i in range(n):
        top = 0 if i % 2 else h // 2
        images[i, top:top + h // 2, : w // 2] = 1.0
    return np.clip(images + 0.05 * rng.normal(size=images.shape), -1, 1).astype(np.float32)


def weights_of(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


# --- builders ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_shape", [(8, 8, 1), (28, 28, 1)])
def test_generator_and_discriminator_shapes(image_shape):
    keras.utils.set_random_seed(0)
    generator = G.build_generator(16, image_shape, filters=8)
    discriminator = G.build_discriminator(image_shape, filters=8)
    z = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    images = keras.ops.convert_to_numpy(generator(z))
    assert images.shape == (5, *image_shape)
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = keras.ops.convert_to_numpy(discriminator(images))
    assert logits.shape == (5, 1)
    gan = G.DCGAN(generator, discriminator)
    assert gan.latent_dim == 16
    assert keras.ops.convert_to_numpy(gan(z)).shape == (5, *image_shape)


def test_builders_reject_bad_shapes():
    with pytest.raises(ValueError, match="divisible by 4"):
        G.build_generator(8, (10, 10, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        G.build_discriminator((28, 28))


def test_pixel_range_helpers_are_inverse():
    x = np.linspace(0, 1, 11, dtype=np.float32).reshape(1, 11, 1, 1)
    t = G.to_tanh_range(x)
    assert t.min() == -1.0 and t.max() == 1.0
    assert np.allclose(G.to_unit_range(t), x)


# --- the alternating steps and training -------------------------------------------------------------

def test_discriminator_step_updates_only_the_discriminator_and_reduces_its_loss():
    gan = small_gan()
    real = blob_images(32)
    z = np.random.default_rng(1).normal(size=(32, gan.latent_dim)).astype(np.float32)
    g_before = [keras.ops.convert_to_numpy(w) for w in gan.generator.trainable_weights]
    first = float(G.discriminator_step(gan.generator, gan.discriminator, gan.d_optimizer, real, z)[0])
    for _ in range(15):
        last = float(G.discriminator_step(gan.generator, gan.discriminator, gan.d_optimizer, real, z)[0])
    assert last < first - 0.1, (first, last)
    for before, after in zip(g_before, gan.generator.trainable_weights):
        assert np.array_equal(before, keras.ops.convert_to_numpy(after))


def test_generator_step_updates_only_the_generator_and_reduces_its_loss():
    gan = small_gan()
    z = np.random.default_rng(2).normal(size=(32, gan.latent_dim)).astype(np.float32)
    d_before = weights_of(gan.discriminator)
    g_before = [keras.ops.convert_to_numpy(w) for w in gan.generator.trainable_weights]
    first = float(G.generator_step(gan.generator, gan.discriminator, gan.g_optimizer, z))
    for _ in range(15):
        last = float(G.generator_step(gan.generator, gan.discriminator, gan.g_optimizer, z))
    assert last < first - 0.05, (first, last)
    for before, after in zip(d_before, gan.discriminator.weights):  # every discriminator weight untouched
        assert np.array_equal(before, keras.ops.convert_to_numpy(after))
    g_after = [keras.ops.convert_to_numpy(w) for w in gan.generator.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(g_before, g_after))


def test_fit_tracks_losses_and_moves_samples_towards_the_data():
    gan = small_gan()
    gan.d_optimizer.learning_rate = 5e-3
    gan.g_optimizer.learning_rate = 5e-3
    history = gan.fit(blob_images(128), epochs=20, batch_size=32, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    samples = G.generate_images(gan, 64, seed=3)
    untrained = G.generate_images(small_gan(), 64, seed=3)
    # every training image has a dark right half (0 in [0, 1]); an untrained generator gives about 0.5 there
    assert samples[:, :, 4:].mean() < 0.75 * untrained[:, :, 4:].mean()
    assert samples[:, :, :4].mean() > samples[:, :, 4:].mean() + 0.1  # the bright squares are on the left


def test_same_seed_same_result():
    outputs = []
    for _ in range(2):
        gan = small_gan(seed=4)
        gan.fit(blob_images(64), epochs=2, batch_size=16, verbose=0)
        outputs.append(G.generate_images(gan, 8, seed=0))
    assert np.allclose(outputs[0], outputs[1], atol=1e-6)
    other = small_gan(seed=5)
    other.fit(blob_images(64), epochs=2, batch_size=16, verbose=0)
    assert not np.allclose(outputs[0], G.generate_images(other, 8, seed=0), atol=1e-3)


def test_generate_images_is_seeded_and_in_unit_range():
    gan = small_gan()
    a, b, c = (G.generate_images(gan, 10, seed=s) for s in (1, 1, 2))
    assert a.shape == (10, 8, 8, 1) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_grid_keeps_one_grid_per_epoch():
    gan = small_gan()
    grid = G.SampleGrid(n_images=6, every=2, seed=0)
    gan.fit(blob_images(32), epochs=5, batch_size=16, verbose=0, callbacks=[grid])
    assert sorted(grid.grids) == [0, 2, 4, 5]
    assert all(g.shape == (6, 8, 8, 1) and g.min() >= 0 and g.max() <= 1 for g in grid.grids.values())
    assert np.allclose(grid.grids[5], G.to_unit_range(gan.generator(grid._noise, training=False)))
    assert not np.allclose(grid.grids[0], grid.grids[5])
    assert grid.scores == {}


def test_sample_grid_scores_with_the_given_function():
    gan = small_gan()
    seen = []

    def score_fn(images):
        seen.append(images.shape)
        assert images.min() >= 0 and images.max() <= 1
        return {"mean": float(images.mean())}

    grid = G.SampleGrid(n_images=4, every=3, score_fn=score_fn, n_score=50)
    gan.fit(blob_images(32), epochs=3, batch_size=16, verbose=0, callbacks=[grid])
    assert sorted(grid.scores) == [0, 3] and seen == [(50, 8, 8, 1)] * 2
    assert grid.scores[3]["mean"] == pytest.approx(float(G.generate_images(gan, 50, seed=1).mean()))
    with pytest.raises(ValueError):
        G.SampleGrid(every=0)


# --- saving -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_shape", [(8, 8, 1), (28, 28, 1)])
def test_keras_round_trip_gives_identical_outputs(tmp_path, image_shape):
    gan = small_gan(image_shape)
    gan.fit(blob_images(32, image_shape), epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, G.DCGAN)
    z = np.random.default_rng(0).normal(size=(4, gan.latent_dim)).astype(np.float32)
    images = blob_images(4, image_shape)
    assert np.array_equal(keras.ops.convert_to_numpy(gan(z)), keras.ops.convert_to_numpy(loaded(z)))
    assert np.array_equal(keras.ops.convert_to_numpy(gan.discriminator(images)), keras.ops.convert_to_numpy(loaded.discriminator(images)))
    assert np.array_equal(keras.ops.convert_to_numpy(gan.sample_noise(3)), keras.ops.convert_to_numpy(loaded.sample_noise(3)))  # noise state too
    assert loaded.get_config()["seed"] == gan.seed and loaded.latent_dim == gan.latent_dim
    history = loaded.fit(blob_images(16, image_shape), epochs=1, batch_size=16, verbose=0)  # compiled on load
    assert np.isfinite(history.history["g_loss"][0])

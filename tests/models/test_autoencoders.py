"""Unit tests for course_lib.models.autoencoders: dense, convolutional, linear and denoising autoencoders."""

import keras
import numpy as np
import pytest

from course_lib.evaluation import reconstruction
from course_lib.models import autoencoders as ae


SHAPES = [(8, 8, 1), (28, 28, 1)]


def images(shape, n=16, seed=0):
    return np.random.default_rng(seed).random((n, *shape)).astype("float32")


def fit(model, x, epochs, seed=0, lr=3e-3):
    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(lr), "mse", jit_compile=False)
    return model.fit(x, x, epochs=epochs, batch_size=32, verbose=0, shuffle=True).history["loss"]


# --- shapes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("builder", [ae.build_dense_autoencoder, ae.build_conv_autoencoder,
                                     ae.build_linear_autoencoder, ae.build_denoising_autoencoder])
def test_output_shapes_and_submodels(builder, shape):
    model = builder(shape, 5)
    x = images(shape, n=3)
    assert tuple(model(x).shape) == (3, *shape)
    assert model.encode(x).shape == (3, 5)
    assert model.decode(np.zeros((2, 5), "float32")).shape == (2, *shape)
    assert model.reconstruct(x).shape == x.shape
    assert model.latent_dim == 5
    # one connected model: its weights are exactly the encoder's plus the decoder's
    assert len(model.trainable_weights) == len(model.encoder.trainable_weights) + len(model.decoder.trainable_weights)


def test_sigmoid_outputs_in_unit_interval_and_linear_outputs_unbounded():
    x = images((8, 8, 1), n=8) * 50
    out = keras.ops.convert_to_numpy(ae.build_dense_autoencoder((8, 8, 1), 3)(x))
    assert out.min() >= 0 and out.max() <= 1
    linear = keras.ops.convert_to_numpy(ae.build_linear_autoencoder((8, 8, 1), 3)(x))
    assert linear.min() < 0 or linear.max() > 1


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim"):
        ae.build_dense_autoencoder((8, 8, 1), 0)
    with pytest.raises(ValueError, match="input_shape"):
        ae.build_dense_autoencoder((64,), 4)
    with pytest.raises(ValueError, match="divisible"):
        ae.build_conv_autoencoder((10, 10, 1), 4)
    with pytest.raises(ValueError, match="noise"):
        ae.build_denoising_autoencoder((8, 8, 1), 4, noise="salt")
    with pytest.raises(ValueError, match="noise_level"):
        ae.build_denoising_autoencoder((8, 8, 1), 4, noise="masking", noise_level=1.0)
    with pytest.raises(ValueError, match="architecture"):
        ae.build_denoising_autoencoder((8, 8, 1), 4, architecture="rnn")
    with pytest.raises(ValueError, match="codes of size"):
        ae.Autoencoder(ae.build_dense_encoder((8, 8, 1), 3), ae.build_dense_decoder(4, (8, 8, 1)))


# --- training -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("builder", [ae.build_dense_autoencoder, ae.build_conv_autoencoder])
def test_a_few_epochs_reduce_the_loss(builder, digit_images):
    keras.utils.set_random_seed(0)
    history = fit(builder((8, 8, 1), 8), digit_images(), epochs=8)
    assert history[-1] < 0.6 * history[0]


def test_same_seed_same_result(digit_images):
    x = digit_images(128)
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = ae.build_denoising_autoencoder((8, 8, 1), 4, seed=3)
        fit(model, x, epochs=2, seed=3)
        outputs.append(model.reconstruct(x))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_linear_autoencoder_reaches_the_pca_error(digit_images):
    from sklearn.decomposition import PCA

    x = digit_images(512)
    flat = x.reshape(len(x), -1)
    pca = PCA(4).fit(flat)
    pca_mse = np.mean((flat - pca.inverse_transform(pca.transform(flat))) ** 2)
    keras.utils.set_random_seed(0)
    model = ae.build_linear_autoencoder((8, 8, 1), 4)
    fit(model, x, epochs=60, lr=1e-2)
    ae_mse = reconstruction.reconstruction_error(x, model.reconstruct(x)).mean()
    assert pca_mse <= ae_mse + 1e-4  # PCA is the optimum among rank-4 linear maps ...
    assert ae_mse < 1.1 * pca_mse    # ... and the linear autoencoder gets close to it


def test_denoising_noise_only_in_training(digit_images):
    model = ae.build_denoising_autoencoder((8, 8, 1), 4, noise_level=0.5, seed=0)
    x = digit_images(16)
    clean_1, clean_2 = model(x, training=False), model(x, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clean_1), keras.ops.convert_to_numpy(clean_2))
    noisy = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(noisy, keras.ops.convert_to_numpy(clean_1))


@pytest.mark.parametrize("noise,level", [("gaussian", 0.1), ("masking", 0.4)])
def test_corrupt_statistics(noise, level):
    model = ae.build_denoising_autoencoder((8, 8, 1), 4, noise=noise, noise_level=level, seed=1)
    x = np.full((500, 8, 8, 1), 0.5, "float32")
    corrupted = keras.ops.convert_to_numpy(model.corrupt(x))
    assert corrupted.min() >= 0 and corrupted.max() <= 1
    if noise == "gaussian":
        assert abs((corrupted - x).std() - level) < 0.01
    else:
        assert abs(np.mean(corrupted == 0) - level) < 0.01
        assert np.all((corrupted == 0) | (corrupted == 0.5))


# --- saving -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("builder", [ae.build_dense_autoencoder, ae.build_conv_autoencoder,
                                     ae.build_denoising_autoencoder])
def test_keras_save_load_round_trip(builder, tmp_path, digit_images):
    model = builder((8, 8, 1), 4)
    x = digit_images(32)
    fit(model, x, epochs=1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.reconstruct(x), model.reconstruct(x))
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    if isinstance(model, ae.DenoisingAutoencoder):
        assert (loaded.noise, loaded.noise_level) == (model.noise, model.noise_level)


# --- the denoiser with a noise function of one's own ---------------------------------------------------------

def test_denoiser_uses_the_noise_fn_only_in_training_and_saves_without_it(tmp_path, digit_images):
    from course_lib.data import augment

    calls = []

    def halve(x, level, seed):  # a deterministic "noise" that is easy to recognise
        calls.append(level)
        return x * 0.5

    model = ae.build_denoising_autoencoder((8, 8, 1), 4, noise_level=0.2, seed=0)
    custom = ae.DenoisingAutoencoder(model.encoder, model.decoder, noise_level=0.2, seed=0, noise_fn=halve)
    x = digit_images(8)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(custom.corrupt(x)), x * 0.5)
    assert calls == [0.2]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(custom(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)))  # inference never corrupts
    # the library's gaussian_noise as noise_fn trains inside fit (a compiled step) and draws new noise each call
    gaussian = ae.DenoisingAutoencoder(model.encoder, model.decoder, noise_level=0.3, seed=1,
                                       noise_fn=augment.gaussian_noise)
    first, second = (keras.ops.convert_to_numpy(gaussian.corrupt(x)) for _ in range(2))
    assert not np.allclose(first, second) and first.min() >= 0 and first.max() <= 1
    history = fit(gaussian, digit_images(64), epochs=2)
    assert np.all(np.isfinite(history))
    path = tmp_path / "denoiser.keras"
    gaussian.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.noise_fn is None and loaded.noise == "gaussian" and loaded.noise_level == 0.3
    np.testing.assert_array_equal(loaded.reconstruct(x), gaussian.reconstruct(x))
    with pytest.raises(ValueError, match="noise_fn"):
        ae.DenoisingAutoencoder(model.encoder, model.decoder, noise_fn="gaussian")


# --- fit_autoencoder, pca_test_error, code_size_study ---------------------------------------------------------

def test_fit_autoencoder_trains_with_bce_and_a_cosine_decay(digit_images):
    x = digit_images(256)
    keras.utils.set_random_seed(0)
    model = ae.build_dense_autoencoder((8, 8, 1), 4, hidden=(32,))
    # at this learning rate the last epoch's loss is 0.62-0.63 of the first on all three backends (seeds 0 and 1)
    history = ae.fit_autoencoder(model, x, epochs=6, batch_size=64, learning_rate=1e-2)
    losses = history.history["loss"]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0]  # BCE has an entropy floor
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6 * 4
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) < 1e-6  # decayed to 0 at the end
    out = np.clip(model.reconstruct(x).astype(np.float64), 1e-7, 1 - 1e-7)
    bce = np.mean(-(x * np.log(out) + (1 - x) * np.log(1 - out)))
    assert abs(losses[-1] - bce) < 0.1 * bce  # the training loss is the per-pixel binary cross-entropy
    linear = ae.build_linear_autoencoder((8, 8, 1), 4)
    assert len(ae.fit_autoencoder(linear, x, epochs=1, loss="mse").history["loss"]) == 1
    with pytest.raises(ValueError):
        ae.fit_autoencoder(model, x, epochs=0)


def test_pca_test_error_matches_a_numpy_projection(digit_images):
    x = digit_images(300).astype(np.float64)
    train, test = x[:200].reshape(200, -1), x[200:].reshape(100, -1)
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:5].T
    projected = (test - mean) @ basis @ basis.T + mean
    want = np.mean((projected - test) ** 2)
    assert ae.pca_test_error(x[:200], x[200:], 5) == pytest.approx(want, rel=1e-6)
    assert ae.pca_test_error(x[:200], x[200:], 20) < ae.pca_test_error(x[:200], x[200:], 5)


def test_code_size_study_trains_one_model_per_size(digit_images):
    x = digit_images(320)

    def build(shape, k, hidden):
        return ae.build_dense_encoder(shape, k, hidden), ae.build_dense_decoder(k, shape, hidden)

    trained = []

    def train(model, data, epochs):
        trained.append((model.latent_dim, epochs))
        return ae.fit_autoencoder(model, data, epochs, batch_size=64)

    results = ae.code_size_study(build, train, x[:256], x[256:], sizes=(2, 6), epochs=3, hidden=(16,))
    assert list(results) == [2, 6] and trained == [(2, 3), (6, 3)]
    for k, row in results.items():
        assert row["pca_mse"] == pytest.approx(ae.pca_test_error(x[:256], x[256:], k))
        assert row["ratio"] == pytest.approx(row["ae_mse"] / row["pca_mse"])
        assert 0 < row["ae_mse"] < 1

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

"""Unit tests for course_lib.models.vae: the sampling layer and the VAE model."""

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import losses
from course_lib.autodiff import value_and_grad
from course_lib.models import vae as V


@pytest.fixture(scope="module")
def binary_digits(digit_images):
    """``binary_digits(n=256)``: the first ``n`` 8x8 digits thresholded at 0.5, float32 ``(n, 8, 8, 1)`` of 0 / 1."""

    def make(n=256):
        return (digit_images(n) > 0.5).astype("float32")

    return make


def numpy(t):
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


def trained_vae(x, epochs=3, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    vae = V.build_vae(x.shape[1:], seed=seed, **kwargs)
    vae.compile(keras.optimizers.Adam(3e-3), jit_compile=False)
    history = vae.fit(x, epochs=epochs, batch_size=32, verbose=0)
    return vae, history.history


# --- sampling layer -----------------------------------------------------------------------------------

def test_sampling_moments_and_reparameterisation():
    n = 20000
    mean = np.tile(np.array([[1.0, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[0.25, 4.0]], "float32")), (n, 1))
    z = numpy(V.Sampling(seed=0)([mean, log_var]))
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.05)
    shifted = numpy(V.Sampling(seed=0)([mean + 3.0, log_var]))
    np.testing.assert_allclose(shifted - 3.0, z, atol=1e-5)  # z = mean + sigma * eps, eps independent of mean


def test_sampling_seeded_and_advancing():
    mean, log_var = np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32")
    layer = V.Sampling(seed=5)
    first, second = numpy(layer([mean, log_var])), numpy(layer([mean, log_var]))
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, numpy(V.Sampling(seed=5)([mean, log_var])))
    assert V.Sampling.from_config(layer.get_config()).seed == 5


def test_sampling_gradient_flows_to_mean_and_log_var():
    layer = V.Sampling(seed=0)

    def total(params):  # params = [mean, log_var]; returns (sum of z, z)
        z = layer(params)
        return ops.sum(z), z

    zeros = np.zeros((2, 3), "float32")
    (_, z), (d_mean, d_log_var) = value_and_grad(total)([zeros, zeros])
    np.testing.assert_allclose(numpy(d_mean), 1.0)
    eps = numpy(z)  # mean 0, sigma 1: z == eps, and dz/dlog_var = 0.5 * sigma * eps
    np.testing.assert_allclose(numpy(d_log_var), 0.5 * eps, rtol=1e-5)


# --- the model ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_vae_output_shapes(shape):
    vae = V.build_vae(shape, latent_dim=3, hidden=(32,), seed=0)
    x = np.random.default_rng(0).random((5, *shape)).astype("float32")
    out = vae(x)
    assert tuple(out["logits"].shape) == (5, *shape)
    assert all(tuple(out[k].shape) == (5, 3) for k in ("z_mean", "z_log_var", "z"))
    z_mean, z_log_var = vae.encode(x)
    assert z_mean.shape == z_log_var.shape == (5, 3)
    assert vae.decode(z_mean).shape == (5, *shape)
    recon = vae.reconstruct(x)
    assert recon.shape == x.shape and recon.min() > 0 and recon.max() < 1
    assert vae.sample(7, seed=1).shape == (7, *shape)
    terms = vae.elbo_terms(x)
    assert set(terms) == {"reconstruction", "kl", "negative_elbo"}
    assert all(v.shape == (5,) for v in terms.values())


def test_training_reduces_loss_and_reports_three_trackers(binary_digits):
    x = binary_digits()
    vae, history = trained_vae(x, epochs=8, latent_dim=2)
    assert {"loss", "reconstruction_loss", "kl_loss"} <= set(history)
    assert history["loss"][-1] < 0.75 * history["loss"][0]
    # total = recon + beta * KL, per-example means over the epoch
    np.testing.assert_allclose(history["loss"][-1], history["reconstruction_loss"][-1] + history["kl_loss"][-1],
                               rtol=1e-4)
    assert [m.name for m in vae.metrics] == ["loss", "reconstruction_loss", "kl_loss"]
    result = vae.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["reconstruction_loss"] + result["kl_loss"], rel=1e-4)


def test_beta_weights_the_kl_term(binary_digits):
    x = binary_digits(64)
    keras.utils.set_random_seed(0)
    vae = V.build_vae(x.shape[1:], latent_dim=2, beta=3.0, seed=0)
    out = vae(x)
    loss = float(numpy(vae.compute_loss(x=x, y_pred=out)))
    recon = numpy(losses.bernoulli_nll(x, out["logits"])).mean()
    kl = numpy(losses.gaussian_kl(out["z_mean"], out["z_log_var"])).mean()
    assert loss == pytest.approx(recon + 3.0 * kl, rel=1e-5)
    with pytest.raises(ValueError, match="beta"):
        V.build_vae(x.shape[1:], beta=-1.0)
    with pytest.raises(ValueError, match="codes of size"):
        V.VAE(V.build_vae_encoder((8, 8, 1), 3), V.build_vae_decoder(4, (8, 8, 1)))


def test_same_seed_same_result(binary_digits):
    x = binary_digits(128)
    runs = [trained_vae(x, epochs=2, seed=4, latent_dim=2) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0].reconstruct(x), runs[1][0].reconstruct(x))
    assert runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][0].sample(5, seed=2), runs[1][0].sample(5, seed=2))


def test_keras_save_load_round_trip(tmp_path, binary_digits):
    x = binary_digits(64)
    vae, _ = trained_vae(x, epochs=1, latent_dim=2, beta=0.5)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, V.VAE) and loaded.beta == 0.5 and loaded.latent_dim == 2
    np.testing.assert_array_equal(loaded.reconstruct(x), vae.reconstruct(x))
    for a, b in zip(loaded.encode(x), vae.encode(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.sample(4, seed=3), vae.sample(4, seed=3))


def test_latent_grid_and_tile():
    grid = V.latent_grid(5)
    assert grid.shape == (25, 2)
    assert grid[0, 1] > 0 and grid[-1, 1] < 0 and grid[0, 0] < grid[4, 0]  # top row high, x increasing
    np.testing.assert_allclose(grid[:, 0].reshape(5, 5).mean(1), 0.0, atol=1e-6)
    tiles = V.tile(np.arange(6 * 2 * 3).reshape(6, 2, 3), n_cols=3)
    assert tiles.shape == (4, 9)
    np.testing.assert_array_equal(tiles[:2, 3:6], np.arange(6, 12).reshape(2, 3))
    with pytest.raises(ValueError):
        V.tile(np.zeros((5, 2, 2)), n_cols=3)

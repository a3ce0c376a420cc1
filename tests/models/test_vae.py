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


# --- the KL weight and its warm-up ------------------------------------------------------------------------

def test_kl_weight_is_a_variable_that_weights_the_kl_term_and_is_saved(tmp_path, binary_digits):
    x = binary_digits(64)
    keras.utils.set_random_seed(0)
    vae = V.build_vae(x.shape[1:], latent_dim=2, beta=2.0, seed=0, kl_weight=0.5)
    assert float(numpy(vae.kl_weight)) == 0.5 and vae.beta == 2.0
    assert any(v is vae.kl_weight for v in vae.non_trainable_variables)
    out = vae(x)
    recon = numpy(losses.bernoulli_nll(x, out["logits"])).mean()
    kl = numpy(losses.gaussian_kl(out["z_mean"], out["z_log_var"])).mean()
    assert float(numpy(vae.compute_loss(x=x, y_pred=out))) == pytest.approx(recon + 0.5 * kl, rel=1e-5)
    vae.kl_weight.assign(2.0)
    assert float(numpy(vae.compute_loss(x=x, y_pred=out))) == pytest.approx(recon + 2.0 * kl, rel=1e-5)
    vae.kl_weight.assign(0.75)
    assert V.VAE.from_config(vae.get_config()).kl_weight.numpy() == pytest.approx(0.75)
    vae.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path)
    assert float(numpy(loaded.kl_weight)) == pytest.approx(0.75) and loaded.beta == 2.0
    with pytest.raises(ValueError, match="kl_weight"):
        V.build_vae(x.shape[1:], kl_weight=-1.0)


def test_kl_warmup_ramps_the_weight_inside_fit(binary_digits):
    x = binary_digits(64)
    keras.utils.set_random_seed(0)
    vae = V.build_vae(x.shape[1:], latent_dim=2, beta=3.0, seed=0, kl_weight=0.0)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((float(numpy(self.model.kl_weight)), logs["loss"], logs["reconstruction_loss"],
                         logs["kl_loss"]))

    warmup = V.KLWarmup(4)
    assert [warmup.weight(e, 3.0) for e in range(6)] == pytest.approx([0.75, 1.5, 2.25, 3.0, 3.0, 3.0])
    vae.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    vae.fit(x, epochs=6, batch_size=32, verbose=0, callbacks=[warmup, Record()])
    assert [w for w, *_ in seen] == pytest.approx([0.75, 1.5, 2.25, 3.0, 3.0, 3.0])
    for weight, loss, recon, kl in seen:  # the reported loss is the objective with the epoch's weight
        assert loss == pytest.approx(recon + weight * kl, rel=1e-4)
    with pytest.raises(ValueError):
        V.KLWarmup(0)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    plain.compile("adam", "mse")
    with pytest.raises(TypeError, match="kl_weight"):
        plain.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0, callbacks=[V.KLWarmup(2)])


def test_vae_trains_with_loss_terms_and_sampling_layer_of_ones_own(binary_digits):
    x = binary_digits(64)
    calls = {"recon": 0, "kl": 0}

    def recon(x_true, logits):
        calls["recon"] += 1
        return losses.bernoulli_nll(x_true, logits)

    def double_kl(z_mean, z_log_var):
        calls["kl"] += 1
        return 2.0 * losses.gaussian_kl(z_mean, z_log_var)

    class Deterministic(keras.layers.Layer):  # z = z_mean: an autoencoder in disguise
        def call(self, inputs):
            return inputs[0]

    keras.utils.set_random_seed(0)
    vae = V.build_vae(x.shape[1:], latent_dim=2, seed=0, sampling=Deterministic(), reconstruction_loss=recon,
                      kl_loss=double_kl)
    out = vae(x)
    np.testing.assert_array_equal(numpy(out["z"]), numpy(out["z_mean"]))
    kl = numpy(losses.gaussian_kl(out["z_mean"], out["z_log_var"]))
    terms = vae.elbo_terms(x)
    np.testing.assert_allclose(terms["kl"], 2.0 * kl, rtol=1e-5)
    vae.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    vae.fit(x, epochs=1, batch_size=32, verbose=0)
    assert calls["recon"] >= 2 and calls["kl"] >= 2


# --- Monte Carlo and the aggregate posterior -----------------------------------------------------------------

def test_kl_monte_carlo_is_unbiased_with_the_stated_variance():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(200, 3)).astype("float32")
    log_var = rng.normal(scale=0.5, size=(200, 3)).astype("float32")
    exact = numpy(losses.gaussian_kl(mean, log_var))
    n = 500
    estimate = V.kl_monte_carlo(mean, log_var, n, seed=1)
    var = np.exp(log_var.astype(np.float64))
    spread = np.sqrt(np.sum(mean ** 2 * var + 0.5 * (var - 1) ** 2, axis=1) / n)
    z_scores = (estimate - exact) / spread
    assert estimate.shape == (200,) and abs(z_scores.mean()) < 0.25 and 0.7 < np.mean(z_scores ** 2) < 1.4
    np.testing.assert_array_equal(estimate, V.kl_monte_carlo(mean, log_var, n, seed=1))
    errors = V.monte_carlo_kl_errors(mean, log_var, (1, 100))
    assert errors[100] < errors[1] / 5  # 1 / sqrt(n): a factor 10 expected
    with pytest.raises(ValueError):
        V.kl_monte_carlo(mean, log_var, 0)


def test_aggregate_posterior_density_matches_scipy():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    mean, log_var = rng.normal(size=(5, 2)), rng.normal(scale=0.3, size=(5, 2))
    z = rng.normal(size=(7, 2))
    want = np.log(np.mean([[multivariate_normal(m, np.diag(np.exp(lv))).pdf(p) for m, lv in zip(mean, log_var)]
                           for p in z], axis=1))
    np.testing.assert_allclose(V.aggregate_posterior_log_density(z, mean, log_var, batch_size=3), want, rtol=1e-10)
    np.testing.assert_allclose(V.standard_normal_log_density(z), multivariate_normal(np.zeros(2)).logpdf(z))


def test_elbo_surgery_limits():
    n, k = 400, 2
    prior_like = V.elbo_surgery(np.zeros((n, k)), np.zeros((n, k)), n_samples=4)
    assert prior_like["average_kl"] == pytest.approx(0.0, abs=1e-6)
    assert abs(prior_like["mutual_information"]) < 1e-6 and abs(prior_like["marginal_kl"]) < 1e-6
    spread = V.elbo_surgery(np.random.default_rng(0).normal(scale=3.0, size=(n, k)), np.full((n, k), -12.0),
                            n_samples=2)
    assert spread["mutual_information"] == pytest.approx(np.log(n), abs=0.01)  # tiny, separated posteriors
    total = spread["mutual_information"] + spread["marginal_kl"]
    assert total == pytest.approx(spread["average_kl"], rel=0.05)
    assert spread["marginal_kl"] > 0

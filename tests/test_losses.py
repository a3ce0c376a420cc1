"""Tests of course_lib.losses against plain NumPy references on random inputs and closed forms."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from course_lib import losses
from course_lib.autodiff import value_and_grad


def _normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def nt_xent_reference(z1, z2, temperature):
    """NT-Xent written with loops: every view k of the 2N, partner positive, all other views negatives."""
    u = _normalize(np.concatenate([z1, z2]).astype(np.float64))
    n2 = len(u)
    n = n2 // 2
    total = 0.0
    for k in range(n2):
        partner = (k + n) % n2
        sims = np.array([u[k] @ u[j] / temperature for j in range(n2)])
        others = [j for j in range(n2) if j != k]
        log_denominator = np.log(np.sum(np.exp(sims[others])))
        total += -(sims[partner] - log_denominator)
    return total / n2


def info_nce_reference(q, k, negatives, temperature):
    q, k, negatives = _normalize(q), _normalize(k), _normalize(negatives)
    total = 0.0
    for i in range(len(q)):
        logits = np.concatenate([[q[i] @ k[i]], negatives @ q[i]]) / temperature
        total += -(logits[0] - np.log(np.sum(np.exp(logits))))
    return total / len(q)


@pytest.mark.parametrize("n, d, temperature", [(4, 3, 0.5), (16, 8, 0.1), (7, 32, 1.0), (2, 2, 0.2)])
def test_nt_xent_matches_numpy_reference(n, d, temperature):
    rng = np.random.default_rng(n * 100 + d)
    z1, z2 = rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, d)).astype("float32")
    got = float(losses.nt_xent_loss(z1, z2, temperature))
    assert got == pytest.approx(nt_xent_reference(z1, z2, temperature), rel=1e-4, abs=1e-5)


def test_nt_xent_is_symmetric_scale_invariant_and_masks_self_similarity():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(8, 5)).astype("float32"), rng.normal(size=(8, 5)).astype("float32")
    loss = float(losses.nt_xent_loss(z1, z2, 0.3))
    assert float(losses.nt_xent_loss(z2, z1, 0.3)) == pytest.approx(loss, rel=1e-5)
    assert float(losses.nt_xent_loss(3.0 * z1, 0.5 * z2, 0.3)) == pytest.approx(loss, rel=1e-5)
    # identical views, orthogonal images: positive similarity 1, negatives 0, self excluded
    e = np.eye(4, dtype="float32")
    expected = -np.log(np.exp(1 / 0.5) / (np.exp(1 / 0.5) + 6 * np.exp(0.0)))
    assert float(losses.nt_xent_loss(e, e, 0.5)) == pytest.approx(expected, rel=1e-5)
    # views far apart from their partner give a larger loss than views close to it
    assert float(losses.nt_xent_loss(z1, z1 + 0.01 * z2, 0.3)) < float(losses.nt_xent_loss(z1, z2, 0.3))


def test_nt_xent_logits_layout():
    logits, positives = losses.nt_xent_logits(np.ones((3, 2), "float32"), np.ones((3, 2), "float32"), 0.5)
    logits = np.asarray(logits)
    assert logits.shape == (6, 6)
    assert np.all(np.diag(logits) < -1e8)
    assert np.asarray(positives).tolist() == [3, 4, 5, 0, 1, 2]


def test_nt_xent_rejects_bad_inputs():
    z = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError):
        losses.nt_xent_loss(z, np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError):
        losses.nt_xent_loss(z, z, temperature=0.0)


def test_contrastive_accuracy():
    e = np.eye(4, dtype="float32")
    assert float(losses.contrastive_accuracy(e, e)) == 1.0
    shifted = np.roll(e, 1, axis=0)          # partner of view i is the second view of image i-1
    assert float(losses.contrastive_accuracy(e, shifted)) == 0.0


@pytest.mark.parametrize("n, k, d, temperature", [(4, 10, 3, 0.2), (9, 1, 6, 0.07)])
def test_info_nce_matches_numpy_reference(n, k, d, temperature):
    rng = np.random.default_rng(k)
    q, keys, neg = (rng.normal(size=s).astype("float32") for s in [(n, d), (n, d), (k, d)])
    got = float(losses.info_nce_loss(q, keys, neg, temperature))
    assert got == pytest.approx(info_nce_reference(q, keys, neg, temperature), rel=1e-4)


def test_stop_gradient_losses_match_numpy():
    rng = np.random.default_rng(1)
    p1, p2, z1, z2 = (rng.normal(size=(6, 4)).astype("float32") for _ in range(4))
    cos = lambda a, b: np.mean(np.sum(_normalize(a) * _normalize(b), axis=1))
    assert float(losses.negative_cosine_loss(p1, z2)) == pytest.approx(-cos(p1, z2), rel=1e-5)
    assert float(losses.symmetric_stop_gradient_loss(p1, p2, z1, z2)) == pytest.approx(
        -0.5 * cos(p1, z2) - 0.5 * cos(p2, z1), rel=1e-5)
    assert float(losses.negative_cosine_loss(z1, 2 * z1)) == pytest.approx(-1.0, abs=1e-6)


def test_stop_gradient_blocks_target_gradient():
    p = np.ones((3, 2), "float32")
    z = np.array([[1, 0], [0, 1], [1, 1]], "float32")
    grad_fn = value_and_grad(lambda params: (losses.negative_cosine_loss(params[0], params[1]), ()))
    _, (grad_p, grad_z) = grad_fn([p, z])
    assert np.allclose(ops.convert_to_numpy(grad_z), 0.0)
    assert not np.allclose(ops.convert_to_numpy(grad_p), 0.0)


def test_mse_between_views_and_embedding_std():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 16)).astype("float32")
    assert float(losses.mse_between_views(z, z)) == 0.0
    assert float(losses.mse_between_views(z, z + 1.0, normalize=False)) == pytest.approx(16.0, rel=1e-5)
    cos = np.sum(_normalize(z) * _normalize(z[::-1]), axis=1)
    assert float(losses.mse_between_views(z, z[::-1])) == pytest.approx(np.mean(2 - 2 * cos), rel=1e-4)
    assert float(losses.mse_between_views(z, 5 * z)) == pytest.approx(0.0, abs=1e-5)
    spread = float(losses.embedding_std(z))
    assert spread == pytest.approx(1 / np.sqrt(16), rel=0.1)
    assert spread == pytest.approx(np.mean(np.std(_normalize(z), axis=0)), rel=1e-5)
    collapsed = np.tile(z[:1], (500, 1)) + 1e-4 * z
    assert float(losses.embedding_std(collapsed)) < 1e-3
    assert float(ops.convert_to_numpy(losses.l2_normalize(np.array([[3.0, 4.0]])))[0, 0]) == pytest.approx(0.6)


# --- VAE ------------------------------------------------------------------------------------------

def numpy(t):
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


def test_gaussian_kl_closed_form_and_monte_carlo():
    assert numpy(losses.gaussian_kl(np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"))).tolist() == [0.0, 0.0]
    mean, log_var = np.array([[0.5, -1.0]], "float32"), np.log(np.array([[0.5, 2.0]], "float32"))
    kl = numpy(losses.gaussian_kl(mean, log_var))[0]
    rng = np.random.default_rng(0)
    sigma = np.exp(0.5 * log_var[0])
    z = mean[0] + sigma * rng.standard_normal((200000, 2))
    log_q = (-0.5 * ((z - mean[0]) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)).sum(1)
    log_p = (-0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)).sum(1)
    assert kl == pytest.approx(np.mean(log_q - log_p), abs=0.01)


def test_bernoulli_nll_sums_over_pixels_and_is_stable():
    x = np.zeros((3, 8, 8, 1), "float32")
    np.testing.assert_allclose(numpy(losses.bernoulli_nll(x, np.zeros_like(x))), 64 * np.log(2.0), rtol=1e-6)
    extreme = numpy(losses.bernoulli_nll(np.ones((1, 2, 2, 1), "float32"), np.full((1, 2, 2, 1), -80.0, "float32")))
    np.testing.assert_allclose(extreme, [320.0], rtol=1e-5)


# --- GAN ------------------------------------------------------------------------------------------

def test_losses_match_cross_entropy_and_saturation():
    real, fake = np.array([[2.0], [-1.0]], np.float32), np.array([[0.5], [-3.0]], np.float32)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    expected_d = -np.mean(np.log(sig(real))) - np.mean(np.log(1 - sig(fake)))
    assert float(losses.discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-5)
    assert float(losses.generator_loss(fake)) == pytest.approx(-np.mean(np.log(sig(fake))), rel=1e-5)
    assert float(losses.generator_loss(fake, non_saturating=False)) == pytest.approx(
        np.mean(np.log(1 - sig(fake))), rel=1e-5)
    # where D confidently rejects the fakes, the saturating loss has (almost) no gradient; the other does
    logit = np.full((4, 1), -8.0, np.float32)
    _, (g_ns,) = value_and_grad(lambda w: (losses.generator_loss(w[0]), ()))([logit])
    _, (g_sat,) = value_and_grad(lambda w: (losses.generator_loss(w[0], non_saturating=False), ()))([logit])
    g_ns, g_sat = ops.convert_to_numpy(g_ns), ops.convert_to_numpy(g_sat)
    assert np.abs(g_ns).mean() > 1000 * np.abs(g_sat).mean()


# --- FixMatch ---------------------------------------------------------------------------------------

def loss_values(out):
    return {k: float(ops.convert_to_numpy(v)) for k, v in out.items()}


def test_fixmatch_loss_hand_computed():
    y = np.array([1, 0])
    p_l = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    p_w = np.array([[0.99, 0.01], [0.3, 0.7], [0.04, 0.96], [0.5, 0.5]], np.float32)
    p_s = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    out = loss_values(losses.fixmatch_loss(y, p_l, p_w, p_s, threshold=0.95, lambda_u=3.0))
    sup = (-math.log(0.75) - math.log(0.5)) / 2
    unl = (-math.log(0.5) - math.log(0.8)) / 4  # images 0 and 2 are confident; mean over all 4
    assert out["supervised_loss"] == pytest.approx(sup, abs=1e-5)
    assert out["unlabeled_loss"] == pytest.approx(unl, abs=1e-5)
    assert out["mask_rate"] == pytest.approx(0.5)
    assert out["loss"] == pytest.approx(sup + 3.0 * unl, abs=1e-5)
    none = loss_values(losses.fixmatch_loss(y, p_l, p_w, p_s, threshold=1.0))
    assert none["unlabeled_loss"] == 0.0 and none["mask_rate"] == 0.0


# --- the masked-LM loss (Day 09) ------------------------------------------------------------------

def masked_lm_reference(labels, logits, weights):
    """Loops over the slots: -log softmax(logits)[label], weighted, divided by the sum of the weights."""
    total, weight_sum = 0.0, 0.0
    for b in range(logits.shape[0]):
        for p in range(logits.shape[1]):
            z = logits[b, p].astype(np.float64)
            log_softmax = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
            total += weights[b, p] * -log_softmax[labels[b, p]]
            weight_sum += weights[b, p]
    return total / weight_sum


def test_masked_lm_loss_matches_numpy_reference_and_keras():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(5, 7, 30)).astype(np.float32)
    labels = rng.integers(0, 30, size=(5, 7)).astype(np.int32)
    weights = (rng.random((5, 7)) < 0.5).astype(np.float32)
    got = float(ops.convert_to_numpy(losses.masked_lm_loss(labels, logits, weights)))
    assert math.isclose(got, masked_lm_reference(labels, logits, weights), rel_tol=1e-5)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    assert math.isclose(got, float(ops.convert_to_numpy(keras_loss(labels, logits, sample_weight=weights))), rel_tol=1e-5)
    # padding slots do not count, whatever their logits; no weights: every slot counts
    spoiled = logits.copy()
    spoiled[weights == 0] = 100.0 * rng.normal(size=(int((weights == 0).sum()), 30))
    assert math.isclose(float(ops.convert_to_numpy(losses.masked_lm_loss(labels, spoiled, weights))), got, rel_tol=1e-5)
    everything = float(ops.convert_to_numpy(losses.masked_lm_loss(labels, logits)))
    assert math.isclose(everything, masked_lm_reference(labels, logits, np.ones_like(weights)), rel_tol=1e-5)
    assert float(ops.convert_to_numpy(losses.masked_lm_loss(labels, logits, np.zeros_like(weights)))) == 0.0
    uniform = float(ops.convert_to_numpy(losses.masked_lm_loss(labels, np.zeros_like(logits), weights)))
    assert math.isclose(uniform, math.log(30), rel_tol=1e-6)

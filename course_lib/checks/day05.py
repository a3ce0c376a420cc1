"""Self-checks for Day 05 (variational autoencoders): the reconstruction term, the KL term and the sampling layer
(the three pieces the day's VAE trains with), and the Monte-Carlo investigation of the KL term."""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)  # (re-exported for the notebook)


HINTS = register_hints({
    "day05.reconstruction": Hints(
        todo="Write reconstruction_nll(x, logits) with keras.ops: the Bernoulli negative log-likelihood of each "
             "example, summed over all its pixels, computed from the logits.",
        tiers=("Every pixel is a coin with probability sigmoid(logit) of being on; the negative log-likelihood of "
               "an image is the sum over its pixels of the binary cross-entropy between the pixel and that "
               "probability. One number per example.",
               "keras.ops has a binary cross-entropy that accepts logits (tell it so with its from_logits "
               "argument); flatten everything but the batch axis (ops.reshape with -1) and sum over the last axis.",
               "Common slips: averaging over the pixels instead of summing (the KL term is then weighted D times too "
               "much); passing probabilities where logits are expected, or taking the sigmoid first and the log "
               "later (log(0) for confident pixels); summing over the batch as well.")),
    "day05.kl": Hints(
        todo="Write kl_divergence(z_mean, z_log_var) with keras.ops: the closed-form KL divergence between the "
             "encoder's diagonal Gaussian and the standard normal prior, one value per example.",
        tiers=("Each latent dimension contributes one term that depends on its mean and variance only; the KL of "
               "the whole code is the sum over dimensions. It is zero exactly when the mean is 0 and the variance "
               "is 1.",
               "Per dimension: one half of (variance + squared mean - 1 - log variance), with the variance equal to "
               "exp(z_log_var); sum over the last axis.",
               "Common slips: the mean over dimensions instead of the sum; exp of half the log variance (that is "
               "the standard deviation); a wrong sign on the log-variance term; summing over the batch as well.")),
    "day05.sampling": Hints(
        todo="Write the Sampling layer: in __init__ create and store a keras.random.SeedGenerator from seed; in call "
             "return a draw z from N(z_mean, exp(z_log_var)) made with the reparameterisation trick.",
        tiers=("Draw standard normal noise of the same shape as the mean, independently of the parameters, then "
               "scale it by the standard deviation and shift it by the mean: the randomness no longer depends on "
               "the parameters, so gradients reach them.",
               "keras.random.normal(shape, seed=...) with the layer's stored SeedGenerator as the seed; the standard "
               "deviation is exp(z_log_var / 2); ops.shape gives the (possibly symbolic) shape of the mean.",
               "Common slips: exp(z_log_var) as the standard deviation (it is the variance); creating the "
               "SeedGenerator inside call (the same noise at every call); an integer seed in call (the same noise at "
               "every step); NumPy's random numbers (they do not run inside the compiled training step).")),
    "day05.kl_monte_carlo": Hints(
        todo="Write kl_monte_carlo: average, over n_samples draws z ~ q(z|x), of log q(z|x) - log p(z); then "
             "monte_carlo_errors: its relative RMS error against your closed form for each number of samples.",
        tiers=("The KL divergence is an expectation under q of a log-ratio of densities; averaging that log-ratio "
               "over draws from q estimates it without bias. The closed form is the exact value to compare with.",
               "Draw eps from a standard normal with shape (n_samples, batch, latent), set z = mean + exp(log_var/2) "
               "* eps; both log densities are sums over dimensions of Gaussian log densities and the log 2 pi terms "
               "cancel. The relative RMS error is the square root of the mean over examples of the squared "
               "difference to the closed form, divided by the mean closed-form KL.",
               "Common slips: evaluating q at the mean instead of at the draws; forgetting the log-variance term of "
               "log q; averaging over the latent dimensions instead of summing; the same seed for every number of "
               "samples is fine, but a single draw reused for every n is not.")),
})


def _numpy(tensor) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor), dtype=np.float64)


def check_sampling_layer(sampling_class):
    """Check a reparameterisation layer ``sampling_class(seed=...)([z_mean, z_log_var]) -> z`` (Exercise 5.2).

    Expected: output shaped like ``z_mean``; ``z = z_mean + exp(z_log_var / 2) * eps`` with ``eps ~ N(0, I)``
    (the right mean and standard deviation, and the same ``eps`` for the same seed whatever the mean); the
    same seed gives the same draws, successive calls give new draws; usable on symbolic ``keras.Input`` s.
    """
    from course_lib.models import vae

    spy = ReferenceSpy(vae.Sampling.call, vae.Sampling.__init__)

    init, call = spy.wrap(sampling_class.__init__), spy.wrap(sampling_class.call)

    class Watched(sampling_class):  # the student's layer, its two methods watched by the spy
        def __init__(self, seed=None, **kwargs):
            init(self, seed=seed, **kwargs)

    Watched.call = call  # inspect.signature follows __wrapped__: Keras sees the student's call signature
    Watched.__name__ = Watched.__qualname__ = getattr(sampling_class, "__name__", "Sampling")
    sampling_class = Watched

    def test():
        import keras

        n, d = 20000, 3
        mean = np.tile(np.array([[2.0, -1.0, 0.0]], dtype="float32"), (n, 1))
        log_var = np.tile(np.log(np.array([[0.25, 1.0, 4.0]], dtype="float32")), (n, 1))
        z = _numpy(sampling_class(seed=1)([mean, log_var]))
        expect(z.shape == (n, d), f"expected z of shape {(n, d)}, got {z.shape}")
        expect(np.allclose(z.mean(0), [2.0, -1.0, 0.0], atol=0.05),
               f"sample means should be z_mean = [2, -1, 0], got {np.round(z.mean(0), 3).tolist()}")
        std = z.std(0)
        expect(np.allclose(std, [0.5, 1.0, 2.0], rtol=0.05),
               f"sample stds should be exp(z_log_var / 2) = [0.5, 1, 2], got {np.round(std, 3).tolist()} "
               "(exp(z_log_var) is the variance, not the standard deviation)")
        shifted = _numpy(sampling_class(seed=1)([mean + 10.0, log_var]))
        expect(np.allclose(shifted - 10.0, z, atol=1e-4),
               "with the same seed, adding 10 to z_mean should add exactly 10 to z: z must be z_mean + sigma * eps "
               "with eps drawn independently of the parameters (the reparameterisation trick)")
        layer = sampling_class(seed=7)
        first, second = _numpy(layer([mean[:5], log_var[:5]])), _numpy(layer([mean[:5], log_var[:5]]))
        expect(not np.allclose(first, second), "two calls of the same layer must draw new noise "
                                               "(store a keras.random.SeedGenerator on the layer and pass it as seed=)")
        expect(np.allclose(first, _numpy(sampling_class(seed=7)([mean[:5], log_var[:5]]))),
               "two layers built with the same seed must give the same first draw")
        symbolic = sampling_class(seed=0)([keras.Input((4,)), keras.Input((4,))])
        expect(tuple(symbolic.shape) == (None, 4), f"on symbolic inputs of shape (None, 4) the output should have "
                                                   f"shape (None, 4), got {tuple(symbolic.shape)}")
        return "z = mean + exp(log_var / 2) * eps with the right moments, reproducible per seed, works in a graph"

    return run_check("day05.sampling", "Exercise 5.2 - the sampling layer", test, spy=spy)


def check_kl_divergence(kl_divergence):
    """Check ``kl_divergence(z_mean, z_log_var) -> (batch,)`` (Exercise 5.1b) against the closed form."""
    from course_lib.losses import gaussian_kl

    spy = ReferenceSpy(gaussian_kl)
    kl_divergence = spy.wrap(kl_divergence)

    def test():
        zeros = np.zeros((3, 4), dtype="float32")
        kl0 = _numpy(kl_divergence(zeros, zeros))
        expect(kl0.shape == (3,), f"expected one KL value per example, shape (3,), got {kl0.shape} "
                                  "(sum over the latent axis only)")
        expect(np.allclose(kl0, 0.0, atol=1e-6), f"KL(N(0, I) || N(0, I)) must be 0, got {kl0.tolist()}")
        one = _numpy(kl_divergence(np.array([[1.0, 0.0]], "float32"), np.zeros((1, 2), "float32")))
        expect(np.allclose(one, [0.5]), f"mean (1, 0), variance 1: KL should be 0.5 nats, got {one.tolist()}")
        rng = np.random.default_rng(0)
        mean = rng.normal(size=(50, 6)).astype("float32")
        log_var = rng.normal(scale=0.8, size=(50, 6)).astype("float32")
        got, want = _numpy(kl_divergence(mean, log_var)), _numpy(gaussian_kl(mean, log_var))
        expect(got.shape == (50,), f"expected shape (50,), got {got.shape}")
        expect(np.allclose(got, want, rtol=1e-4), f"values differ from the closed form, e.g. {got[0]:.4f} instead of "
                                                  f"{want[0]:.4f} (sign? factor 1/2? sum, not mean?)")
        return "0 at the prior, 0.5 nats for a unit shift, matches the closed form on random inputs"

    return run_check("day05.kl", "Exercise 5.1b - the KL term", test, spy=spy)


def check_reconstruction_nll(reconstruction_nll):
    """Check ``reconstruction_nll(x, logits) -> (batch,)`` (Exercise 5.1a): Bernoulli NLL summed over pixels."""
    from course_lib.losses import bernoulli_nll

    spy = ReferenceSpy(bernoulli_nll)
    reconstruction_nll = spy.wrap(reconstruction_nll)

    def test():
        x = np.zeros((2, 8, 8, 1), dtype="float32")
        logits = np.zeros((2, 8, 8, 1), dtype="float32")
        nll = _numpy(reconstruction_nll(x, logits))
        expect(nll.shape == (2,), f"expected one value per example, shape (2,), got {nll.shape}")
        expect(np.allclose(nll, 64 * np.log(2.0), rtol=1e-4),
               f"probability 1/2 for each of 64 pixels: NLL = 64 log 2 = {64 * np.log(2):.3f} nats, got "
               f"{nll.tolist()} (sum over pixels, do not average)")
        rng = np.random.default_rng(0)
        x = (rng.random((10, 5, 5, 1)) < 0.4).astype("float32")
        logits = rng.normal(scale=3.0, size=x.shape).astype("float32")
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        want = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(10, -1).sum(1)
        got = _numpy(reconstruction_nll(x, logits))
        expect(np.allclose(got, want, rtol=1e-4), f"got {got[0]:.4f} for the first example, expected {want[0]:.4f} "
                                                  "(the second argument holds logits: from_logits=True)")
        extreme = _numpy(reconstruction_nll(np.ones((1, 2, 2, 1), "float32"), np.full((1, 2, 2, 1), -50.0, "float32")))
        expect(np.all(np.isfinite(extreme)) and np.allclose(extreme, 200.0, rtol=1e-3),
               f"logit -50 for a pixel equal to 1 costs 50 nats; 4 pixels: 200, got {extreme.tolist()} "
               "(compute from logits, not from clipped probabilities)")
        expect(np.allclose(got, _numpy(bernoulli_nll(x, logits)), rtol=1e-4), "differs from course_lib's bernoulli_nll")
        return "summed over pixels, from logits, stable for extreme logits"

    return run_check("day05.reconstruction", "Exercise 5.1a - the reconstruction term", test, spy=spy)


def _mc_variance(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """Variance of one draw of log q(z) - log p(z) for each example: sum_j mu_j^2 sigma_j^2 + (sigma_j^2 - 1)^2 / 2."""
    var = np.exp(log_var)
    return np.sum(mean ** 2 * var + 0.5 * (var - 1.0) ** 2, axis=-1)


def expected_relative_error(z_mean, z_log_var, n_samples: int) -> float:
    """The relative RMS error a correct Monte-Carlo estimate of the KL term has, on average, with ``n_samples``.

    :math:`\\sqrt{\\overline{V} / n} \\,/\\, \\overline{\\mathrm{KL}}` with :math:`V` the variance of one draw (see
    :func:`course_lib.models.vae.kl_monte_carlo`) and bars the means over the examples.

    Args:
        z_mean, z_log_var: float arrays ``(N, latent_dim)``: the posteriors of ``N`` examples.
        n_samples: Monte-Carlo draws per example (>= 1).

    Returns:
        The expected relative RMS error, a Python float >= 0 (dimensionless).
    """
    from course_lib.losses import gaussian_kl

    mean, log_var = (np.asarray(a, dtype=np.float64) for a in (z_mean, z_log_var))
    kl = _numpy(gaussian_kl(mean.astype("float32"), log_var.astype("float32")))
    return float(np.sqrt(_mc_variance(mean, log_var).mean() / n_samples) / kl.mean())


_EXPERIMENT: dict = {}


def monte_carlo_results():
    """The errors of the last passing :func:`check_kl_monte_carlo` (the study is not run twice)."""
    return _EXPERIMENT["errors"]


def check_kl_monte_carlo(kl_monte_carlo, monte_carlo_errors, z_mean, z_log_var, sample_counts):
    """Check the Monte-Carlo estimate of the KL term and the error study (Exercise 5.3, investigate).

    ``kl_monte_carlo(z_mean, z_log_var, n_samples, seed) -> (batch,)`` must be unbiased with the variance of a
    correct estimator (checked with many samples on random Gaussians: the errors, divided by their known
    standard deviation, must look like standard normal draws); ``monte_carlo_errors(z_mean, z_log_var,
    sample_counts, seed) -> {n: relative RMS error}`` on the notebook's test encodings must give one error per
    ``n``, each within 25 % of what a correct estimator gives on average.

    Returns:
        The :class:`course_lib.checks.CheckResult`. When it passes, :func:`monte_carlo_results` returns the errors.
    """
    from course_lib.losses import gaussian_kl
    from course_lib.models import vae

    spy = ReferenceSpy(vae.kl_monte_carlo, vae.monte_carlo_kl_errors)
    estimate, study = spy.wrap(kl_monte_carlo), spy.wrap(monte_carlo_errors)
    _EXPERIMENT.pop("errors", None)

    def test():
        rng = np.random.default_rng(0)
        mean = rng.normal(size=(300, 4)).astype("float32")
        log_var = rng.normal(scale=0.7, size=(300, 4)).astype("float32")
        n = 400
        got = _numpy(estimate(mean, log_var, n, 1))
        expect(got.shape == (300,), f"expected one estimate per example, shape (300,), got {got.shape}")
        exact = _numpy(gaussian_kl(mean, log_var))
        spread = np.sqrt(_mc_variance(mean.astype(np.float64), log_var.astype(np.float64)) / n)
        z_scores = (got - exact) / spread
        expect(np.mean(z_scores ** 2) > 0.3, "the estimates are (almost) exactly the closed form: a Monte-Carlo "
                                             "estimate must average the log-ratio over random draws z ~ q")
        expect(abs(np.mean(z_scores)) < 0.25, f"the estimates are biased: on average they miss the closed form by "
                                              f"{np.mean(got - exact):+.3f} nats (evaluate both densities at the "
                                              "draws z, and keep every term of log q)")
        expect(0.6 < np.mean(z_scores ** 2) < 1.6,
               f"the estimates scatter {np.sqrt(np.mean(z_scores ** 2)):.2f} times as much as {n} independent draws "
               "should: one fresh draw per sample and example?")
        errors = study(z_mean, z_log_var, tuple(sample_counts), 0)
        expect(isinstance(errors, dict) and sorted(int(k) for k in errors) == sorted(int(k) for k in sample_counts),
               f"monte_carlo_errors should return {{n: error}} for n in {list(sample_counts)}, got {errors!r}"[:300])
        for count in sample_counts:
            want = expected_relative_error(z_mean, z_log_var, int(count))
            value = float(errors[count])
            expect(abs(value - want) <= 0.25 * want,
                   f"with {count} samples the relative RMS error is {value:.4f}, a correct estimator gives about "
                   f"{want:.4f} on these codes (root of the mean squared difference, divided by the mean KL)")
        _EXPERIMENT["errors"] = errors
        return "unbiased, right spread; relative errors " + ", ".join(f"n={int(c)}: {float(errors[c]):.4f}"
                                                                      for c in sample_counts)

    return run_check("day05.kl_monte_carlo", "Exercise 5.3 - investigate: the KL term by Monte Carlo", test, spy=spy)

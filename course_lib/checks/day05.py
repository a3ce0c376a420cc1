"""Self-checks for Day 05 (variational autoencoders): the reconstruction term, the sampling layer, the KL term."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day05.sampling": Hints(
        todo="Implement the the sampling layer described above the exercise cell.",
        tiers=("in __init__: self.seed_generator = keras.random.SeedGenerator(seed); in call: "
                          "eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator); "
                          "return z_mean + ops.exp(0.5 * z_log_var) * eps",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day05.kl": Hints(
        todo="Implement the the KL term described above the exercise cell.",
        tiers=("0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=-1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day05.reconstruction": Hints(
        todo="Implement the the reconstruction term described above the exercise cell.",
        tiers=("per_pixel = ops.binary_crossentropy(x, logits, from_logits=True); "
                          "return ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=-1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
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

    return run_check("day05.sampling", "Exercise 5.2 - the sampling layer", test)


def check_kl_divergence(kl_divergence):
    """Check ``kl_divergence(z_mean, z_log_var) -> (batch,)`` (Exercise 5.3) against the closed form."""
    def test():
        from course_lib.losses import gaussian_kl

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

    return run_check("day05.kl", "Exercise 5.3 - the KL term", test)


def check_reconstruction_nll(reconstruction_nll):
    """Check ``reconstruction_nll(x, logits) -> (batch,)`` (Exercise 5.1): Bernoulli NLL summed over pixels."""
    def test():
        from course_lib.losses import bernoulli_nll

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

    return run_check("day05.reconstruction", "Exercise 5.1 - the reconstruction term", test)

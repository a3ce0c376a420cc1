"""Unit tests for course_lib.checks.day05: the notebook's reference solutions pass the self-checks; the checks
fail (not error) typical wrong answers, say "todo" for an exercise not attempted and "reference" for an answer
that calls course_lib's own implementation."""

import json
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from course_lib import losses
from course_lib.checks import day05
from course_lib.models import vae as vae_lib

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "day05_variational_autoencoders.ipynb"


def notebook_solutions():
    """Execute the solution cells of the Day 05 notebook's exercises, with the notebook's names they use."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    namespace = {"np": np, "keras": keras, "layers": layers, "ops": ops, "kl_fn": losses.gaussian_kl}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), meta["grade_id"], "exec"), namespace)  # noqa: S102
    return namespace


def todo(*args, **kwargs):
    raise NotImplementedError()


def codes(n=300, k=6, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, k)).astype("float32"), rng.normal(-1.0, 0.8, size=(n, k)).astype("float32")


# --- Exercise 5.1: the two terms ---------------------------------------------------------------------------

def test_reconstruction_check():
    ns = notebook_solutions()
    assert day05.check_reconstruction_nll(ns["reconstruction_nll"]).status == "pass"

    def mean_over_pixels(x, logits):
        per_pixel = ops.binary_crossentropy(x, logits, from_logits=True)
        return ops.mean(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)

    def probabilities(x, logits):
        per_pixel = ops.binary_crossentropy(x, logits, from_logits=False)
        return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)

    assert day05.check_reconstruction_nll(mean_over_pixels).status == "fail"
    assert day05.check_reconstruction_nll(probabilities).status == "fail"
    assert day05.check_reconstruction_nll(todo).status == "todo"
    assert day05.check_reconstruction_nll(lambda x, logits: losses.bernoulli_nll(x, logits)).status == "reference"


def test_kl_check():
    ns = notebook_solutions()
    assert day05.check_kl_divergence(ns["kl_divergence"]).status == "pass"

    def mean_not_sum(z_mean, z_log_var):
        return 0.5 * ops.mean(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=-1)

    def wrong_sign(z_mean, z_log_var):
        return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 + z_log_var, axis=-1)

    assert day05.check_kl_divergence(mean_not_sum).status == "fail"
    assert day05.check_kl_divergence(wrong_sign).status == "fail"
    assert day05.check_kl_divergence(todo).status == "todo"
    assert day05.check_kl_divergence(lambda m, lv: losses.gaussian_kl(m, lv)).status == "reference"


# --- Exercise 5.2: the sampling layer --------------------------------------------------------------------

def test_sampling_check():
    ns = notebook_solutions()
    result = day05.check_sampling_layer(ns["Sampling"])
    assert result.status == "pass", result.message

    class VarianceAsStd(layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            return z_mean + ops.exp(z_log_var) * keras.random.normal(ops.shape(z_mean), seed=self.generator)

    class FreshGeneratorEveryCall(layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed

        def call(self, inputs):
            z_mean, z_log_var = inputs
            eps = keras.random.normal(ops.shape(z_mean), seed=keras.random.SeedGenerator(self.seed))
            return z_mean + ops.exp(0.5 * z_log_var) * eps

    class NotImplemented(layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            raise NotImplementedError()

    class Subclass(vae_lib.Sampling):
        pass

    variance = day05.check_sampling_layer(VarianceAsStd)
    assert variance.status == "fail" and "variance" in variance.message
    fresh = day05.check_sampling_layer(FreshGeneratorEveryCall)
    assert fresh.status == "fail" and "new noise" in fresh.message
    assert day05.check_sampling_layer(NotImplemented).status == "todo"
    assert day05.check_sampling_layer(Subclass).status == "reference"


# --- Exercise 5.3: the Monte-Carlo investigation ---------------------------------------------------------

def test_monte_carlo_check_passes_the_solution_and_fails_typical_mistakes():
    ns = notebook_solutions()
    z_mean, z_log_var = codes()
    counts = (1, 10, 100)
    result = day05.check_kl_monte_carlo(ns["kl_monte_carlo"], ns["monte_carlo_errors"], z_mean, z_log_var, counts)
    assert result.status == "pass", result.message
    errors = day05.monte_carlo_results()
    assert sorted(errors) == list(counts) and errors[100] < errors[1]

    def at_the_mean(z_mean, z_log_var, n_samples, seed):  # evaluates log q - log p at mu: biased
        mean, log_var = (np.asarray(ops.convert_to_numpy(a), np.float64) for a in (z_mean, z_log_var))
        return np.sum(0.5 * mean ** 2 - 0.5 * log_var, axis=-1)

    def closed_form(z_mean, z_log_var, n_samples, seed):
        return ops.convert_to_numpy(ns["kl_divergence"](ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)))

    biased = day05.check_kl_monte_carlo(at_the_mean, ns["monte_carlo_errors"], z_mean, z_log_var, counts)
    assert biased.status == "fail"
    exact = day05.check_kl_monte_carlo(closed_form, ns["monte_carlo_errors"], z_mean, z_log_var, counts)
    assert exact.status == "fail" and "Monte-Carlo" in exact.message

    def unnormalised(z_mean, z_log_var, sample_counts, seed):  # absolute, not relative, errors
        return {n: e * 10.0 for n, e in ns["monte_carlo_errors"](z_mean, z_log_var, sample_counts, seed).items()}

    assert day05.check_kl_monte_carlo(ns["kl_monte_carlo"], unnormalised, z_mean, z_log_var, counts).status == "fail"
    assert day05.check_kl_monte_carlo(todo, todo, z_mean, z_log_var, counts).status == "todo"

    def calls_the_library(z_mean, z_log_var, n_samples, seed):
        return vae_lib.kl_monte_carlo(z_mean, z_log_var, n_samples, seed)

    called = day05.check_kl_monte_carlo(calls_the_library, ns["monte_carlo_errors"], z_mean, z_log_var, counts)
    assert called.status == "reference"


def test_expected_relative_error_matches_a_simulation():
    z_mean, z_log_var = codes(2000, 4, seed=9)
    estimate = vae_lib.kl_monte_carlo(z_mean, z_log_var, 4, seed=2)
    exact = ops.convert_to_numpy(losses.gaussian_kl(z_mean, z_log_var))
    measured = np.sqrt(np.mean((estimate - exact) ** 2)) / np.mean(exact)
    assert abs(measured - day05.expected_relative_error(z_mean, z_log_var, 4)) < 0.1 * measured

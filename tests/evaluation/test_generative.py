"""Unit tests for course_lib.evaluation.generative: Fréchet distance, class coverage and the classifier-feature evaluator."""

import warnings

import numpy as np
import pytest

from course_lib.evaluation.generative import (FrechetEvaluator, class_coverage, class_entropy, class_histogram,
                                              frechet_distance, frechet_distance_features, gaussian_stats)


def random_spd(d, seed, rank=None):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d) + (0 if rank else 0.1) * np.eye(d)


def reference_fd(mu1, s1, mu2, s2):
    """Independent formula: Tr((S1 S2)^{1/2}) = sum of square roots of the (real, >= 0) eigenvalues of S1 S2."""
    eig = np.linalg.eigvals(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.abs(eig.real))))


# --- frechet_distance -----------------------------------------------------------------------------

def test_identical_gaussians_have_zero_distance():
    s = random_spd(6, 0)
    mu = np.arange(6.0)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)


def test_one_dimensional_closed_form():
    # N(m1, a^2) vs N(m2, b^2): (m1 - m2)^2 + (a - b)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(2.0 ** 2 + (2.0 - 3.0) ** 2)


def test_diagonal_covariances_closed_form():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_eigenvalue_formula_and_is_symmetric(seed):
    rng = np.random.default_rng(seed)
    s1, s2 = random_spd(10, seed), random_spd(10, seed + 100)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    value = frechet_distance(mu1, s1, mu2, s2)
    assert value == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(value, rel=1e-6)
    assert value > 0.1


def test_singular_covariances_give_a_finite_value_without_warnings():
    s1, s2 = random_spd(20, 0, rank=5), random_spd(20, 1, rank=5)  # like features with fewer samples than dims
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance(np.zeros(20), s1, np.zeros(20), s2)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(reference_fd(np.zeros(20), s1, np.zeros(20), s2), rel=1e-3, abs=1e-3)


def test_mismatched_shapes_and_non_psd_covariances_raise():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))


def test_feature_sets_same_distribution_near_zero_shift_gives_squared_norm():
    rng = np.random.default_rng(0)
    cov = random_spd(4, 3)
    chol = np.linalg.cholesky(cov)
    x = rng.normal(size=(20000, 4)) @ chol.T
    y = rng.normal(size=(20000, 4)) @ chol.T
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    assert frechet_distance_features(x, y) < 0.01
    assert frechet_distance_features(x, y + shift) == pytest.approx(np.sum(shift ** 2), rel=0.02)


def test_gaussian_stats_shapes_and_errors():
    mu, sigma = gaussian_stats(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]))
    assert mu.shape == (2,) and sigma.shape == (2, 2)
    assert np.allclose(mu, [2.0, 4.0])
    assert sigma[0, 0] == pytest.approx(4.0)  # unbiased: ((-2)^2 + 0 + 2^2) / 2
    with pytest.raises(ValueError):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        gaussian_stats(np.array([[np.nan, 1.0], [1.0, 2.0]]))


# --- coverage ---------------------------------------------------------------------------------------

def test_class_coverage_uniform_collapsed_and_threshold():
    uniform = np.repeat(np.arange(10), 30)
    assert class_coverage(uniform, 10) == 1.0
    assert class_coverage(np.full(300, 7), 10) == pytest.approx(0.1)
    # default threshold 1/(2K) = 5 %: a class with exactly 5 of 100 samples counts, one with 4 does not
    labels = np.concatenate([np.zeros(91, int), np.full(5, 1), np.full(4, 2)])
    assert class_coverage(labels, 10) == pytest.approx(0.2)
    assert class_coverage(labels, 10, min_share=0.01) == pytest.approx(0.3)


def test_class_coverage_accepts_probabilities_and_validates():
    probabilities = np.eye(4)[[0, 1, 1, 2, 3, 3, 3, 0]]
    assert class_coverage(probabilities, 4) == 1.0
    assert np.allclose(class_histogram(probabilities, 4), [0.25, 0.25, 0.125, 0.375])
    with pytest.raises(ValueError):
        class_coverage(np.array([0, 4]), 4)
    with pytest.raises(ValueError):
        class_coverage(np.array([0, 1]), 4, min_share=0.0)
    with pytest.raises(ValueError):
        class_histogram(np.array([], dtype=int), 4)


def test_class_entropy_bounds():
    assert class_entropy(np.repeat(np.arange(5), 3), 5) == pytest.approx(1.0)
    assert class_entropy(np.zeros(10, int), 5) == pytest.approx(0.0)
    assert 0.0 < class_entropy(np.array([0, 0, 0, 1]), 5) < 1.0


# --- FrechetEvaluator -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def evaluator_and_images():
    import keras

    from course_lib.models.classifier import build_classifier

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((200, 8, 8, 1)).astype(np.float32)
    classifier = build_classifier((8, 8, 1), n_classes=10, hidden=16)
    return FrechetEvaluator.from_classifier(classifier, images), images


def test_evaluator_scores_reference_images_at_zero_and_others_higher(evaluator_and_images):
    evaluator, images = evaluator_and_images
    same = evaluator.score(images)
    assert same["fd"] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 <= same["coverage"] <= 1.0 and 0.0 <= same["class_entropy"] <= 1.0
    assert evaluator.embed(images).shape == (200, 16)
    dark = np.clip(images * 0.2, 0, 1)
    assert evaluator.distance(dark) > evaluator.distance(images[:100]) + 1e-3


def test_evaluator_rejects_tanh_range_images(evaluator_and_images):
    evaluator, images = evaluator_and_images
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluator.score(2 * images - 1)

"""Unit tests for course_lib.checks.day03: each check passes a right answer, fails known wrong ones, says "todo"
for an unwritten exercise and "reference" for an answer that calls course_lib's implementation."""

import numpy as np
import pytest

from course_lib.checks import day03 as checks
from course_lib.models import classical


def _todo(*args, **kwargs):
    raise NotImplementedError


def _pca(X, k):
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    return vt[:k], (s ** 2 / (len(X) - 1))[:k], mean


def _reconstruct(X, components, mean):
    return (X - mean) @ components.T @ components + mean


def _budget(x_train, x_test, fraction=0.9):
    components, variance, mean = _pca(x_train, min(x_train.shape))
    k = int(np.searchsorted(np.cumsum(variance) / variance.sum(), fraction) + 1)
    residual = np.sum((x_test - _reconstruct(x_test, components[:k], mean)) ** 2)
    return k, float(residual / np.sum((x_test - mean) ** 2))


# --- Exercise 3.1 ----------------------------------------------------------------------------------------------

def test_pca_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_pca_svd(_pca).status == "pass"

    def divide_by_n(X, k):
        components, variance, mean = _pca(X, k)
        return components, variance * (len(X) - 1) / len(X), mean

    def uncentered(X, k):
        _, s, vt = np.linalg.svd(X, full_matrices=False)
        return vt[:k], (s ** 2 / (len(X) - 1))[:k], X.mean(axis=0)

    def columns_of_u(X, k):                       # the left singular vectors, transposed: wrong shape
        mean = X.mean(axis=0)
        u, s, _ = np.linalg.svd(X - mean, full_matrices=False)
        return u[:, :k].T, (s ** 2 / (len(X) - 1))[:k], mean

    results = {wrong.__name__: checks.check_pca_svd(wrong) for wrong in (divide_by_n, uncentered, columns_of_u)}
    assert all(r.status == "fail" for r in results.values()), results
    assert "n - 1" in results["divide_by_n"].message


def test_pca_check_todo_and_reference():
    assert checks.check_pca_svd(_todo).status == "todo"
    assert checks.check_pca_svd(lambda X, k: classical.pca_svd(X, k)).status == "reference"


# --- Exercise 3.2 ----------------------------------------------------------------------------------------------

def test_reconstruct_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_reconstruct(_reconstruct).status == "pass"

    def mean_not_added_back(X, components, mean):
        return (X - mean) @ components.T @ components

    def not_centered(X, components, mean):
        return X @ components.T @ components + mean

    for wrong in (mean_not_added_back, not_centered):
        assert checks.check_reconstruct(wrong).status == "fail", wrong.__name__


def test_reconstruct_check_todo_and_reference():
    assert checks.check_reconstruct(_todo).status == "todo"
    assert checks.check_reconstruct(lambda X, c, m: classical.pca_reconstruct(X, c, m)).status == "reference"


# --- Exercise 3.3 (investigate) --------------------------------------------------------------------------------

def test_variance_budget_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_variance_budget(_budget).status == "pass"

    def off_by_one(x_train, x_test, fraction=0.9):
        k, share = _budget(x_train, x_test, fraction)
        return k - 1, share

    def top_k_total(x_train, x_test, fraction=0.9):   # the total taken over the kept components only
        for k in range(1, min(x_train.shape) + 1):
            components, variance, mean = _pca(x_train, k)
            if variance.sum() / variance.sum() >= fraction:   # always true: every k looks like 100 %
                break
        residual = np.sum((x_test - _reconstruct(x_test, components, mean)) ** 2)
        return k, float(residual / np.sum((x_test - mean) ** 2))

    def refit_on_test(x_train, x_test, fraction=0.9):  # the test share from a PCA fitted on the test split
        k, _ = _budget(x_train, x_test, fraction)
        components, _, mean = _pca(x_test, k)
        residual = np.sum((x_test - _reconstruct(x_test, components, mean)) ** 2)
        return k, float(residual / np.sum((x_test - mean) ** 2))

    results = {w.__name__: checks.check_variance_budget(w) for w in (off_by_one, top_k_total, refit_on_test)}
    assert all(r.status == "fail" for r in results.values()), results
    assert "one short" in results["off_by_one"].message


def test_variance_budget_check_on_given_images_todo_and_reference():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((80, 12)), rng.random((30, 12))
    result = checks.check_variance_budget(_budget, x_train, x_test, 0.9)
    assert result.status == "pass" and "course's images" in result.message
    assert checks.check_variance_budget(_todo).status == "todo"
    assert checks.check_variance_budget(lambda a, b, f=0.9: checks.reference_variance_budget(a, b, f)
                                        ).status == "reference"


def test_classical_pca_matches_sklearn_and_components_for_variance():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(2).normal(size=(60, 5)) * np.arange(1, 6)
    components, variance, mean = classical.pca_svd(x, 3)
    reference = PCA(3, svd_solver="full").fit(x)
    assert np.allclose(variance, reference.explained_variance_)
    assert np.allclose(classical.pca_reconstruct(x, components, mean), reference.inverse_transform(reference.transform(x)))
    assert classical.components_for_variance([4.0, 3.0, 2.0, 1.0], 0.7) == 2
    assert classical.components_for_variance([4.0, 3.0, 2.0, 1.0], 0.71) == 3
    with pytest.raises(ValueError):
        classical.pca_svd(x, 6)
    with pytest.raises(ValueError):
        classical.components_for_variance([1.0], 0.0)


def test_embed_and_cluster_separates_blobs():
    from course_lib.evaluation import clustering

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = np.eye(3)[y] * 10 + rng.normal(scale=0.5, size=(120, 3))
    labels, embedding = clustering.embed_and_cluster(x, 3, pca_components=None, perplexity=10, seed=0)
    assert labels.shape == (120,) and embedding.shape == (120, 2)
    assert clustering.cluster_accuracy(y, labels) == 1.0
    _, short_map = clustering.embed_and_cluster(x, 3, pca_components=None, perplexity=10, seed=0, max_iter=250)
    assert short_map.shape == (120, 2) and not np.allclose(short_map, embedding)   # max_iter reaches t-SNE
    with pytest.raises(ValueError):
        clustering.embed_and_cluster(x, 3, method="dbscan")

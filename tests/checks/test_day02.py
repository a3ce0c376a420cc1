"""Unit tests for course_lib.checks.day02: each check passes a right answer, fails known wrong ones, says "todo"
for an unwritten exercise and "reference" for an answer that calls course_lib's implementation."""

import numpy as np
from scipy.optimize import linear_sum_assignment

from course_lib.checks import day02 as checks
from course_lib.evaluation import clustering
from course_lib.models import classical


def _todo(*args, **kwargs):
    raise NotImplementedError


# --- Exercise 2.1: k-means++ -----------------------------------------------------------------------------------

def _kmeans_pp(X, k, rng):
    n = len(X)
    centers = [X[rng.integers(n)]]
    d2 = ((X - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        centers.append(X[rng.choice(n, p=d2 / d2.sum())])
        d2 = np.minimum(d2, ((X - centers[-1]) ** 2).sum(axis=1))
    return np.stack(centers)


def test_kmeans_pp_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_kmeans_plus_plus(_kmeans_pp).status == "pass"

    def uniform(X, k, rng):                       # random rows: misses blobs
        return X[rng.choice(len(X), size=k, replace=False)]

    def distance_not_squared(X, k, rng):          # probability proportional to D, not D^2
        n = len(X)
        centers = [X[rng.integers(n)]]
        dist = np.sqrt(((X - centers[0]) ** 2).sum(axis=1))
        for _ in range(1, k):
            centers.append(X[rng.choice(n, p=dist / dist.sum())])
            dist = np.minimum(dist, np.sqrt(((X - centers[-1]) ** 2).sum(axis=1)))
        return np.stack(centers)

    def farthest_first(X, k, rng):                # deterministic farthest point after a random first one
        centers = [X[rng.integers(len(X))]]
        d2 = ((X - centers[0]) ** 2).sum(axis=1)
        for _ in range(1, k):
            centers.append(X[int(np.argmax(d2))])
            d2 = np.minimum(d2, ((X - centers[-1]) ** 2).sum(axis=1))
        return np.stack(centers)

    for wrong in (uniform, distance_not_squared, farthest_first):
        assert checks.check_kmeans_plus_plus(wrong).status == "fail", wrong.__name__


def test_kmeans_pp_check_todo_and_reference():
    assert checks.check_kmeans_plus_plus(_todo).status == "todo"
    assert checks.check_kmeans_plus_plus(lambda X, k, rng: classical.kmeans_plus_plus_init(X, k, rng)
                                         ).status == "reference"


# --- Exercise 2.2: the Lloyd step ------------------------------------------------------------------------------

def _assign_update(X, centers, sq_dist):
    labels = sq_dist.argmin(axis=1)
    new = np.asarray(centers, dtype=float).copy()
    for j in range(len(centers)):
        if np.any(labels == j):
            new[j] = X[labels == j].mean(axis=0)
    return labels, new


def _lloyd(X, centers):
    X, centers = np.asarray(X, float), np.asarray(centers, float)
    sq = (X ** 2).sum(1)[:, None] - 2 * X @ centers.T + (centers ** 2).sum(1)[None, :]
    return _assign_update(X, centers, sq)


def test_lloyd_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_lloyd_step(_lloyd).status == "pass"

    def broadcast(X, centers):                    # right result, (n, k, d) memory
        X, centers = np.asarray(X, float), np.asarray(centers, float)
        return _assign_update(X, centers, ((X[:, None, :] - centers[None]) ** 2).sum(-1))

    result = checks.check_lloyd_step(broadcast)
    assert result.status == "fail" and "MB" in result.message

    def nan_for_empty(X, centers):                # an empty cluster becomes NaN
        labels, _ = _lloyd(X, centers)
        return labels, np.stack([X[labels == j].mean(axis=0) for j in range(len(centers))])

    def plus_sign(X, centers):                    # + 2 x.c: assigns to the farthest-ish center
        X, centers = np.asarray(X, float), np.asarray(centers, float)
        return _assign_update(X, centers, (X ** 2).sum(1)[:, None] + 2 * X @ centers.T + (centers ** 2).sum(1))

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert checks.check_lloyd_step(nan_for_empty).status == "fail"
    assert checks.check_lloyd_step(plus_sign).status == "fail"


def test_lloyd_check_todo_and_reference():
    assert checks.check_lloyd_step(_todo).status == "todo"

    def via_distances(X, centers):                # calls the library's distance helper
        return _assign_update(np.asarray(X, float), centers, classical.squared_distances(X, centers))

    assert checks.check_lloyd_step(via_distances).status == "reference"


# --- Exercise 2.3: cluster accuracy ----------------------------------------------------------------------------

def _accuracy(y_true, y_pred):
    table = np.zeros((y_true.max() + 1, y_pred.max() + 1), dtype=np.int64)
    np.add.at(table, (y_true, y_pred), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return table[rows, cols].sum() / len(y_true)


def test_cluster_accuracy_check_passes_a_right_answer_and_fails_wrong_ones():
    assert checks.check_cluster_accuracy(_accuracy).status == "pass"

    def majority(y_true, y_pred):                 # majority class per cluster: not one-to-one
        return sum(np.bincount(y_true[y_pred == c]).max() for c in np.unique(y_pred)) / len(y_true)

    def plain(y_true, y_pred):
        return float(np.mean(y_true == y_pred))

    for wrong in (majority, plain):
        assert checks.check_cluster_accuracy(wrong).status == "fail", wrong.__name__


def test_cluster_accuracy_check_todo_and_reference():
    assert checks.check_cluster_accuracy(_todo).status == "todo"
    assert checks.check_cluster_accuracy(lambda a, b: clustering.cluster_accuracy(a, b)).status == "reference"


# --- the references in course_lib.models.classical -------------------------------------------------------------

def test_classical_kmeans_matches_sklearn_inertia_on_blobs():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    x = np.concatenate([c + rng.normal(scale=0.3, size=(50, 2)) for c in ([0, 0], [5, 0], [0, 5])])
    labels, centers, value = classical.kmeans(x, 3, seed=0, n_init=2)
    assert labels.shape == (150,) and centers.shape == (3, 2)
    assert np.isclose(value, KMeans(3, n_init=4, random_state=0).fit(x).inertia_, rtol=1e-6)


def test_classical_squared_distances_and_errors():
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(20, 4)), rng.normal(size=(3, 4))
    assert np.allclose(classical.squared_distances(x, c), ((x[:, None] - c[None]) ** 2).sum(-1))
    import pytest
    with pytest.raises(ValueError):
        classical.squared_distances(x, c[:, :3])
    with pytest.raises(ValueError):
        classical.kmeans_plus_plus_init(x, 0, rng)

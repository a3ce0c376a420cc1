"""Unit tests for course_lib.evaluation.clustering: cluster accuracy (Hungarian matching) and clustering scores."""

import itertools

import numpy as np
import pytest

from course_lib.evaluation.clustering import cluster_accuracy, clustering_scores


# --- cluster_accuracy -----------------------------------------------------------------------------

def test_cluster_accuracy_permuted_labelling_is_perfect():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    permutation = np.array([2, 3, 0, 1])
    assert cluster_accuracy(y, permutation[y]) == 1.0
    assert cluster_accuracy(y, permutation[y] + 10) == 1.0  # arbitrary ids


def test_cluster_accuracy_known_value():
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([1, 1, 0, 0, 0, 0])
    # best matching: cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 6)


def test_cluster_accuracy_invariant_to_relabelling():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, size=200)
    y_pred = rng.integers(0, 5, size=200)
    base = cluster_accuracy(y_true, y_pred)
    for _ in range(5):
        perm = rng.permutation(5)
        assert cluster_accuracy(y_true, perm[y_pred]) == pytest.approx(base)
        assert cluster_accuracy(perm[y_true], y_pred) == pytest.approx(base)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cluster_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=60)
    y_pred = np.where(rng.random(60) < 0.6, (y_true + 1) % 4, rng.integers(0, 4, size=60))
    best = max(np.mean(np.array(perm)[y_pred] == y_true) for perm in itertools.permutations(range(4)))
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(best)
    assert best > 0.25  # the case is not trivial: matching matters


def test_cluster_accuracy_more_clusters_than_classes():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 2, 2, 2, 2])  # class 0 split in two clusters
    # only one of the two clusters of class 0 can be matched: 2 + 4 correct
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(6 / 8)
    # every sample its own cluster: one sample per class matched
    assert cluster_accuracy(y_true, np.arange(8)) == pytest.approx(2 / 8)


def test_cluster_accuracy_fewer_clusters_than_classes():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(y_true, np.zeros(6, dtype=int)) == pytest.approx(2 / 6)


def test_cluster_accuracy_errors():
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="equal length"):
        cluster_accuracy([], [])
    with pytest.raises(ValueError, match="1-D"):
        cluster_accuracy(np.zeros((2, 2)), np.zeros((2, 2)))


# --- clustering_scores ----------------------------------------------------------------------------

def test_clustering_scores_agree_with_sklearn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, size=100)
    y_pred = np.where(rng.random(100) < 0.7, y_true, rng.integers(0, 3, size=100))
    scores = clustering_scores(y_true, y_pred)
    assert set(scores) == {"nmi", "ari", "acc"}
    assert all(isinstance(v, float) for v in scores.values())
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))
    assert scores["acc"] == pytest.approx(cluster_accuracy(y_true, y_pred))
    assert 0.0 < scores["nmi"] < 1.0


def test_clustering_scores_perfect_and_errors():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_scores(y, (y + 1) % 3) == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "acc": 1.0}
    with pytest.raises(ValueError):
        clustering_scores(y.reshape(2, 3), y.reshape(2, 3))

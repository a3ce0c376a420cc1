"""Unit tests for course_lib.evaluation: cluster accuracy, clustering scores, probes, label-efficiency curves."""

import itertools

import numpy as np
import pytest

from course_lib import evaluation
from course_lib.evaluation import (LabelEfficiencyResult, cluster_accuracy, clustering_scores, knn_probe,
                                   label_efficiency_curve, linear_probe, linear_probe_predict)


def blobs(n_per_class=40, n_classes=4, dim=6, spread=0.3, seed=0):
    """Well separated Gaussian blobs: (x, y)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 5
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def blob_split(n_train_per_class=30, n_test_per_class=10, seed=0, **kwargs):
    """Train / test blobs from the same centres: (x_train, y_train, x_test, y_test)."""
    x, y = blobs(n_per_class=n_train_per_class + n_test_per_class, seed=seed, **kwargs)
    n_train = n_train_per_class * len(np.unique(y))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


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


# --- probes ---------------------------------------------------------------------------------------

def test_linear_probe_on_blobs():
    x, y, x_test, y_test = blob_split(seed=0)
    acc = linear_probe(x, y, x_test, y_test)
    assert acc >= 0.95
    predictions = linear_probe_predict(x, y, x_test)
    assert predictions.shape == y_test.shape
    assert np.mean(predictions == y_test) == pytest.approx(acc)


def test_linear_probe_accepts_image_shaped_features():
    x, y = blobs(n_per_class=30, dim=8, seed=2)
    images = x.reshape(len(x), 2, 2, 2)
    assert linear_probe(images[:80], y[:80], images[80:], y[80:]) >= 0.95
    with pytest.raises(ValueError, match="n_samples"):
        linear_probe_predict(x[0], y[:1], x)


def test_knn_probe_on_blobs():
    x, y, x_test, y_test = blob_split(seed=3)
    # cosine distance: the classes differ in direction, as blobs centred away from 0 do
    acc = knn_probe(x, y, x_test, y_test, k=5)
    assert acc >= 0.95


def test_knn_probe_k_larger_than_training_set():
    x, y, x_test, y_test = blob_split(2, 5, seed=4)
    acc = knn_probe(x, y, x_test, y_test, k=50)  # capped at the 8 training examples
    assert 0.0 <= acc <= 1.0
    assert acc >= 0.9  # distance-weighted votes still find the right class


def test_probes_fail_on_random_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=200)
    assert linear_probe(x[:100], y[:100], x[100:], y[100:]) < 0.5
    assert knn_probe(x[:100], y[:100], x[100:], y[100:]) < 0.5


# --- label_efficiency_curve -----------------------------------------------------------------------

class Recorder:
    """A fit_predict that records the labels it receives and predicts with a linear probe."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_labeled, y_labeled, x_test):
        self.calls.append((np.array(x_labeled), np.array(y_labeled)))
        return linear_probe_predict(x_labeled, y_labeled, x_test)


def test_label_efficiency_curve_draws_exactly_b_per_class():
    x, y, x_test, y_test = blob_split(seed=5)
    recorder = Recorder()
    result = label_efficiency_curve(recorder, x, y, x_test, y_test, budgets=(1, 3, None), n_draws=4,
                                    seed=0, method="probe")
    # 4 draws for each finite budget, one for "all"
    assert len(recorder.calls) == 4 + 4 + 1
    for x_l, y_l in recorder.calls[:4]:
        np.testing.assert_array_equal(np.bincount(y_l, minlength=4), [1, 1, 1, 1])
    for x_l, y_l in recorder.calls[4:8]:
        np.testing.assert_array_equal(np.bincount(y_l, minlength=4), [3, 3, 3, 3])
    x_all, y_all = recorder.calls[8]
    assert len(y_all) == len(y)
    np.testing.assert_array_equal(np.sort(y_all), np.sort(y))
    # the inputs travel with their labels
    lookup = {row.tobytes(): label for row, label in zip(x, y)}
    for x_l, y_l in recorder.calls:
        assert all(lookup[row.tobytes()] == label for row, label in zip(x_l, y_l))
    # draws differ from one another (seed + draw)
    assert not np.array_equal(recorder.calls[4][0], recorder.calls[5][0])

    assert result.method == "probe"
    assert result.budgets == [1, 3, None]
    assert [len(a) for a in result.accuracies] == [4, 4, 1]
    assert result.mean(None) >= 0.95
    assert result.std(None) == 0.0
    assert result.mean(3) == pytest.approx(np.mean(result.accuracies[1]))
    assert result.std(3) == pytest.approx(np.std(result.accuracies[1]))


def test_label_efficiency_curve_is_seeded():
    x, y, x_test, y_test = blob_split(seed=5)
    a, b = Recorder(), Recorder()
    label_efficiency_curve(a, x, y, x_test, y_test, budgets=(2,), n_draws=2, seed=11)
    label_efficiency_curve(b, x, y, x_test, y_test, budgets=(2,), n_draws=2, seed=11)
    for (xa, _), (xb, _) in zip(a.calls, b.calls):
        np.testing.assert_array_equal(xa, xb)


def test_label_efficiency_result_metrics_and_table():
    result = LabelEfficiencyResult("logreg", budgets=[1, 10, None],
                                   accuracies=[[0.5, 0.7], [0.9, 0.9], [0.95]])
    assert result.mean(1) == pytest.approx(0.6)
    assert result.std(1) == pytest.approx(0.1)
    assert result.as_metrics("acc") == {"acc_1": 0.6, "acc_1_std": 0.1, "acc_10": 0.9, "acc_10_std": 0.0,
                                        "acc_all": 0.95, "acc_all_std": 0.0}
    table = result.table()
    lines = table.splitlines()
    assert lines[0] == "logreg"
    assert "labels/class" in lines[1]
    assert len(lines) == 2 + 3
    assert "0.600 ± 0.100" in lines[2] and lines[2].rstrip().endswith("2")
    assert lines[4].split()[0] == "all" and "0.950" in lines[4]


def test_label_efficiency_curve_errors():
    x, y = blobs(n_per_class=3, seed=0)

    def good(x_l, y_l, x_t):
        return np.zeros(len(x_t), dtype=int)

    with pytest.raises(ValueError, match="n_draws"):
        label_efficiency_curve(good, x, y, x, y, n_draws=0)
    with pytest.raises(ValueError, match="class"):
        label_efficiency_curve(good, x, y, x, y, budgets=(5,))  # only 3 per class
    with pytest.raises(ValueError, match="shape"):
        label_efficiency_curve(lambda a, b, c: np.zeros(2), x, y, x, y, budgets=(1,))
    with pytest.raises(ValueError, match="1-D"):
        label_efficiency_curve(good, x, y.reshape(-1, 1), x, y, budgets=(1,))


def test_module_reexports_sampler():
    # the curve uses the course's one sampler
    from course_lib.data import labeled_subset

    assert evaluation.labeled_subset is labeled_subset

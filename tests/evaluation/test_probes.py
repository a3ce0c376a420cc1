"""Unit tests for course_lib.evaluation.probes: linear and kNN probes, and their label-efficiency curves."""

import numpy as np
import pytest

from course_lib.evaluation import probes
from course_lib.evaluation.label_efficiency import results_table
from course_lib.evaluation.probes import knn_probe, linear_probe, linear_probe_predict


# --- probes ---------------------------------------------------------------------------------------

def test_linear_probe_on_blobs(blob_split):
    x, y, x_test, y_test = blob_split(seed=0)
    acc = linear_probe(x, y, x_test, y_test)
    assert acc >= 0.95
    predictions = linear_probe_predict(x, y, x_test)
    assert predictions.shape == y_test.shape
    assert np.mean(predictions == y_test) == pytest.approx(acc)


def test_linear_probe_accepts_image_shaped_features(blobs):
    x, y = blobs(n_per_class=30, dim=8, seed=2)
    images = x.reshape(len(x), 2, 2, 2)
    assert linear_probe(images[:80], y[:80], images[80:], y[80:]) >= 0.95
    with pytest.raises(ValueError, match="n_samples"):
        linear_probe_predict(x[0], y[:1], x)


def test_knn_probe_on_blobs(blob_split):
    x, y, x_test, y_test = blob_split(seed=3)
    # cosine distance: the classes differ in direction, as blobs centred away from 0 do
    acc = knn_probe(x, y, x_test, y_test, k=5)
    assert acc >= 0.95


def test_knn_probe_k_larger_than_training_set(blob_split):
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


def test_probes():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    features = rng.normal(size=(90, 4)) + 4 * np.eye(3, 4)[y]
    predictions = probes.knn_probe_predict(features[::2], y[::2], features[1::2], k=3)
    assert predictions.shape == (45,) and np.mean(predictions == y[1::2]) > 0.9
    assert np.mean(predictions == y[1::2]) == pytest.approx(knn_probe(features[::2], y[::2], features[1::2], y[1::2], k=3))
    results = probes.probe_label_efficiency(features[::2], y[::2], features[1::2], y[1::2], budgets=(1, 5), n_draws=3,
                                            name="toy")
    assert set(results) == {"linear", "knn"} and results["linear"].method == "toy (linear)"
    assert results["linear"].mean(5) > 0.8 and len(results["knn"].accuracies[0]) == 3
    table = results_table(results.values())
    assert "toy (kNN)" in table and "5 labels/class" in table and "±" in table

"""Unit tests for course_lib.models.self_training: pseudo-label selection, self-training and label spreading."""

import math

import numpy as np
import pytest

from course_lib.models.self_training import (label_spreading_predict, logistic_regression, select_pseudo_labels,
                                             self_training)

# The unlabeled pools of these tests: three overlapping Gaussian blobs in 5 dimensions.
POOL = dict(n_per_class=60, n_classes=3, dim=5, spread=1.2, scale=3.0)


# --- selection and self-training ---------------------------------------------------------------

def test_select_pseudo_labels_known_values_and_inclusive_threshold():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.25, 0.75], [0.5, 0.5]])
    idx, labels = select_pseudo_labels(probs, 0.75)
    assert idx.tolist() == [0, 2] and labels.tolist() == [0, 1]
    assert idx.dtype == np.int64 and labels.dtype == np.int64
    idx, labels = select_pseudo_labels(probs, 0.0)
    assert idx.tolist() == [0, 1, 2, 3] and labels.tolist() == [0, 0, 1, 0]  # tie -> first class
    idx, labels = select_pseudo_labels(probs, 1.0)
    assert idx.size == 0 and labels.size == 0


@pytest.mark.parametrize("probs, threshold",
                         [(np.ones(3), 0.5), (np.ones((2, 2)) / 2, 1.5), (np.ones((2, 2)) / 2, -0.1)])
def test_select_pseudo_labels_rejects_bad_input(probs, threshold):
    with pytest.raises(ValueError):
        select_pseudo_labels(probs, threshold)


def stripes(n=300, seed=0):
    """Two long vertical clusters at x = -2 and x = +2 (a vertical boundary separates them)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = np.stack([np.where(y == 0, -2.0, 2.0) + 0.5 * rng.normal(size=n), 3.0 * rng.normal(size=n)], axis=1)
    return x.astype(np.float32), y


# Two labels per class at opposite ends of the clusters: the labeled-only boundary is tilted.
STRIPE_LABELED = np.array([[-2.0, 4.0], [-1.5, 3.0], [2.0, -4.0], [1.5, -3.0]], np.float32), np.array([0, 0, 1, 1])


def test_self_training_fixes_a_tilted_boundary_and_never_reads_unlabeled_labels():
    x, y = stripes(seed=0)
    x_test, y_test = stripes(seed=100)
    x_l, y_l = STRIPE_LABELED
    make = lambda: logistic_regression(C=10.0)  # noqa: E731
    baseline = np.mean(make().fit(x_l, y_l).predict(x_test) == y_test)
    result = self_training(make, x_l, y_l, x, threshold=0.9, n_rounds=5, y_unlabeled=y)
    assert result.history[0]["n_pseudo"] == 0
    assert all(h["n_pseudo"] > 0 for h in result.history[1:])
    assert baseline < 0.9 and np.mean(result.predict(x_test) == y_test) > 0.98
    # confirmation bias: taking every prediction at once just re-learns the tilted boundary
    everything = self_training(make, x_l, y_l, x, threshold=0.0, n_rounds=5)
    assert np.mean(everything.predict(x_test) == y_test) < 0.95
    # The labels of the pool are diagnostics only: scrambling them changes nothing but the diagnostic.
    scrambled = self_training(make, x_l, y_l, x, threshold=0.9, n_rounds=5,
                              y_unlabeled=np.random.default_rng(0).permutation(y))
    assert np.array_equal(scrambled.predict(x_test), result.predict(x_test))
    assert np.array_equal(scrambled.pseudo_indices, result.pseudo_indices)
    assert result.history[-1]["pseudo_accuracy"] > 0.95 > scrambled.history[-1]["pseudo_accuracy"]


def test_self_training_threshold_zero_takes_the_whole_pool_and_stops_at_a_fixed_point(blobs):
    x, y = blobs(seed=1, **POOL)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
    result = self_training(logistic_regression, x[labeled], y[labeled], x, threshold=0.0,
                           n_rounds=10)
    assert result.history[1]["n_pseudo"] == len(x)
    assert len(result.history) < 11  # the selection stopped changing before the round limit
    assert math.isnan(result.history[1]["pseudo_accuracy"])  # no labels given for diagnostics


def test_self_training_uses_the_given_selection_function(blobs):
    x, y = blobs(seed=2, **POOL)
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(3)])
    calls = []

    def select_nothing(probabilities, threshold):
        calls.append((probabilities.shape, threshold))
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    result = self_training(logistic_regression, x[labeled], y[labeled], x, threshold=0.42,
                           n_rounds=3, select=select_nothing)
    assert calls[0] == ((len(x), 3), 0.42)
    assert len(result.pseudo_indices) == 0


# --- label spreading ----------------------------------------------------------------------------

def test_label_spreading_beats_the_labeled_points_alone(blobs):
    x, y = blobs(**{**POOL, "n_per_class": 150, "spread": 1.0}, seed=5)
    x, y, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
    labeled = np.concatenate([np.flatnonzero(y == c)[:1] for c in range(3)])
    predictions = label_spreading_predict(x[labeled], y[labeled], x, x_test, n_neighbors=7)
    assert predictions.dtype == np.int64 and predictions.shape == y_test.shape
    assert np.mean(predictions == y_test) > 0.9


def test_label_spreading_without_label_mass_falls_back_to_the_majority_class():
    # two far-apart groups; only the first has labels, so the second component never receives label mass
    rng = np.random.default_rng(0)
    near = rng.normal(size=(20, 2)).astype(np.float32)
    far = (rng.normal(size=(20, 2)) + 1000).astype(np.float32)
    y_labeled = np.array([1, 1, 2])
    predictions = label_spreading_predict(near[:3], y_labeled, np.concatenate([near, far]), far[:5], n_neighbors=3)
    assert predictions.tolist() == [1] * 5


def test_pseudo_label_quality_counts_and_accuracy():
    from course_lib.models.self_training import pseudo_label_quality

    probs = np.array([[0.96, 0.04], [0.30, 0.70], [0.55, 0.45], [0.10, 0.90]])
    out = pseudo_label_quality(probs, np.array([0, 0, 0, 1]), (0.0, 0.9, 0.99))
    assert out[0.0] == {"mask_rate": 1.0, "accuracy": 0.75}
    assert out[0.9] == {"mask_rate": 0.5, "accuracy": 1.0}
    assert out[0.99]["mask_rate"] == 0.0 and np.isnan(out[0.99]["accuracy"])
    with pytest.raises(ValueError):
        pseudo_label_quality(probs, np.array([0, 1]), (0.5,))
    with pytest.raises(ValueError):
        pseudo_label_quality(probs, np.array([0, 0, 0, 1]), (1.5,))

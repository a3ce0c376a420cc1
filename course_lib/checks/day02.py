"""Self-checks for Day 02 (clustering): k-means++ initialisation, the Lloyd step, cluster accuracy."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day02.kmeans_pp": Hints(
        todo="Implement the k-means++ initialisation described above the exercise cell.",
        tiers=("first center: X[rng.integers(n)]; then d2 = min squared distance of each point to the "
                          "chosen centers; next center: X[rng.choice(n, p=d2 / d2.sum())]",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day02.lloyd_step": Hints(
        todo="Implement the one Lloyd iteration described above the exercise cell.",
        tiers=("distances: ((X[:, None, :] - centers[None]) ** 2).sum(-1); labels = argmin over axis 1; "
                          "new center j = X[labels == j].mean(0) if any point has label j, else the old center",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day02.cluster_accuracy": Hints(
        todo="Implement the cluster accuracy described above the exercise cell.",
        tiers=("build the contingency table C[class, cluster]; rows, cols = "
                          "scipy.optimize.linear_sum_assignment(C, maximize=True); return C[rows, cols].sum() / n",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _blobs(seed: int = 0, per_blob: int = 30):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    x = np.concatenate([c + rng.normal(scale=0.5, size=(per_blob, 2)) for c in centers])
    return x, np.repeat(np.arange(4), per_blob)


def check_kmeans_plus_plus(kmeans_plus_plus_init):
    """Check ``kmeans_plus_plus_init(X, k, rng) -> centers (k, d)`` (Exercise 2.1)."""
    def test():
        x, y = _blobs()
        for seed in range(5):
            centers = np.asarray(kmeans_plus_plus_init(x, 4, np.random.default_rng(seed)))
            expect(centers.shape == (4, 2), f"expected centers of shape (4, 2), got {centers.shape}")
            rows = [np.flatnonzero(np.all(np.isclose(x, c), axis=1)) for c in centers]
            expect(all(len(r) for r in rows), "every initial center must be one of the data points")
            blobs = {int(y[r[0]]) for r in rows}
            expect(len(blobs) == 4, f"seed {seed}: k-means++ should pick one center in each of 4 far-apart blobs, "
                                    f"picked blobs {sorted(blobs)} (are you sampling proportional to D(x)^2?)")
        a = np.asarray(kmeans_plus_plus_init(x, 4, np.random.default_rng(7)))
        b = np.asarray(kmeans_plus_plus_init(x, 4, np.random.default_rng(7)))
        expect(np.array_equal(a, b), "the same rng seed must give the same centers (use only the rng passed in)")
        return "centers are data points, one per well-separated blob, reproducible"

    return run_check("day02.kmeans_pp", "Exercise 2.1 - k-means++ initialisation", test)


def check_lloyd_step(lloyd_step):
    """Check ``lloyd_step(X, centers) -> (labels, new_centers)`` (Exercise 2.2)."""
    def test():
        x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0], [9.0, 10.0]])
        labels, centers = lloyd_step(x, np.array([[1.0, 1.0], [8.0, 8.0]]))
        labels, centers = np.asarray(labels), np.asarray(centers, dtype=float)
        expect(labels.shape == (5,), f"labels should have shape (5,), got {labels.shape}")
        expect(labels.tolist() == [0, 0, 1, 1, 1], f"assignment step: expected [0, 0, 1, 1, 1], got {labels.tolist()}")
        expect(centers.shape == (2, 2), f"new centers should have shape (2, 2), got {centers.shape}")
        expect(np.allclose(centers, [[0.0, 0.5], [29 / 3, 31 / 3]]),
               f"update step: each center should be the mean of its points, got {centers.tolist()}")
        rng = np.random.default_rng(1)
        big, init = rng.normal(size=(200, 5)), rng.normal(size=(6, 5))
        labels, centers = lloyd_step(big, init)
        reference = np.argmin(((big[:, None, :] - init[None]) ** 2).sum(-1), axis=1)
        expect(np.array_equal(np.asarray(labels), reference), "assignments disagree with the nearest-center rule")
        empty_init = np.array([[0.0, 0.0], [100.0, 100.0]])
        _, kept = lloyd_step(x[:2], empty_init)
        expect(np.allclose(np.asarray(kept)[1], [100.0, 100.0]),
               "a center with no points assigned should stay where it was (not become NaN)")
        return "assignment and update steps match the reference; empty clusters keep their center"

    return run_check("day02.lloyd_step", "Exercise 2.2 - one Lloyd iteration", test)


def check_cluster_accuracy(cluster_accuracy):
    """Check ``cluster_accuracy(y_true, y_pred) -> float`` (Exercise 2.3), against course_lib's Hungarian version."""
    def test():
        from course_lib.evaluation.clustering import cluster_accuracy as reference

        y = np.array([0, 0, 1, 1, 2, 2])
        expect(np.isclose(cluster_accuracy(y, np.array([2, 2, 0, 0, 1, 1])), 1.0),
               "a relabelled perfect clustering must score 1.0")
        expect(np.isclose(cluster_accuracy(y, np.array([1, 1, 1, 1, 0, 0])), 4 / 6),
               "two classes merged into one cluster: expected 4/6")
        rng = np.random.default_rng(0)
        for _ in range(5):
            y_true, y_pred = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
            got, want = float(cluster_accuracy(y_true, y_pred)), reference(y_true, y_pred)
            expect(np.isclose(got, want), f"on random labels got {got:.4f}, the Hungarian matching gives {want:.4f}")
        return "matches the Hungarian-matching reference, also with more clusters than classes"

    return run_check("day02.cluster_accuracy", "Exercise 2.3 - cluster accuracy", test)

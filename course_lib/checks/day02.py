"""Self-checks for Day 02 (clustering): k-means++ initialisation, the Lloyd step, cluster accuracy.

The Day 02 notebook's k-means (:func:`course_lib.models.classical.kmeans`) runs on the student's
k-means++ seeding and Lloyd step, and its scores use the student's cluster accuracy.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)


HINTS = register_hints({
    "day02.kmeans_pp": Hints(
        todo="Write kmeans_plus_plus_init(X, k, rng): k initial centers chosen among the rows of X by k-means++.",
        tiers=("The first center is a row picked uniformly at random. Every next center is picked at random "
               "too, but far-away points are more likely: the chance of a point is proportional to its squared "
               "distance to the nearest center chosen so far.",
               "Keep an array D2 with, for every point, the squared distance to its nearest chosen center; the "
               "probabilities are D2 divided by its sum, and the generator's choice method accepts them through "
               "its p argument. After each new center, D2 becomes the element-wise minimum of itself and the "
               "squared distances to the new center.",
               "Use only the rng you are given (never np.random directly), return the rows of X themselves (not "
               "copies moved a little), and sample: always taking the farthest point is a different algorithm "
               "that chases outliers.")),
    "day02.lloyd_step": Hints(
        todo="Write lloyd_step(X, centers) -> (labels, new_centers): the assignment step, then the update step, "
             "without building an (n, k, d) array.",
        tiers=("Assignment: every point gets the index of its nearest center. Update: every center moves to the "
               "mean of the points assigned to it.",
               "Expand the square: the squared distance between x and c is |x|^2 - 2 x.c + |c|^2. The middle "
               "term for every (point, center) pair at once is one matrix product of X (n, d) with the "
               "transposed centers (d, k); the two squared norms are a column and a row added to it, giving "
               "(n, k) without ever forming the (n, k, d) differences (250 MB on 4,000 MNIST images).",
               "A center that receives no point would be the mean of nothing (NaN): keep its old position. And "
               "return new centers as floats, even if X holds integers.")),
    "day02.cluster_accuracy": Hints(
        todo="Write cluster_accuracy(y_true, y_pred): the accuracy under the best one-to-one matching of clusters "
             "to classes.",
        tiers=("Cluster ids are arbitrary names. Count how many points of each class fall in each cluster "
               "(the contingency table); the best matching pairs each cluster with at most one class so that "
               "the matched counts add up to as much as possible.",
               "scipy.optimize.linear_sum_assignment solves that assignment problem (the Hungarian algorithm); "
               "with maximize=True it returns the rows and columns of the best matching, and the accuracy is the "
               "sum of the matched counts divided by the number of points.",
               "Giving each cluster its majority class is not a one-to-one matching: two clusters could both be "
               "matched to the same class. And with more clusters than classes, the unmatched clusters count "
               "as errors.")),
})


def _blobs(seed: int = 0, per_blob: int = 30):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    x = np.concatenate([c + rng.normal(scale=0.5, size=(per_blob, 2)) for c in centers])
    return x, np.repeat(np.arange(4), per_blob)


#: k-means++ on the three points 0, 1, 3 with k = 2: the probability of each unordered pair of centers
#: (first center uniform, second proportional to D^2): {0,1}: (0.1 + 0.2) / 3, {0,3}: (0.9 + 9/13) / 3,
#: {1,3}: (0.8 + 4/13) / 3.
_PAIR_PROBABILITIES = {(0.0, 1.0): 0.1, (0.0, 3.0): (0.9 + 9 / 13) / 3, (1.0, 3.0): (0.8 + 4 / 13) / 3}


def check_kmeans_plus_plus(kmeans_plus_plus_init):
    """Check ``kmeans_plus_plus_init(X, k, rng) -> centers (k, d)`` (Exercise 2.1).

    Expected: centers are rows of ``X``, one per well-separated blob, reproducible from the rng, and the
    second center is drawn with probability proportional to ``D(x)^2`` (frequencies over 3,000 draws on
    three points within 0.03 of the exact probabilities). The reference is
    ``course_lib.models.classical.kmeans_plus_plus_init``.
    """
    from course_lib.models import classical

    spy = ReferenceSpy(classical.kmeans_plus_plus_init)
    init = spy.wrap(kmeans_plus_plus_init)

    def test():
        x, y = _blobs()
        for seed in range(5):
            centers = np.asarray(init(x, 4, np.random.default_rng(seed)))
            expect(centers.shape == (4, 2), f"expected centers of shape (4, 2), got {centers.shape}")
            rows = [np.flatnonzero(np.all(np.isclose(x, c), axis=1)) for c in centers]
            expect(all(len(r) for r in rows), "every initial center must be one of the data points")
            blobs = {int(y[r[0]]) for r in rows}
            expect(len(blobs) == 4, f"seed {seed}: k-means++ should pick one center in each of 4 far-apart blobs, "
                                    f"picked blobs {sorted(blobs)}")
        a = np.asarray(init(x, 4, np.random.default_rng(7)))
        b = np.asarray(init(x, 4, np.random.default_rng(7)))
        expect(np.array_equal(a, b), "the same rng seed must give the same centers (use only the rng passed in)")
        points = np.array([[0.0], [1.0], [3.0]])
        rng = np.random.default_rng(2024)
        n_draws = 3000
        counts = {pair: 0 for pair in _PAIR_PROBABILITIES}
        for _ in range(n_draws):
            pair = tuple(sorted(float(v) for v in np.asarray(init(points, 2, rng)).ravel()))
            expect(pair in counts, f"on the points 0, 1, 3 with k = 2 the centers must be two different points, "
                                   f"got {list(pair)}")
            counts[pair] += 1
        for pair, p in _PAIR_PROBABILITIES.items():
            frequency = counts[pair] / n_draws
            expect(abs(frequency - p) < 0.03,
                   f"on the points 0, 1, 3 with k = 2, the pair of centers {pair} came up {frequency:.3f} of the "
                   f"time over {n_draws} draws; k-means++ gives it probability {p:.3f} (are you sampling "
                   "proportional to the SQUARED distance, and drawing the first center uniformly?)")
        return "centers are data points, one per blob, reproducible, and drawn with probability proportional to D^2"

    return run_check("day02.kmeans_pp", "Exercise 2.1 - k-means++ initialisation", test, spy=spy)


def _peak_memory(fn, *args):
    """``(result, peak bytes)`` of ``fn(*args)`` as seen by tracemalloc (NumPy reports its buffers to it)."""
    import tracemalloc

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        result = fn(*args)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if started:
            tracemalloc.stop()
    return result, peak


def check_lloyd_step(lloyd_step):
    """Check ``lloyd_step(X, centers) -> (labels, new_centers)`` (Exercise 2.2).

    Expected: the nearest-center assignment and the mean update on hand-made and random data, empty
    clusters keep their center, and the memory the step allocates stays well below the ``(n, k, d)`` array
    of differences (under a quarter of it on 3,000 x 32 x 256). The references are
    ``course_lib.models.classical.lloyd_step`` and ``squared_distances``.
    """
    from course_lib.models import classical

    spy = ReferenceSpy(classical.lloyd_step, classical.squared_distances)
    step = spy.wrap(lloyd_step)

    def test():
        x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0], [9.0, 10.0]])
        labels, centers = step(x, np.array([[1.0, 1.0], [8.0, 8.0]]))
        labels, centers = np.asarray(labels), np.asarray(centers, dtype=float)
        expect(labels.shape == (5,), f"labels should have shape (5,), got {labels.shape}")
        expect(labels.tolist() == [0, 0, 1, 1, 1], f"assignment step: expected [0, 0, 1, 1, 1], got {labels.tolist()}")
        expect(centers.shape == (2, 2), f"new centers should have shape (2, 2), got {centers.shape}")
        expect(np.allclose(centers, [[0.0, 0.5], [29 / 3, 31 / 3]]),
               f"update step: each center should be the mean of its points, got {centers.tolist()}")
        rng = np.random.default_rng(1)
        big, init = rng.normal(size=(200, 5)), rng.normal(size=(6, 5))
        labels, centers = step(big, init)
        want_labels, want_centers = classical.lloyd_step(big, init)
        expect(np.array_equal(np.asarray(labels), want_labels), "assignments disagree with the nearest-center rule "
                                                               "on 200 random points")
        expect(np.allclose(np.asarray(centers, dtype=float), want_centers), "updated centers are not the means of "
                                                                            "their points on 200 random points")
        empty_init = np.array([[0.0, 0.0], [100.0, 100.0]])
        _, kept = step(x[:2], empty_init)
        expect(np.allclose(np.asarray(kept, dtype=float)[1], [100.0, 100.0]),
               "a center with no points assigned should stay where it was (not become NaN)")
        n, k, d = 3000, 32, 256
        many, many_centers = rng.random((n, d)), rng.random((k, d))
        (labels, _), peak = _peak_memory(step, many, many_centers)
        differences = n * k * d * 8
        expect(peak < differences / 4,
               f"on {n:,} points x {k} centers x {d} features your step allocated {peak / 1e6:.0f} MB at its peak, "
               f"about the {differences / 1e6:.0f} MB of the (n, k, d) array of differences: compute the distances "
               "without it (see the hints)")
        expect(np.array_equal(np.asarray(labels), classical.lloyd_step(many, many_centers)[0]),
               "assignments disagree with the nearest-center rule on 3,000 random points")
        return (f"assignment and update match the reference, empty clusters keep their center, peak memory "
                f"{peak / 1e6:.1f} MB (the (n, k, d) differences would take {differences / 1e6:.0f} MB)")

    return run_check("day02.lloyd_step", "Exercise 2.2 - one Lloyd iteration", test, spy=spy)


def check_cluster_accuracy(cluster_accuracy):
    """Check ``cluster_accuracy(y_true, y_pred) -> float`` (Exercise 2.3), against course_lib's Hungarian version.

    The reference is ``course_lib.evaluation.clustering.cluster_accuracy``.
    """
    from course_lib.evaluation import clustering

    reference = clustering.cluster_accuracy
    spy = ReferenceSpy(reference)
    accuracy = spy.wrap(cluster_accuracy)

    def test():
        y = np.array([0, 0, 1, 1, 2, 2])
        expect(np.isclose(accuracy(y, np.array([2, 2, 0, 0, 1, 1])), 1.0),
               "a relabelled perfect clustering must score 1.0")
        expect(np.isclose(accuracy(y, np.array([1, 1, 1, 1, 0, 0])), 4 / 6),
               "two classes merged into one cluster: expected 4/6")
        rng = np.random.default_rng(0)
        for _ in range(5):
            y_true, y_pred = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
            got, want = float(accuracy(y_true, y_pred)), reference(y_true, y_pred)
            expect(np.isclose(got, want), f"on random labels (5 classes, 7 clusters) got {got:.4f}, the best "
                                          f"one-to-one matching gives {want:.4f}")
        return "matches the Hungarian-matching reference, also with more clusters than classes"

    return run_check("day02.cluster_accuracy", "Exercise 2.3 - cluster accuracy", test, spy=spy)

"""Classical learning without labels in NumPy: k-means (Day 02) and PCA (Day 03).

These are the reference implementations of the Day 02 and Day 03 exercises (the self-checks compare a
student's answer with them, and a notebook falls back to them where an exercise is not done yet), and
the loop that turns the k-means exercises into a clustering algorithm.

- :func:`kmeans_plus_plus_init`: k-means++ seeding (Arthur & Vassilvitskii, "k-means++: the advantages of
  careful seeding", SODA 2007).
- :func:`squared_distances`: all point-to-center squared Euclidean distances with one matrix product.
- :func:`lloyd_step`: one iteration of Lloyd's algorithm (Lloyd, "Least squares quantization in PCM",
  IEEE Transactions on Information Theory, 1982): assignment, then update.
- :func:`kmeans`: seeding, Lloyd iterations until the centers stop moving, restarts; the best run by inertia.
- :func:`pca_svd`, :func:`pca_reconstruct`: principal component analysis by the singular value decomposition
  of the centered data, and the reconstruction from the top components. PCA: Pearson, "On Lines and Planes of
  Closest Fit to Systems of Points in Space", Philosophical Magazine, 1901 (the best-fitting subspace);
  Hotelling, "Analysis of a Complex of Statistical Variables into Principal Components", Journal of
  Educational Psychology, 1933 (the directions of largest variance); the truncated SVD as the best
  low-rank approximation: Eckart & Young, "The Approximation of One Matrix by Another of Lower Rank",
  Psychometrika, 1936.
- :func:`components_for_variance`: the smallest number of components that explain a given fraction of the
  variance.

Everything works on float arrays ``(n_samples, n_features)`` and returns NumPy arrays; nothing here needs Keras.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _matrix(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {x.shape}")
    return x


def kmeans_plus_plus_init(X, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: ``k`` initial centers chosen among the rows of ``X``.

    The first center is a uniformly random row; every next one is row ``i`` with probability
    ``D(x_i)^2 / sum_j D(x_j)^2``, where ``D(x)`` is the distance from ``x`` to the nearest center chosen so
    far. If every point already coincides with a center (``sum D^2 = 0``), the next one is uniform.
    In expectation the inertia of the seeding alone is within a factor ``8 (ln k + 2)`` of the optimum
    (Arthur & Vassilvitskii, SODA 2007, Theorem 3.1).

    Args:
        X: float array ``(n_samples, n_features)``.
        k: number of centers, ``1 <= k <= n_samples``.
        rng: the ``np.random.Generator`` to draw from (the only source of randomness).

    Returns:
        float64 array ``(k, n_features)`` whose rows are rows of ``X``.

    Raises:
        ValueError: ``X`` not 2-D or empty, or ``k`` outside ``[1, n_samples]``.
    """
    X = _matrix("X", X)
    n = len(X)
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be between 1 and the number of samples {n}, got {k}")
    centers = [X[rng.integers(n)]]
    d2 = ((X - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, int(k)):
        total = d2.sum()
        p = d2 / total if total > 0 else np.full(n, 1.0 / n)
        centers.append(X[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((X - centers[-1]) ** 2).sum(axis=1))
    return np.stack(centers)


def squared_distances(X, centers) -> np.ndarray:
    """Squared Euclidean distances between every row of ``X`` and every center, ``(n_samples, k)``.

    Uses ``||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2``: one ``(n, d) x (d, k)`` matrix product and
    ``O(n k)`` memory, instead of the ``(n, k, d)`` array of differences that broadcasting would build
    (250 MB per call for 4,000 MNIST images and 10 centers). Round-off can make a distance slightly
    negative; it is clipped at 0.

    Args:
        X: float array ``(n_samples, n_features)``.
        centers: float array ``(k, n_features)``.

    Returns:
        float64 array ``(n_samples, k)``, non-negative.

    Raises:
        ValueError: arrays that are not 2-D or whose numbers of features differ.
    """
    X, centers = _matrix("X", X), _matrix("centers", centers)
    if X.shape[1] != centers.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, centers {centers.shape[1]}")
    d2 = (np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ centers.T)
          + np.einsum("ij,ij->i", centers, centers)[None, :])
    return np.maximum(d2, 0.0)


def lloyd_step(X, centers) -> tuple[np.ndarray, np.ndarray]:
    """One iteration of Lloyd's algorithm: assign every point to its nearest center, then move every
    center to the mean of its points. A center that receives no point stays where it was.

    Args:
        X: float array ``(n_samples, n_features)``.
        centers: float array ``(k, n_features)``.

    Returns:
        ``(labels, new_centers)``: int64 ``(n_samples,)`` indices of the nearest center (ties: the lowest
        index) and float64 ``(k, n_features)``.

    Raises:
        ValueError: see :func:`squared_distances`.
    """
    X = _matrix("X", X)
    centers = _matrix("centers", centers)
    labels = squared_distances(X, centers).argmin(axis=1).astype(np.int64)
    k = len(centers)
    membership = (labels[None, :] == np.arange(k)[:, None]).astype(np.float64)   # (k, n) one-hot
    counts = membership.sum(axis=1)
    sums = membership @ X                                                          # (k, d)
    new_centers = centers.copy()
    filled = counts > 0
    new_centers[filled] = sums[filled] / counts[filled, None]
    return labels, new_centers


def inertia(X, centers, labels) -> float:
    """The k-means objective: the sum over points of the squared distance to their center.

    Args:
        X: float array ``(n_samples, n_features)``; centers: ``(k, n_features)``; labels: ints ``(n_samples,)``.

    Returns:
        The within-cluster sum of squares (float, in squared units of ``X``).

    Raises:
        ValueError: ``X`` or ``centers`` not a non-empty 2-D array, or shapes that do not broadcast (different
            numbers of features, or of labels and samples).
        IndexError: a label outside ``[0, k)``, or labels that are not integers.
    """
    X, centers = _matrix("X", X), _matrix("centers", centers)
    return float(((X - centers[np.asarray(labels)]) ** 2).sum())


def kmeans(X, k: int, seed: int = 0, n_init: int = 3, max_iter: int = 100, tol: float = 1e-6,
           init: Callable | None = None, step: Callable | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means: seed, iterate Lloyd steps until the centers stop moving, restart, keep the lowest inertia.

    ``init`` and ``step`` are the two pieces a student writes on Day 02 (default: this module's
    :func:`kmeans_plus_plus_init` and :func:`lloyd_step`), so the same loop runs on either.

    Args:
        X: float array ``(n_samples, n_features)``.
        k: number of clusters.
        seed: seed of the ``np.random.Generator`` shared by all restarts.
        n_init: number of restarts (>= 1).
        max_iter: Lloyd iterations per restart at most.
        tol: a run stops when no center moved by more than ``tol`` in any coordinate.
        init: ``init(X, k, rng) -> (k, d)`` centers.
        step: ``step(X, centers) -> (labels, new_centers)``.

    Returns:
        ``(labels, centers, inertia)`` of the best run: int ``(n_samples,)``, float ``(k, n_features)``, float.

    Raises:
        ValueError: ``n_init`` or ``max_iter`` < 1, or the errors of ``init`` / ``step``.
    """
    if n_init < 1 or max_iter < 1:
        raise ValueError(f"n_init and max_iter must be >= 1, got {n_init} and {max_iter}")
    init = kmeans_plus_plus_init if init is None else init
    step = lloyd_step if step is None else step
    X = _matrix("X", X)
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        centers = np.asarray(init(X, k, rng), dtype=np.float64)
        for _ in range(max_iter):
            _, new_centers = step(X, centers)
            new_centers = np.asarray(new_centers, dtype=np.float64)
            shift = float(np.abs(new_centers - centers).max())
            centers = new_centers
            if shift <= tol:
                break
        labels = np.asarray(step(X, centers)[0])
        value = inertia(X, centers, labels)
        if best is None or value < best[2]:
            best = (labels, centers, value)
    return best


def pca_svd(X, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal component analysis by the thin SVD of the centered data.

    With ``X - mean = U S V^T``, the principal directions are the rows of ``V^T`` and the variance along
    direction ``j`` is ``s_j^2 / (n - 1)`` (the sample covariance's eigenvalue), as in
    ``sklearn.decomposition.PCA``'s ``explained_variance_``.

    Args:
        X: float array ``(n_samples, n_features)`` with ``n_samples >= 2``.
        k: number of components, ``1 <= k <= min(n_samples, n_features)``.

    Returns:
        ``(components, explained_variance, mean)``: float64 ``(k, n_features)`` orthonormal rows (sign as the
        SVD returns it), ``(k,)`` in decreasing order, and ``(n_features,)``.

    Raises:
        ValueError: ``X`` not 2-D, fewer than 2 samples, or ``k`` out of range.
    """
    X = _matrix("X", X)
    n, d = X.shape
    if n < 2 or not 1 <= int(k) <= min(n, d):
        raise ValueError(f"need n_samples >= 2 and 1 <= k <= {min(n, d)}, got n_samples {n}, k {k}")
    mean = X.mean(axis=0)
    _, singular_values, vt = np.linalg.svd(X - mean, full_matrices=False)
    return vt[:int(k)], (singular_values ** 2 / (n - 1))[:int(k)], mean


def pca_reconstruct(X, components, mean) -> np.ndarray:
    """Project ``X`` on the components around ``mean`` and map the codes back to input space.

    ``X_hat = (X - mean) W^T W + mean`` for ``W = components`` (orthonormal rows): the orthogonal projection
    on the affine subspace the components span, as ``PCA.inverse_transform(PCA.transform(X))``.

    Args:
        X: float array ``(n_samples, n_features)``.
        components: ``(k, n_features)`` orthonormal rows.
        mean: ``(n_features,)``.

    Returns:
        float64 array ``(n_samples, n_features)``.

    Raises:
        ValueError: ``X`` or ``components`` not a non-empty 2-D array, or numbers of features that differ
            between ``X``, ``components`` and ``mean``.
    """
    X, components = _matrix("X", X), _matrix("components", components)
    mean = np.asarray(mean, dtype=np.float64)
    codes = (X - mean) @ components.T
    return codes @ components + mean


def components_for_variance(explained_variance, fraction: float = 0.9) -> int:
    """The smallest ``k`` such that the top ``k`` components explain at least ``fraction`` of the variance.

    Args:
        explained_variance: the variances of ALL components, ``(min(n, d),)`` (not only the top ones: the
            total variance is their sum), any order.
        fraction: in ``(0, 1]``.

    Returns:
        ``k`` (an int between 1 and the number of components).

    Raises:
        ValueError: ``fraction`` outside ``(0, 1]``, or no positive variance.
    """
    variance = np.sort(np.asarray(explained_variance, dtype=np.float64).ravel())[::-1]
    if not 0 < fraction <= 1 or variance.size == 0 or variance.sum() <= 0:
        raise ValueError(f"need 0 < fraction <= 1 and some positive variance, got fraction {fraction}")
    cumulative = np.cumsum(variance) / variance.sum()
    return int(min(np.searchsorted(cumulative, fraction - 1e-12) + 1, variance.size))

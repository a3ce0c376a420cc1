"""Scoring a clustering against the true classes (Day 02 and every embedding of the course).

- :func:`cluster_accuracy`: accuracy after the best one-to-one matching of clusters to classes
  (the Hungarian algorithm, Kuhn, Naval Research Logistics Quarterly, 1955, via
  ``scipy.optimize.linear_sum_assignment``).
- :func:`clustering_scores`: NMI, ARI and cluster accuracy together (scikit-learn's NMI and ARI).
- :func:`embed_and_cluster`: the "(not too) deep clustering" recipe of McConville et al. (N2D, ICPR 2020)
  with t-SNE as the manifold learner: features -> (PCA) -> a low-dimensional t-SNE map -> k-means or a
  Gaussian mixture. Used on pixels (Day 03's classical baseline) and on learned features (later days).
"""

from __future__ import annotations

import numpy as np

from course_lib.evaluation._validate import labels_1d


def cluster_accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose cluster maps to their class under the best one-to-one matching.

    Cluster ids are arbitrary, so plain accuracy of ``y_pred`` against ``y_true`` is meaningless;
    the matching that maximises agreement is found with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) on the contingency table. With more clusters than
    classes, unmatched clusters count as errors.

    Args:
        y_true: int array ``(n_samples,)`` of class labels.
        y_pred: int array ``(n_samples,)`` of cluster ids.

    Returns:
        Accuracy in [0, 1].

    Raises:
        ValueError: arrays of different lengths, not 1-D, or empty.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    y_true, y_pred = labels_1d("y_true", y_true), labels_1d("y_pred", y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of equal length, got {len(y_true)} and {len(y_pred)}")
    table = contingency_matrix(y_true, y_pred)  # (n_classes, n_clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y_true))


def clustering_scores(y_true, y_pred) -> dict[str, float]:
    """NMI, ARI and cluster accuracy of a clustering against the true classes.

    NMI: normalized mutual information (arithmetic normalisation, scikit-learn's default; Strehl &
    Ghosh, JMLR 2002). ARI: adjusted Rand index (Hubert & Arabie, Journal of Classification, 1985).
    ACC: :func:`cluster_accuracy`.

    Args:
        y_true: int array ``(n,)`` of class labels.
        y_pred: int array ``(n,)`` of cluster ids (arbitrary numbering).

    Returns:
        ``{"nmi": ..., "ari": ..., "acc": ...}``, floats (NMI and ACC in [0, 1], ARI in [-0.5, 1]).

    Raises:
        ValueError: arrays that are not 1-D, of different lengths, or empty.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    y_true, y_pred = labels_1d("y_true", y_true), labels_1d("y_pred", y_pred)
    return {"nmi": float(normalized_mutual_info_score(y_true, y_pred)),
            "ari": float(adjusted_rand_score(y_true, y_pred)),
            "acc": cluster_accuracy(y_true, y_pred)}


def embed_and_cluster(features, n_clusters: int, method: str = "kmeans", pca_components: int | None = 50,
                      n_components: int = 2, perplexity: float = 30.0, seed: int = 0,
                      n_init: int = 10, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``features`` in a t-SNE map of them: features -> PCA -> t-SNE -> k-means or a Gaussian mixture.

    N2D (McConville, Santos-Rodriguez, Piechocki & Craddock, "N2D: (Not Too) Deep Clustering via Clustering
    the Local Manifold of an Autoencoded Embedding", ICPR 2020) clusters a manifold-learning embedding
    (UMAP there) of autoencoder codes; here the manifold learner is scikit-learn's t-SNE (van der Maaten &
    Hinton, JMLR 2008) and the features can be anything: pixels, PCA codes, autoencoder codes, SimCLR
    embeddings. PCA to ``pca_components`` dimensions first is the usual t-SNE preprocessing (faster
    neighbour search, less pixel noise).

    t-SNE has no ``transform`` for new points: the method is *transductive*. Every point to be scored must be
    in ``features`` (e.g. the test images, or train + test together, scoring the test part).

    Args:
        features: float array ``(n_samples, ...)`` (flattened to ``(n_samples, d)``), ``n_samples >= 2 * n_clusters``.
        n_clusters: number of clusters (>= 2).
        method: ``"kmeans"`` (``sklearn.cluster.KMeans``) or ``"gmm"`` (``GaussianMixture``, full covariance).
        pca_components: PCA dimension before t-SNE (None or >= d: no PCA).
        n_components: dimension of the t-SNE map (2 or 3; Barnes-Hut t-SNE allows at most 3).
        perplexity: t-SNE perplexity (must be < ``n_samples``).
        seed: ``random_state`` of PCA, t-SNE and the clustering.
        n_init: restarts of the clustering.
        max_iter: t-SNE optimisation steps (scikit-learn's default, 1000); the time grows with them.

    Returns:
        ``(labels, embedding)``: int64 ``(n_samples,)`` cluster ids and float32 ``(n_samples, n_components)``.

    Raises:
        ValueError: an unknown ``method``, ``n_clusters`` < 2, or too few samples.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from course_lib.evaluation._validate import features_2d

    if method not in ("kmeans", "gmm"):
        raise ValueError(f"method must be 'kmeans' or 'gmm', got {method!r}")
    x = features_2d("features", features).astype(np.float32, copy=False)
    if n_clusters < 2 or len(x) < 2 * n_clusters:
        raise ValueError(f"need n_clusters >= 2 and at least 2 * n_clusters samples, got {n_clusters} and {len(x)}")
    if pca_components is not None and pca_components < min(x.shape):
        x = PCA(pca_components, random_state=seed).fit_transform(x)
    embedding = TSNE(n_components=n_components, perplexity=perplexity, init="pca", max_iter=max_iter,
                     random_state=seed).fit_transform(x).astype(np.float32)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters, n_init=n_init, random_state=seed).fit_predict(embedding)
    else:
        from sklearn.mixture import GaussianMixture

        labels = GaussianMixture(n_clusters, covariance_type="full", n_init=n_init,
                                 random_state=seed).fit_predict(embedding)
    return np.asarray(labels, dtype=np.int64), embedding

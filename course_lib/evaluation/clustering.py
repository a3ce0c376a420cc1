"""Scoring a clustering against the true classes (Day 02 and every embedding of the course).

- :func:`cluster_accuracy`: accuracy after the best one-to-one matching of clusters to classes
  (the Hungarian algorithm, Kuhn, Naval Research Logistics Quarterly, 1955, via
  ``scipy.optimize.linear_sum_assignment``).
- :func:`clustering_scores`: NMI, ARI and cluster accuracy together (scikit-learn's NMI and ARI).
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

    Returns:
        ``{"nmi": ..., "ari": ..., "acc": ...}``, floats (NMI and ACC in [0, 1], ARI in [-0.5, 1]).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    y_true, y_pred = labels_1d("y_true", y_true), labels_1d("y_pred", y_pred)
    return {"nmi": float(normalized_mutual_info_score(y_true, y_pred)),
            "ari": float(adjusted_rand_score(y_true, y_pred)),
            "acc": cluster_accuracy(y_true, y_pred)}

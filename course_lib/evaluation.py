"""Evaluation tools shared by the days: clustering scores, probes and label-efficiency curves.

- :func:`cluster_accuracy`: accuracy after the best one-to-one matching of clusters to classes
  (the Hungarian algorithm, Kuhn, Naval Research Logistics Quarterly, 1955, via
  ``scipy.optimize.linear_sum_assignment``).
- :func:`clustering_scores`: NMI, ARI and cluster accuracy together (scikit-learn's NMI and ARI).
- :func:`linear_probe` / :func:`knn_probe`: accuracy of a classifier trained on frozen features.
- :func:`label_efficiency_curve`: accuracy against labels per class, mean and std over label draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from course_lib.data import labeled_subset


def _labels_1d(name: str, y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {y.shape}")
    return y


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

    y_true, y_pred = _labels_1d("y_true", y_true), _labels_1d("y_pred", y_pred)
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

    y_true, y_pred = _labels_1d("y_true", y_true), _labels_1d("y_pred", y_pred)
    return {"nmi": float(normalized_mutual_info_score(y_true, y_pred)),
            "ari": float(adjusted_rand_score(y_true, y_pred)),
            "acc": cluster_accuracy(y_true, y_pred)}


def _features_2d(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, ...), got {x.shape}")
    return x.reshape(len(x), -1)


def linear_probe_predict(train_features, train_labels, test_features, C: float = 1.0,
                         max_iter: int = 2000) -> np.ndarray:
    """Predictions of a logistic-regression classifier trained on frozen features.

    Features are standardised (``StandardScaler`` fitted on the training features only), then
    ``sklearn.linear_model.LogisticRegression`` (L2, inverse strength ``C``) is fitted. On raw
    pixels this is the course's "logistic regression on pixels" baseline; it has the signature
    :func:`label_efficiency_curve` expects of ``fit_predict``.

    Args:
        train_features: array ``(n_train, ...)``, flattened to ``(n_train, d)``.
        train_labels: int array ``(n_train,)``.
        test_features: array ``(n_test, ...)`` with the same ``d``.
        C: inverse L2 regularisation strength (> 0).
        max_iter: iteration cap of the solver.

    Returns:
        int array ``(n_test,)`` of predicted labels.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(_features_2d("train_features", train_features), _labels_1d("train_labels", train_labels))
    return probe.predict(_features_2d("test_features", test_features))


def linear_probe(train_features, train_labels, test_features, test_labels, C: float = 1.0,
                 max_iter: int = 2000) -> float:
    """Test accuracy of :func:`linear_probe_predict` (standardised logistic regression on frozen features).

    Returns:
        Accuracy in [0, 1] on the test features.
    """
    predictions = linear_probe_predict(train_features, train_labels, test_features, C=C, max_iter=max_iter)
    return float(np.mean(predictions == _labels_1d("test_labels", test_labels)))


def knn_probe(train_features, train_labels, test_features, test_labels, k: int = 5) -> float:
    """Test accuracy of a cosine-distance k-nearest-neighbour classifier on frozen features.

    Uses ``sklearn.neighbors.KNeighborsClassifier(metric="cosine")`` with ``k`` capped at the
    number of training examples, distance-weighted votes.

    Returns:
        Accuracy in [0, 1] on the test features.
    """
    from sklearn.neighbors import KNeighborsClassifier

    x_train = _features_2d("train_features", train_features)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(x_train)), metric="cosine", weights="distance")
    knn.fit(x_train, _labels_1d("train_labels", train_labels))
    predictions = knn.predict(_features_2d("test_features", test_features))
    return float(np.mean(predictions == _labels_1d("test_labels", test_labels)))


@dataclass
class LabelEfficiencyResult:
    """Accuracies of one method at several label budgets.

    Attributes:
        method: display name.
        budgets: labels per class for each entry (None = all training labels).
        accuracies: for each budget, the accuracy of every label draw.
    """

    method: str
    budgets: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)

    def mean(self, budget) -> float:
        """Mean accuracy at ``budget``."""
        return float(np.mean(self.accuracies[self.budgets.index(budget)]))

    def std(self, budget) -> float:
        """Standard deviation of the accuracy over draws at ``budget`` (0 for a single draw)."""
        return float(np.std(self.accuracies[self.budgets.index(budget)]))

    def as_metrics(self, prefix: str) -> dict[str, float]:
        """Flat metrics ``{f"{prefix}_{budget}": mean, f"{prefix}_{budget}_std": std}``; budget None is "all"."""
        out = {}
        for budget in self.budgets:
            key = f"{prefix}_{'all' if budget is None else budget}"
            out[key] = round(self.mean(budget), 4)
            out[key + "_std"] = round(self.std(budget), 4)
        return out

    def table(self) -> str:
        """A plain-text row per budget: labels per class, mean ± std, number of draws."""
        lines = [f"{self.method}", f"{'labels/class':>12}  {'accuracy':>16}  draws"]
        for budget, accs in zip(self.budgets, self.accuracies):
            lines.append(f"{'all' if budget is None else budget:>12}  "
                         f"{np.mean(accs):.3f} ± {np.std(accs):.3f}  {len(accs):>5}")
        return "\n".join(lines)


def label_efficiency_curve(fit_predict: Callable, x_train, y_train, x_test, y_test,
                           budgets: Sequence = (1, 5, 10, None), n_draws: int = 5, seed: int = 0,
                           method: str = "method") -> LabelEfficiencyResult:
    """Accuracy of a method against the number of labels per class, over several label draws.

    For every budget ``b`` and draw ``d``, :func:`course_lib.data.labeled_subset` picks ``b``
    labeled training examples per class (seed ``seed + d``), ``fit_predict`` is trained on them
    and predicts the test set. Budget None means all training labels (one draw: there is nothing
    to resample).

    Args:
        fit_predict: ``fit_predict(x_labeled, y_labeled, x_test) -> predicted labels (n_test,)``.
        x_train, y_train: training inputs ``(n_train, ...)`` and int labels ``(n_train,)``.
        x_test, y_test: test inputs and int labels.
        budgets: labels per class, None for all.
        n_draws: number of label draws per budget (>= 1).
        seed: base seed of the draws.
        method: display name stored in the result.

    Returns:
        A :class:`LabelEfficiencyResult`.

    Raises:
        ValueError: ``n_draws`` < 1, a budget larger than the smallest class, or predictions of the wrong shape.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    y_train, y_test = _labels_1d("y_train", y_train), _labels_1d("y_test", y_test)
    result = LabelEfficiencyResult(method)
    for budget in budgets:
        accs = []
        draws = 1 if budget is None else n_draws
        for draw in range(draws):
            idx = np.arange(len(y_train)) if budget is None else labeled_subset(y_train, budget, seed=seed + draw)
            predictions = np.asarray(fit_predict(x_train[idx], y_train[idx], x_test))
            if predictions.shape != y_test.shape:
                raise ValueError(f"fit_predict returned shape {predictions.shape}, expected {y_test.shape}")
            accs.append(float(np.mean(predictions == y_test)))
        result.budgets.append(budget)
        result.accuracies.append(accs)
    return result

"""Pseudo-labels and graphs (Day 10): self-training and label spreading, with scikit-learn estimators.

- **Self-training / pseudo-labelling**: train on the labeled set, predict the unlabeled set, keep the
  predictions whose confidence reaches a threshold as *pseudo-labels*, retrain on labels + pseudo-labels,
  repeat (Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for Deep Neural
  Networks", ICML 2013 Workshop on Challenges in Representation Learning). :func:`select_pseudo_labels`
  is the selection step, :func:`self_training` the loop, :func:`logistic_regression` the default estimator.
- **Label spreading** (Zhou, Bousquet, Lal, Weston & Schölkopf, "Learning with Local and Global
  Consistency", NeurIPS 2003): labels diffuse over a k-nearest-neighbour graph of all images;
  :func:`label_spreading_predict` wraps ``sklearn.semi_supervised.LabelSpreading``.

Nothing here ever reads the labels of the unlabeled data: the only labels a method sees are the ones it is
given as ``y_labeled`` (the optional ``y_unlabeled`` of :func:`self_training` is used for diagnostics only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from course_lib.backends import to_numpy


def select_pseudo_labels(probabilities, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The selection step of self-training: keep the predictions whose confidence reaches ``threshold``.

    The confidence of a row is its largest class probability; its pseudo-label is that class (the first
    one on ties, as ``argmax``).

    Args:
        probabilities: float array ``(n_unlabeled, n_classes)`` of predicted class probabilities.
        threshold: confidence threshold in [0, 1]; rows with ``max(p) >= threshold`` are kept (0 keeps all).

    Returns:
        ``(indices, labels)``: int64 arrays ``(n_selected,)`` — the selected rows in increasing order and
        their pseudo-labels (column indices).

    Raises:
        ValueError: ``probabilities`` not 2-D, or ``threshold`` outside [0, 1].
    """
    probabilities = to_numpy(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must have shape (n, n_classes), got {probabilities.shape}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    confident = np.flatnonzero(probabilities.max(axis=1) >= threshold).astype(np.int64)
    return confident, probabilities[confident].argmax(axis=1).astype(np.int64)


@dataclass
class SelfTrainingResult:
    """Outcome of :func:`self_training`.

    Attributes:
        estimator: the classifier of the last round (fitted on labels + the last pseudo-labels).
        history: one dict per round: ``round``, ``n_pseudo`` (pseudo-labels used to fit that round's
            classifier), ``pseudo_accuracy`` (their accuracy, only when ``y_unlabeled`` was given, else NaN).
        pseudo_indices, pseudo_labels: the pseudo-labels selected after the last round.
    """

    estimator: object
    history: list = field(default_factory=list)
    pseudo_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pseudo_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def predict(self, x) -> np.ndarray:
        """Labels predicted by the final classifier for ``x`` (flattened to ``(n, d)``).

        Args:
            x: array ``(n, ...)`` with the ``d`` features of the training inputs once flattened (cast to float32).

        Returns:
            Array ``(n,)`` of labels, with the dtype of the estimator's ``classes_`` (int64 for int64 labels).
        """
        return np.asarray(self.estimator.predict(_flat(x)))


def _flat(x) -> np.ndarray:
    x = to_numpy(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def self_training(make_estimator: Callable, x_labeled, y_labeled, x_unlabeled, threshold: float = 0.9,
                  n_rounds: int = 5, select: Callable = select_pseudo_labels, y_unlabeled=None) -> SelfTrainingResult:
    """Iterated self-training with confidence-thresholded pseudo-labels.

    Round 0 fits a fresh classifier on the labeled data only. Every later round predicts the whole
    unlabeled pool with the previous classifier, keeps ``select(probabilities, threshold)`` as pseudo-labels
    (recomputed from scratch each round, so an earlier mistake *can* be revised) and fits a fresh classifier
    on labels + pseudo-labels. The loop stops after ``n_rounds`` rounds or when the selection no longer
    changes.

    Args:
        make_estimator: ``make_estimator() -> classifier`` with scikit-learn's ``fit(X, y)``,
            ``predict_proba(X)``, ``predict(X)`` and ``classes_`` (e.g. a ``LogisticRegression`` pipeline).
        x_labeled: array ``(n_labeled, ...)``, flattened to ``(n_labeled, d)``.
        y_labeled: int array ``(n_labeled,)``.
        x_unlabeled: array ``(n_unlabeled, ...)`` with the same ``d`` (its labels are never used).
        threshold: confidence threshold passed to ``select``.
        n_rounds: number of pseudo-labelling rounds after round 0 (>= 0).
        select: the selection step, ``select(probabilities, threshold) -> (indices, labels)`` with
            labels as column indices of ``probabilities`` (default :func:`select_pseudo_labels`).
        y_unlabeled: optional true labels of the pool, used only to report ``pseudo_accuracy``.

    Returns:
        A :class:`SelfTrainingResult`.

    Raises:
        ValueError: inputs of mismatched lengths or ``n_rounds`` < 0.
    """
    x_labeled, x_unlabeled = _flat(x_labeled), _flat(x_unlabeled)
    y_labeled = to_numpy(y_labeled)
    if len(x_labeled) != len(y_labeled) or n_rounds < 0:
        raise ValueError(f"need len(x_labeled) == len(y_labeled) and n_rounds >= 0, got {len(x_labeled)}, "
                         f"{len(y_labeled)}, {n_rounds}")
    estimator = make_estimator().fit(x_labeled, y_labeled)
    result = SelfTrainingResult(estimator, [{"round": 0, "n_pseudo": 0, "pseudo_accuracy": float("nan")}])
    previous = None
    for round_ in range(1, n_rounds + 1):
        indices, columns = select(estimator.predict_proba(x_unlabeled), threshold)
        indices = np.asarray(indices, dtype=np.int64)
        labels = np.asarray(estimator.classes_)[np.asarray(columns, dtype=np.int64)]
        result.pseudo_indices, result.pseudo_labels = indices, labels
        if previous is not None and np.array_equal(previous[0], indices) and np.array_equal(previous[1], labels):
            break  # a fixed point: the next classifier would be the same
        previous = (indices, labels)
        estimator = make_estimator().fit(np.concatenate([x_labeled, x_unlabeled[indices]]),
                                         np.concatenate([y_labeled, labels]))
        accuracy = float("nan")
        if y_unlabeled is not None and len(indices):
            accuracy = float(np.mean(labels == to_numpy(y_unlabeled)[indices]))
        result.estimator = estimator
        result.history.append({"round": round_, "n_pseudo": int(len(indices)), "pseudo_accuracy": accuracy})
    return result


def logistic_regression(C: float = 1.0, max_iter: int = 2000):
    """The course's pixel classifier for self-training: ``StandardScaler`` + ``LogisticRegression(C)``.

    The same model as :func:`course_lib.evaluation.probes.linear_probe_predict`, returned unfitted (a
    scikit-learn pipeline with ``fit``, ``predict_proba``, ``predict`` and ``classes_``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


def pseudo_label_quality(probabilities, y_true, thresholds) -> dict:
    """How a confidence threshold trades the number of pseudo-labels against their accuracy (a diagnostic).

    For every threshold :math:`\\tau`: the *mask rate* (share of rows whose largest probability is at least
    :math:`\\tau`, FixMatch's ``mask_rate``) and the accuracy of the selected rows' pseudo-labels (their
    ``argmax``) against ``y_true``. The true labels of an unlabeled pool are unknown in practice: this is
    for studying a method on data whose labels we hid, never for training.

    Args:
        probabilities: float ``(n, K)`` predicted class probabilities.
        y_true: int ``(n,)`` the hidden true labels.
        thresholds: iterable of thresholds in [0, 1].

    Returns:
        ``{threshold: {"mask_rate": float in [0, 1], "accuracy": float in [0, 1] or NaN when no row passes}}``
        in the order of ``thresholds``.

    Raises:
        ValueError: shapes that do not match, or a threshold outside [0, 1].
    """
    probabilities, y_true = to_numpy(probabilities, dtype=np.float64), to_numpy(y_true)
    if probabilities.ndim != 2 or y_true.shape != (len(probabilities),):
        raise ValueError(f"need probabilities (n, K) and y_true (n,), got {probabilities.shape} and {y_true.shape}")
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    out = {}
    for threshold in thresholds:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"thresholds must be in [0, 1], got {threshold}")
        kept = confidence >= threshold
        accuracy = float(np.mean(predicted[kept] == y_true[kept])) if kept.any() else float("nan")
        out[threshold] = {"mask_rate": float(kept.mean()), "accuracy": accuracy}
    return out


# --------------------------------------------------------------------------------------------
# Label spreading
# --------------------------------------------------------------------------------------------

def label_spreading_predict(x_labeled, y_labeled, x_unlabeled, x_test, n_neighbors: int = 10,
                            alpha: float = 0.2, max_iter: int = 200) -> np.ndarray:
    """Label spreading over a k-nearest-neighbour graph of labeled + unlabeled images; predict ``x_test``.

    ``sklearn.semi_supervised.LabelSpreading(kernel="knn")`` is fitted on the labeled and unlabeled images
    (label -1 for the unlabeled ones); the test images are then labeled from their nearest training
    neighbours' spread label distributions (inductive use; the test images are not in the graph). A test
    image whose neighbours received no label mass at all (a graph component without any labeled image)
    gets the most common labeled class instead of scikit-learn's NaN-derived answer.

    Args:
        x_labeled: array ``(n_labeled, ...)`` flattened to ``(n_labeled, d)``; y_labeled: int ``(n_labeled,)``.
        x_unlabeled: array ``(n_unlabeled, ...)`` (labels never used). x_test: array ``(n_test, ...)``.
        n_neighbors: neighbours of the kNN graph.
        alpha: clamping factor in (0, 1): the fraction of a node's label taken from its neighbours each step.
        max_iter: iterations of the propagation.

    Returns:
        int64 array ``(n_test,)`` of predicted labels.
    """
    import warnings

    from sklearn.semi_supervised import LabelSpreading

    y_labeled = to_numpy(y_labeled, dtype=np.int64)
    x = np.concatenate([_flat(x_labeled), _flat(x_unlabeled)])
    y = np.concatenate([y_labeled, np.full(len(x) - len(y_labeled), -1, dtype=np.int64)])
    model = LabelSpreading(kernel="knn", n_neighbors=n_neighbors, alpha=alpha, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 for test points without label mass, handled below
        model.fit(x, y)
        probabilities = model.predict_proba(_flat(x_test))
    undecided = ~np.all(np.isfinite(probabilities), axis=1) | (np.nan_to_num(probabilities).sum(axis=1) == 0)
    predictions = model.classes_[np.nan_to_num(probabilities).argmax(axis=1)].astype(np.int64)
    predictions[undecided] = np.bincount(y_labeled).argmax()
    return predictions

"""Few-label probes of frozen representations (Days 01, 07, 08 and 10).

A representation is judged by how well a *simple* classifier trained on a *few* labels does on top of it,
with the encoder frozen:

- the **linear probe** :func:`linear_probe_predict`: standardised logistic regression; on raw pixels it is
  the course's "logistic regression on pixels" baseline, so a comparison isolates the features;
- the **kNN probe** :func:`knn_probe_predict`: a cosine k-nearest-neighbour vote, no training at all.

:func:`probe_label_efficiency` runs both at several labels-per-class budgets over the same label draws.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from course_lib.evaluation._validate import features_2d, labels_1d
from course_lib.evaluation.label_efficiency import label_efficiency_curve


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

    Raises:
        ValueError: features with fewer than 2 dimensions or labels that are not 1-D; from scikit-learn,
            features and labels of different lengths, a ``d`` that differs between train and test, or a
            single class among ``train_labels``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(features_2d("train_features", train_features), labels_1d("train_labels", train_labels))
    return probe.predict(features_2d("test_features", test_features))


def linear_probe(train_features, train_labels, test_features, test_labels, C: float = 1.0,
                 max_iter: int = 2000) -> float:
    """Test accuracy of :func:`linear_probe_predict` (standardised logistic regression on frozen features).

    Args:
        train_features: array ``(n_train, ...)``, flattened to float32 ``(n_train, d)``.
        train_labels: int array ``(n_train,)``.
        test_features: array ``(n_test, ...)`` with the same ``d``.
        test_labels: int array ``(n_test,)``.
        C: inverse L2 regularisation strength (> 0).
        max_iter: iteration cap of the solver.

    Returns:
        Accuracy in [0, 1] on the test features.

    Raises:
        ValueError: as :func:`linear_probe_predict`, or ``test_labels`` not 1-D.
    """
    predictions = linear_probe_predict(train_features, train_labels, test_features, C=C, max_iter=max_iter)
    return float(np.mean(predictions == labels_1d("test_labels", test_labels)))


def knn_probe_predict(train_features, train_labels, test_features, k: int = 5) -> np.ndarray:
    """Predictions of a cosine-distance k-nearest-neighbour classifier on frozen features (no training at all).

    ``sklearn.neighbors.KNeighborsClassifier(metric="cosine", weights="distance")`` with ``k`` capped at the
    number of training examples. Has the ``fit_predict(x_labeled, y_labeled, x_test)`` signature of
    :func:`course_lib.evaluation.label_efficiency.label_efficiency_curve`.

    Args:
        train_features: array ``(n_train, ...)`` flattened to ``(n_train, d)``.
        train_labels: int array ``(n_train,)``.
        test_features: array ``(n_test, ...)`` with the same ``d``.
        k: neighbours (capped at ``n_train``).

    Returns:
        int array ``(n_test,)`` of predicted labels.

    Raises:
        ValueError: features with fewer than 2 dimensions or labels that are not 1-D; from scikit-learn,
            features and labels of different lengths, a ``d`` that differs between train and test, or
            ``k`` < 1.
    """
    from sklearn.neighbors import KNeighborsClassifier

    x_train = features_2d("train_features", train_features)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(x_train)), metric="cosine", weights="distance")
    knn.fit(x_train, labels_1d("train_labels", train_labels))
    return knn.predict(features_2d("test_features", test_features))


def knn_probe(train_features, train_labels, test_features, test_labels, k: int = 5) -> float:
    """Test accuracy of :func:`knn_probe_predict`.

    Args:
        train_features: array ``(n_train, ...)``, flattened to float32 ``(n_train, d)``.
        train_labels: int array ``(n_train,)``.
        test_features: array ``(n_test, ...)`` with the same ``d``.
        test_labels: int array ``(n_test,)``.
        k: neighbours (capped at ``n_train``).

    Returns:
        Accuracy in [0, 1] on the test features.

    Raises:
        ValueError: as :func:`knn_probe_predict`, or ``test_labels`` not 1-D.
    """
    predictions = knn_probe_predict(train_features, train_labels, test_features, k=k)
    return float(np.mean(predictions == labels_1d("test_labels", test_labels)))


def probe_label_efficiency(train_features, y_train, test_features, y_test, budgets: Sequence = (1, 5, 10),
                           n_draws: int = 10, seed: int = 0, name: str = "features",
                           probes: Sequence[str] = ("linear", "knn")) -> dict:
    """Linear and kNN probe accuracy on the test split at several labels-per-class budgets.

    Both probes see the same label draws (:func:`course_lib.data.datasets.labeled_subset` with seeds
    ``seed, ..., seed + n_draws - 1``), so their numbers are paired.

    Args:
        train_features: frozen features of the training images ``(n_train, d)``.
        y_train: int labels ``(n_train,)`` (only the drawn subset is used).
        test_features: frozen features of the test images ``(n_test, d)``.
        y_test: int labels ``(n_test,)``.
        budgets: labels per class (None = all).
        n_draws: label draws per budget.
        seed: base seed of the draws.
        name: method name, stored as ``f"{name} (linear)"`` / ``f"{name} (kNN)"``.
        probes: which probes to run, among ``"linear"`` and ``"knn"``.

    Returns:
        ``{"linear": LabelEfficiencyResult, "knn": LabelEfficiencyResult}`` (the requested probes; see
        :class:`course_lib.evaluation.label_efficiency.LabelEfficiencyResult`).

    Raises:
        ValueError: labels that are not 1-D, features with fewer than 2 dimensions, ``n_draws`` < 1, a budget
            larger than the smallest class (see :func:`~course_lib.evaluation.label_efficiency.label_efficiency_curve`),
            or a probe's own ValueError (see :func:`linear_probe_predict`, :func:`knn_probe_predict`).
        KeyError: a name in ``probes`` other than ``"linear"`` and ``"knn"``.
    """
    from threadpoolctl import threadpool_limits

    fit_predicts = {"linear": (linear_probe_predict, "linear"), "knn": (knn_probe_predict, "kNN")}
    out = {}
    # Each fit is tiny (10-100 examples): multi-threaded BLAS only adds synchronisation, which costs
    # seconds per fit on a busy 2-core machine. One thread is 10-20x faster here.
    with threadpool_limits(limits=1):
        for probe in probes:
            fit_predict, label = fit_predicts[probe]
            out[probe] = label_efficiency_curve(fit_predict, train_features, y_train, test_features, y_test,
                                                budgets=budgets, n_draws=n_draws, seed=seed,
                                                method=f"{name} ({label})")
    return out

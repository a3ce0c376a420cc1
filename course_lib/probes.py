"""Few-label probes of frozen representations (Days 07-08, 10), on top of :mod:`course_lib.evaluation`.

A self-supervised representation is judged by how well a *simple* classifier trained on a *few* labels
does on top of it, with the encoder frozen:

- the **linear probe**: :func:`course_lib.evaluation.linear_probe_predict` (standardised logistic
  regression), the same classifier as the raw-pixel baseline, so the comparison isolates the features;
- the **kNN probe**: :func:`knn_probe_predict`, a cosine k-nearest-neighbour vote (no training at all).

:func:`probe_label_efficiency` runs both at several labels-per-class budgets over several label draws
(:func:`course_lib.evaluation.label_efficiency_curve`) and :func:`probe_table` prints the results.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from course_lib import evaluation


def knn_probe_predict(train_features, train_labels, test_features, k: int = 5) -> np.ndarray:
    """Predictions of the cosine, distance-weighted k-nearest-neighbour probe (as :func:`evaluation.knn_probe`).

    Has the ``fit_predict(x_labeled, y_labeled, x_test)`` signature of
    :func:`course_lib.evaluation.label_efficiency_curve`.

    Args:
        train_features: array ``(n_train, ...)`` flattened to ``(n_train, d)``.
        train_labels: int array ``(n_train,)``.
        test_features: array ``(n_test, ...)`` with the same ``d``.
        k: neighbours (capped at ``n_train``).

    Returns:
        int array ``(n_test,)`` of predicted labels.
    """
    from sklearn.neighbors import KNeighborsClassifier

    x_train = np.asarray(train_features, dtype=np.float32).reshape(len(train_features), -1)
    x_test = np.asarray(test_features, dtype=np.float32).reshape(len(test_features), -1)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(x_train)), metric="cosine", weights="distance")
    return knn.fit(x_train, np.asarray(train_labels)).predict(x_test)


def probe_label_efficiency(train_features, y_train, test_features, y_test, budgets: Sequence = (1, 5, 10),
                           n_draws: int = 10, seed: int = 0, name: str = "features",
                           probes: Sequence[str] = ("linear", "knn")) -> dict:
    """Linear and kNN probe accuracy on the test split at several labels-per-class budgets.

    Both probes see the same label draws (:func:`course_lib.data.labeled_subset` with seeds
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
        ``{"linear": LabelEfficiencyResult, "knn": LabelEfficiencyResult}`` (the requested probes).
    """
    from threadpoolctl import threadpool_limits

    fit_predicts = {"linear": (evaluation.linear_probe_predict, "linear"), "knn": (knn_probe_predict, "kNN")}
    out = {}
    # Each fit is tiny (10-100 examples): multi-threaded BLAS only adds synchronisation, which costs
    # seconds per fit on a busy 2-core machine. One thread is 10-20x faster here.
    with threadpool_limits(limits=1):
        for probe in probes:
            fit_predict, label = fit_predicts[probe]
            out[probe] = evaluation.label_efficiency_curve(fit_predict, train_features, y_train, test_features,
                                                           y_test, budgets=budgets, n_draws=n_draws, seed=seed,
                                                           method=f"{name} ({label})")
    return out


def probe_table(results: Sequence, budgets: Sequence | None = None) -> str:
    """A plain-text table, one row per :class:`~course_lib.evaluation.LabelEfficiencyResult`, one column per budget.

    Cells read ``mean ± std`` over the label draws.
    """
    results = list(results)
    if not results:
        return "(no results)"
    budgets = list(results[0].budgets if budgets is None else budgets)
    width = max(len(r.method) for r in results)
    header = f"{'method':<{width}}  " + "  ".join(f"{('all' if b is None else str(b)) + ' labels/class':>16}"
                                                for b in budgets)
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.method:<{width}}  " + "  ".join(f"{r.mean(b):>9.3f} ± {r.std(b):.3f}" for b in budgets))
    return "\n".join(rows)

"""Accuracy against the number of labels per class, over several label draws, and the table that shows it.

:func:`label_efficiency_curve` trains a method on ``b`` labeled examples per class (for every budget ``b``,
several seeded draws of :func:`course_lib.data.datasets.labeled_subset`) and scores it on the test split;
:class:`LabelEfficiencyResult` holds the accuracies and :func:`results_table` renders several of them as
one table (rows = methods, columns = budgets, cells = mean ± std over draws). Day 01's baseline, the probes
of Days 07-08 and the leaderboard of Day 10 are all made of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from course_lib.backends import to_numpy
from course_lib.data.datasets import labeled_subset
from course_lib.evaluation._validate import labels_1d


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
                           method: str = "method", sampler: Callable | None = None) -> LabelEfficiencyResult:
    """Accuracy of a method against the number of labels per class, over several label draws.

    For every budget ``b`` and draw ``d``, :func:`course_lib.data.datasets.labeled_subset` picks ``b``
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
        sampler: ``sampler(y_train, per_class, seed) -> indices`` drawing the labeled subsets (default
            :func:`course_lib.data.datasets.labeled_subset`; Day 01 passes the student's own sampler).

    Returns:
        A :class:`LabelEfficiencyResult`.

    Raises:
        ValueError: ``n_draws`` < 1, a budget larger than the smallest class, or predictions of the wrong shape.
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    y_train, y_test = labels_1d("y_train", y_train), labels_1d("y_test", y_test)
    sampler = labeled_subset if sampler is None else sampler
    result = LabelEfficiencyResult(method)
    for budget in budgets:
        accs = []
        draws = 1 if budget is None else n_draws
        for draw in range(draws):
            idx = np.arange(len(y_train)) if budget is None else np.asarray(sampler(y_train, budget, seed=seed + draw))
            predictions = to_numpy(fit_predict(x_train[idx], y_train[idx], x_test))
            if predictions.shape != y_test.shape:
                raise ValueError(f"fit_predict returned shape {predictions.shape}, expected {y_test.shape}")
            accs.append(float(np.mean(predictions == y_test)))
        result.budgets.append(budget)
        result.accuracies.append(accs)
    return result


def _budget_name(budget) -> str:
    return "all" if budget is None else str(budget)


def results_table(results: Sequence[LabelEfficiencyResult], budgets: Sequence | None = None, markdown: bool = False,
                  sort_by=None, show_draws: bool = True) -> str:
    """One row per method, one column per labels-per-class budget, cells ``mean ± std (n)``.

    Args:
        results: :class:`LabelEfficiencyResult` objects (their ``method`` names the row).
        budgets: columns (default: the first result's budgets).
        markdown: a Markdown table instead of aligned plain text.
        sort_by: a budget: rows sorted by decreasing mean accuracy at that budget (default: given order).
        show_draws: append ``(n)``, the number of label draws behind the cell.

    Returns:
        The table as a string (``"(no results)"`` for none).

    Raises:
        ValueError: a result without one of the budgets.
    """
    from course_lib.reporting import render_table

    results = list(results)
    if not results:
        return "(no results)"
    budgets = list(results[0].budgets if budgets is None else budgets)
    for result in results:
        missing = [b for b in budgets if b not in result.budgets]
        if missing:
            raise ValueError(f"{result.method!r} has no result for budget(s) {missing}")
    if sort_by is not None:
        results.sort(key=lambda r: -r.mean(sort_by))

    def cell(result, budget):
        text = f"{result.mean(budget):.3f} ± {result.std(budget):.3f}"
        return text + (f" ({len(result.accuracies[result.budgets.index(budget)])})" if show_draws else "")

    header = ["method"] + [f"{_budget_name(b)} labels/class" for b in budgets]
    return render_table(header, [[r.method] + [cell(r, b) for b in budgets] for r in results], markdown=markdown)

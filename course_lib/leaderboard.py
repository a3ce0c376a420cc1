"""The capstone leaderboard of Day 10: every method of the course at a few labels per class.

- :class:`KerasFitPredict`: trains a Keras classifier on one labeled draw after another with a single
  compiled model (weights and optimizer state are reset per draw, TensorFlow traces the training step
  once). It follows Day 01's recipe for tiny labeled sets: the labeled rows are tiled to a fixed number
  of rows per epoch, so every draw makes the same number of optimiser steps.
- :func:`leaderboard_table`: a plain-text (or Markdown) table, one row per method, one column per budget,
  cells ``mean ± std`` with the number of label draws.
- :func:`leaderboard_metrics`: the flat ``{f"{key}_{budget}": mean, f"{key}_{budget}_std": std}`` dict
  that ``course_lib.record_metrics`` records, plus ``f"{key}_draws"``.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from course_lib.semi_supervised import reset_seed_generators


class KerasFitPredict:
    """``fit_predict(x_labeled, y_labeled, x_test)`` for a Keras classifier, reusing one compiled model.

    ``build_model()`` must return a *new* ``keras.Model`` mapping images to class probabilities (softmax)
    with the initial weights of one draw: random for a network trained from scratch, or pretrained
    encoder weights + a fresh head for fine-tuning. It is called once to create the compiled model and
    once per draw, whose weights are copied into the compiled model (building a model is cheap; tracing
    a new training step is not). The optimizer state is restored to its initial values at every draw.

    Training: Adam with ``learning_rate``, sparse categorical cross-entropy, ``epochs`` epochs of
    ``rows_per_epoch`` rows (the labeled set repeated, in a random order, then cut to that length),
    ``batch_size`` rows per step.

    Args:
        build_model: ``build_model() -> keras.Model`` as above.
        epochs, batch_size, learning_rate: training length and optimiser.
        rows_per_epoch: rows per epoch after tiling (a multiple of ``batch_size`` keeps one batch shape).
        seed: base seed; draw ``i`` calls ``keras.utils.set_random_seed(seed + i)`` before ``build_model``.
        steps_per_execution: training steps per call of the compiled step function (fewer Python round trips).

    Attributes:
        model: the compiled model; draws: number of draws trained so far.
    """

    def __init__(self, build_model: Callable, epochs: int = 12, batch_size: int = 64, learning_rate: float = 1e-3,
                 rows_per_epoch: int = 2048, seed: int = 0, steps_per_execution: int = 8):
        import keras

        if min(epochs, batch_size, rows_per_epoch) < 1:
            raise ValueError(f"epochs, batch_size and rows_per_epoch must be >= 1, got {epochs}, {batch_size}, "
                             f"{rows_per_epoch}")
        self.build_model, self.seed, self.draws = build_model, seed, 0
        self.epochs, self.batch_size, self.rows_per_epoch = int(epochs), int(batch_size), int(rows_per_epoch)
        keras.utils.set_random_seed(seed)
        self.model = build_model()
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                           steps_per_execution=steps_per_execution)
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_state = [np.array(v) for v in self.model.optimizer.variables]

    def fit(self, x_labeled, y_labeled):
        """Reset, then train on one labeled set; returns the trained model."""
        import keras

        seed = self.seed + self.draws
        self.draws += 1
        keras.utils.set_random_seed(seed)
        self.model.set_weights(self.build_model().get_weights())
        reset_seed_generators(self.model, seed)
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_state):
            variable.assign(value)
        x_labeled, y_labeled = np.asarray(x_labeled, np.float32), np.asarray(y_labeled, np.int64)
        rng = np.random.default_rng(seed)
        reps = int(np.ceil(self.rows_per_epoch / len(x_labeled)))
        rows = np.concatenate([rng.permutation(len(x_labeled)) for _ in range(reps)])[:self.rows_per_epoch]
        self.model.fit(x_labeled[rows], y_labeled[rows], batch_size=self.batch_size, epochs=self.epochs,
                       shuffle=True, verbose=0)
        return self.model

    def predict(self, x) -> np.ndarray:
        """Predicted labels ``(n,)``."""
        return np.asarray(self.model.predict(np.asarray(x, np.float32), batch_size=512, verbose=0)).argmax(axis=1)

    def __call__(self, x_labeled, y_labeled, x_test) -> np.ndarray:
        """:meth:`fit` then :meth:`predict` ``x_test`` (the ``label_efficiency_curve`` signature)."""
        self.fit(x_labeled, y_labeled)
        return self.predict(x_test)


def _budget_name(budget) -> str:
    return "all" if budget is None else str(budget)


def leaderboard_table(results: Sequence, budgets: Sequence | None = None, markdown: bool = False,
                      sort_by=None) -> str:
    """One row per method, one column per labels-per-class budget, cells ``mean ± std (n)``.

    Args:
        results: :class:`course_lib.evaluation.LabelEfficiencyResult` objects (their ``method`` names the row).
        budgets: columns (default: the first result's budgets).
        markdown: a Markdown table instead of aligned plain text.
        sort_by: a budget: rows sorted by decreasing mean accuracy at that budget (default: given order).

    Returns:
        The table as a string; ``(n)`` is the number of label draws behind the cell.

    Raises:
        ValueError: a result without one of the budgets.
    """
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
    header = ["method"] + [f"{_budget_name(b)} labels/class" for b in budgets]
    rows = [[r.method] + [f"{r.mean(b):.3f} ± {r.std(b):.3f} ({len(r.accuracies[r.budgets.index(b)])})"
                          for b in budgets] for r in results]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(budgets)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
             for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def leaderboard_metrics(results: Mapping[str, object]) -> dict[str, float]:
    """Flatten ``{key: LabelEfficiencyResult}`` into metrics for ``course_lib.record_metrics``.

    Returns:
        ``{f"{key}_{budget}": mean, f"{key}_{budget}_std": std, ..., f"{key}_draws": draws}`` with means and
        stds rounded to 4 decimals and ``draws`` the number of label draws at the first finite budget.
    """
    out: dict[str, float] = {}
    for key, result in results.items():
        out.update(result.as_metrics(key))
        finite = [i for i, b in enumerate(result.budgets) if b is not None]
        out[f"{key}_draws"] = len(result.accuracies[finite[0] if finite else 0])
    return out

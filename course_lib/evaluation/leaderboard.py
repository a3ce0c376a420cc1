"""The capstone leaderboard of Day 10: every method of the course, classification and clustering.

- :func:`leaderboard_metrics`: the flat ``{f"{key}_{budget}": mean, f"{key}_{budget}_std": std}`` dict
  that ``course_lib.record_metrics`` records, plus ``f"{key}_draws"``.
- :func:`build_leaderboard`: the JSON-ready leaderboard ``{"dataset", "image_shape", "mode",
  "classification": {method: {"1": {"mean", "std", "draws"}, ...}}, "clustering": {method: {"nmi", "acc"}}}``.
- :func:`record_leaderboard` attaches it to the notebook's output under :data:`LEADERBOARD_MIME`;
  ``course run`` reads it back with :func:`extract_leaderboard` and writes ``build/leaderboard.json``.

The table itself is :func:`course_lib.evaluation.label_efficiency.results_table`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

LEADERBOARD_MIME = "application/vnd.course.leaderboard+json"


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


def _finite(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return round(value, 4)


def build_leaderboard(classification: Sequence, clustering: Mapping[str, Mapping[str, float]], dataset: str,
                      image_shape, mode: str) -> dict:
    """The leaderboard as a JSON-ready dict.

    Args:
        classification: :class:`course_lib.evaluation.label_efficiency.LabelEfficiencyResult` objects, one per
            method (``result.method`` is the method's name in words, e.g. ``"SimCLR linear probe"``).
        clustering: ``{method: {"nmi": ..., "acc": ...}}`` (other keys are kept as well).
        dataset, image_shape, mode: what the numbers were measured on.

    Returns:
        ``{"dataset", "image_shape", "mode", "classification": {method: {budget: {"mean", "std", "draws"}}},
        "clustering": {method: {"nmi", "acc", ...}}}``; budgets are strings (``"1"``, ``"5"``, ``"all"``).

    Raises:
        ValueError: two results with the same method name, a clustering entry without ``nmi`` and ``acc``, or a
            value that is not a finite number.
    """
    table: dict[str, dict] = {}
    for result in classification:
        if result.method in table:
            raise ValueError(f"two leaderboard rows are named {result.method!r}")
        table[result.method] = {("all" if budget is None else str(budget)): {
            "mean": _finite(f"{result.method} mean", result.mean(budget)),
            "std": _finite(f"{result.method} std", result.std(budget)),
            "draws": len(result.accuracies[result.budgets.index(budget)])} for budget in result.budgets}
    clusters: dict[str, dict] = {}
    for method, scores in clustering.items():
        missing = {"nmi", "acc"} - set(scores)
        if missing:
            raise ValueError(f"clustering entry {method!r} lacks {sorted(missing)}")
        clusters[method] = {key: _finite(f"{method} {key}", value) for key, value in scores.items()}
    return {"dataset": str(dataset), "image_shape": [int(d) for d in image_shape], "mode": str(mode),
            "classification": table, "clustering": clusters}


def record_leaderboard(leaderboard: dict, display: bool = True) -> dict:
    """Attach a :func:`build_leaderboard` dict to the current cell's output (``course run`` collects it).

    Outside IPython it is only returned. Returns ``leaderboard`` unchanged.
    """
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import display as show

            if get_ipython() is not None:
                n_rows = len(leaderboard.get("classification", {})) + len(leaderboard.get("clustering", {}))
                show({LEADERBOARD_MIME: leaderboard, "text/plain": f"leaderboard recorded ({n_rows} rows)"},
                     raw=True)
        except ImportError:  # plain Python without IPython
            pass
    return leaderboard


def extract_leaderboard(notebook) -> dict | None:
    """The last leaderboard recorded in an executed notebook (an ``nbformat`` node or dict), or None."""
    found = None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(LEADERBOARD_MIME)
            if isinstance(payload, dict):
                found = payload
    return found

"""Unit tests for course_lib.checks.day09: the notebook's reference solutions pass the self-checks, and the
checks fail (not error) typical wrong answers."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib import checks
from course_lib.checks import day09
from course_lib.data import masking
from course_lib.models import bert

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "day09_masked_language_modeling.ipynb"
V = 500  # the vocabulary size of token_batch


# --- the self-checks, and the notebook's reference solutions -------------------------------------

def notebook_solutions():
    """Execute the solution cells of the Day 09 notebook's exercises (they only need NumPy)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    namespace = {"np": np}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), meta["grade_id"], "exec"), namespace)  # noqa: S102
    return namespace


def test_notebook_reference_solutions_pass_the_checks(token_batch):
    namespace = notebook_solutions()
    assert day09.check_mask_tokens(namespace["mask_tokens"]).passed
    assert day09.check_masked_lm_metrics(namespace["masked_lm_metrics"]).passed
    assert day09.check_nearest_tokens(namespace["nearest_tokens"]).passed
    # the students' masking solution also agrees with keras_hub on another batch, statistically
    ids = token_batch(7)
    ours = masking.masking_statistics(ids, *namespace["mask_tokens"](ids, np.random.default_rng(3), V))
    ref = masking.masking_statistics(ids, *masking.keras_hub_masking(ids, V, seed=3))
    assert abs(ours["selection_rate"] - ref["selection_rate"]) < 0.02
    assert abs(ours["mask_share"] - ref["mask_share"]) < 0.05
    assert ours["special_selected"] == 0


def test_library_functions_pass_the_checks():
    assert day09.check_mask_tokens(lambda ids, rng, v, **kw: masking.mask_tokens(ids, rng, v, **kw)).passed

    def metrics(logits, ids, weights, k):
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nll = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
        ranks = (logits > np.take_along_axis(logits, ids[..., None], -1)).sum(-1)
        w = weights / weights.sum()
        return (nll * w).sum(), ((ranks == 0) * w).sum(), ((ranks < k) * w).sum()

    assert day09.check_masked_lm_metrics(metrics).passed
    assert day09.check_nearest_tokens(bert.nearest_tokens).passed


def wrong_all_mask(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    selected = ~np.isin(ids, special_token_ids) & (rng.random(ids.shape) < 0.15)
    return np.where(selected, mask_token_id, ids), selected


def wrong_selects_specials(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    selected = rng.random(ids.shape) < 0.15
    return masking.corrupt_tokens(ids, selected, rng, vocabulary_size), selected


def wrong_first_tokens(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    eligible = ~np.isin(ids, special_token_ids)
    selected = eligible & (np.cumsum(eligible, axis=1) <= np.round(0.15 * eligible.sum(axis=1, keepdims=True)))
    return masking.corrupt_tokens(ids, selected, rng, vocabulary_size), selected


def wrong_in_place(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    masked, selected = masking.mask_tokens(ids, rng, vocabulary_size)
    ids[...] = masked
    return masked, selected


def wrong_all_tokens(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    return masking.mask_tokens(ids, rng, vocabulary_size, special_token_ids=(0,))


@pytest.mark.parametrize("wrong, words", [(wrong_all_mask, ("mask_share",)), (wrong_selects_specials, ("special",)),
                                          (wrong_first_tokens, ("half", "selection_rate")),
                                          (wrong_in_place, ("in place",)), (wrong_all_tokens, ("special",))])
def test_mask_check_catches_wrong_rules(wrong, words):
    result = day09.check_mask_tokens(wrong)
    assert result.status == "fail" and any(w in result.message for w in words), result.message
    assert result.hint


def test_checks_report_todo_and_errors():
    def todo(*args, **kwargs):
        raise NotImplementedError()

    assert day09.check_mask_tokens(todo).status == "todo"
    assert day09.check_nearest_tokens(lambda *a: 1 / 0).status == "error"
    unweighted = lambda logits, ids, weights, k: (  # noqa: E731
        float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits)), 0.0, 0.0)
    result = day09.check_masked_lm_metrics(unweighted)
    assert result.status == "fail" and "padding" in result.message
    checks.RESULTS.clear()

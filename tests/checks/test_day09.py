"""Unit tests for course_lib.checks.day09: the notebook's reference solutions pass the self-checks; the checks
fail (not error) typical wrong answers, say "todo" for an exercise not attempted and "reference" for an answer
that calls course_lib's own implementation."""

import json
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib import losses
from course_lib.checks import day09
from course_lib.data import masking
from course_lib.models import bert

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "day09_masked_language_modeling.ipynb"
V = 500  # the vocabulary size of token_batch


# --- a stand-in for the short training runs of Exercise 9.3 (no training in these tests) ----------

class FakeRuns:
    """Has the interface of bert.MaskedLMRuns; "trains" a fake model that remembers its rate."""

    batch_size = 32

    def __init__(self):
        self.trained = []

    def train(self, token_ids, selection_rate=0.15, mask_fn=None):
        self.trained.append(selection_rate)
        return types.SimpleNamespace(rate=selection_rate)


def fake_evaluate(model, valid_ids, n_draws=2, seed=0, **kwargs):
    """A made-up score that depends on the rate the fake model was trained at (best at 0.15)."""
    return {"top1": 0.3 - abs(model.rate - 0.15), "perplexity": 40.0 + 100 * abs(model.rate - 0.15),
            "top5": 0.5, "cross_entropy": 3.7, "n_predictions": 100, "targets": np.zeros(100, int)}


RATES = (0.05, 0.15, 0.4)


def notebook_solutions():
    """Execute the solution cells of the Day 09 notebook's exercises, with the notebook's names they use."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    fake_language_model = types.SimpleNamespace(evaluate_masked_lm=fake_evaluate)
    namespace = {"np": np, "keras": keras, "language_model": fake_language_model, "mask_fn": masking.mask_tokens,
                 "V": V, "SEED": 0}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), meta["grade_id"], "exec"), namespace)  # noqa: S102
    return namespace


def check_experiment(experiment, best=None, train_ids=None):
    ids = day09.synthetic_batch(3, vocabulary_size=V) if train_ids is None else train_ids
    return day09.check_mask_rate_experiment(lambda: experiment(FakeRuns(), RATES, ids, ids), RATES, 200.0, V,
                                            best_rate_fn=best, train_ids=ids, batch_size=FakeRuns.batch_size)


def test_notebook_reference_solutions_pass_the_checks(token_batch):
    namespace = notebook_solutions()
    assert day09.check_mask_tokens(namespace["mask_tokens"]).status == "pass"
    assert day09.check_masked_lm_loss(namespace["masked_lm_loss"]).status == "pass"
    result = check_experiment(namespace["mask_rate_experiment"], namespace["best_rate"])
    assert result.status == "pass", result.message
    results = day09.mask_rate_results()
    assert list(results) == list(RATES) and namespace["best_rate"](results) == 0.15
    # the students' masking solution also agrees with keras_hub on another batch, statistically
    ids = token_batch(7)
    ours = masking.masking_statistics(ids, *namespace["mask_tokens"](ids, np.random.default_rng(3), V))
    ref = masking.masking_statistics(ids, *masking.keras_hub_masking(ids, V, seed=3))
    assert abs(ours["selection_rate"] - ref["selection_rate"]) < 0.02
    assert abs(ours["mask_share"] - ref["mask_share"]) < 0.05
    assert ours["special_selected"] == 0


# --- Exercise 9.1: the masking rule ---------------------------------------------------------------

def _corrupt(ids, selected, rng, vocabulary_size, mask_token_id=4):
    """80/10/10 corruption written here (a wrong answer must not call the library: that is another verdict)."""
    action = rng.random(ids.shape)
    out = ids.copy()
    out[selected & (action < 0.8)] = mask_token_id
    to_random = selected & (action >= 0.8) & (action < 0.9)
    out[to_random] = rng.integers(5, vocabulary_size, size=int(to_random.sum()))
    return out


def right_rule(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4), selection_rate=0.15):
    selected = ~np.isin(ids, special_token_ids) & (rng.random(ids.shape) < selection_rate)
    return _corrupt(ids, selected, rng, vocabulary_size), selected


def wrong_all_mask(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4), selection_rate=0.15):
    selected = ~np.isin(ids, special_token_ids) & (rng.random(ids.shape) < selection_rate)
    return np.where(selected, mask_token_id, ids), selected


def wrong_selects_specials(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4),
                           selection_rate=0.15):
    selected = rng.random(ids.shape) < selection_rate
    return _corrupt(ids, selected, rng, vocabulary_size), selected


def wrong_first_tokens(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4),
                       selection_rate=0.15):
    eligible = ~np.isin(ids, special_token_ids)
    selected = eligible & (np.cumsum(eligible, axis=1) <= np.round(selection_rate * eligible.sum(axis=1, keepdims=True)))
    return _corrupt(ids, selected, rng, vocabulary_size), selected


def wrong_in_place(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4), selection_rate=0.15):
    masked, selected = right_rule(ids, rng, vocabulary_size)
    ids[...] = masked
    return masked, selected


def wrong_ignores_rate(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4),
                       selection_rate=0.15):
    return right_rule(ids, rng, vocabulary_size)


def wrong_global_random(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4),
                        selection_rate=0.15):
    return right_rule(ids, np.random.default_rng(), vocabulary_size, selection_rate=selection_rate)


@pytest.mark.parametrize("wrong, words", [(wrong_all_mask, ("mask_share",)), (wrong_selects_specials, ("special",)),
                                          (wrong_first_tokens, ("half", "selection_rate")),
                                          (wrong_in_place, ("in place",)), (wrong_ignores_rate, ("selection_rate",)),
                                          (wrong_global_random, ("seed",))])
def test_mask_check_catches_wrong_rules(wrong, words):
    result = day09.check_mask_tokens(wrong)
    assert result.status == "fail" and any(w in result.message for w in words), result.message
    assert result.hint


def test_mask_check_passes_a_right_rule_and_flags_the_library():
    assert day09.check_mask_tokens(right_rule).status == "pass"
    calls_library = lambda ids, rng, v, **kw: masking.mask_tokens(ids, rng, v, **kw)  # noqa: E731
    result = day09.check_mask_tokens(calls_library)
    assert result.status == "reference" and "mask_tokens" in result.message

    def calls_keras_hub(ids, rng, vocabulary_size, **kw):
        masked, selected = masking.keras_hub_masking(ids, vocabulary_size, seed=int(rng.integers(1000)))
        return masked, selected

    assert day09.check_mask_tokens(calls_keras_hub).status == "reference"


# --- Exercise 9.2: the masked-LM loss -------------------------------------------------------------

def right_loss(labels, logits, weights):
    nll = keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    weights = keras.ops.cast(weights, nll.dtype)
    return keras.ops.sum(nll * weights) / keras.ops.maximum(keras.ops.sum(weights), 1e-9)


def wrong_unweighted(labels, logits, weights):
    return keras.ops.mean(keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def wrong_probabilities(labels, logits, weights):
    nll = keras.ops.sparse_categorical_crossentropy(labels, logits)
    weights = keras.ops.cast(weights, nll.dtype)
    return keras.ops.sum(nll * weights) / keras.ops.sum(weights)


def wrong_per_slot(labels, logits, weights):
    nll = keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    return keras.ops.mean(nll * keras.ops.cast(weights, nll.dtype))


def wrong_numpy(labels, logits, weights):
    logits, labels, weights = (np.asarray(keras.ops.convert_to_numpy(a)) for a in (logits, labels, weights))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None].astype(int), -1)[..., 0]
    return (nll * weights).sum() / weights.sum()


@pytest.mark.parametrize("wrong, words", [(wrong_unweighted, ("padding",)), (wrong_probabilities, ("probabilities",)),
                                          (wrong_per_slot, ("sum of the weights",)), (wrong_numpy, ("keras.ops",))])
def test_loss_check_catches_wrong_losses(wrong, words):
    result = day09.check_masked_lm_loss(wrong)
    assert result.status == "fail" and any(w in result.message for w in words), result.message
    assert result.hint


def test_loss_check_passes_a_right_loss_and_flags_the_library():
    assert day09.check_masked_lm_loss(right_loss).status == "pass"
    result = day09.check_masked_lm_loss(lambda labels, logits, weights: losses.masked_lm_loss(labels, logits, weights))
    assert result.status == "reference" and "masked_lm_loss" in result.message


# --- Exercise 9.3: the mask-rate investigation ----------------------------------------------------

def right_experiment(runs, rates, train_ids, valid_ids):
    results = {}
    for rate in rates:
        scored = fake_evaluate(runs.train(train_ids, selection_rate=rate), valid_ids)
        _, chosen = right_rule(train_ids, np.random.default_rng(0), V, selection_rate=rate)
        results[rate] = {"top1": scored["top1"], "perplexity": scored["perplexity"],
                         "predictions_per_step": chosen.sum() / len(train_ids) * runs.batch_size}
    return results


def lowest(results):
    return min(results, key=lambda r: results[r]["perplexity"])


def test_experiment_check_passes_and_keeps_the_results():
    result = check_experiment(right_experiment, lowest)
    assert result.status == "pass" and "0.15" in result.message
    assert set(day09.mask_rate_results()) == set(RATES)


def _edit(change):
    def experiment(runs, rates, train_ids, valid_ids):
        results = right_experiment(runs, rates, train_ids, valid_ids)
        change(results)
        return results
    return experiment


@pytest.mark.parametrize("experiment, best, words", [
    (_edit(lambda r: r.pop(0.4)), lowest, ("one entry per rate",)),
    (_edit(lambda r: r[0.05].update(perplexity=500.0)), lowest, ("unigram",)),
    (_edit(lambda r: [v.update(perplexity=41.0) for v in r.values()]), lowest, ("same perplexity",)),
    (_edit(lambda r: r[0.4].update(predictions_per_step=1.0)), lowest, ("predictions per step",)),
    (_edit(lambda r: r[0.15].pop("predictions_per_step")), lowest, ("predictions_per_step",)),
    (right_experiment, lambda results: max(results, key=lambda r: results[r]["perplexity"]), ("best rate",)),
])
def test_experiment_check_catches_wrong_answers(experiment, best, words):
    result = check_experiment(experiment, best)
    assert result.status == "fail" and any(w in result.message for w in words), result.message
    with pytest.raises(LookupError):
        day09.mask_rate_results()


def test_experiment_check_flags_the_library(monkeypatch):
    calls = []

    def fake_library(runs, rates, train_ids, valid_ids, mask_fn=None, n_draws=2, seed=0):
        calls.append(rates)
        return right_experiment(runs, rates, train_ids, valid_ids)

    monkeypatch.setattr(bert, "mask_rate_experiment", fake_library)
    result = check_experiment(lambda runs, rates, train_ids, valid_ids: bert.mask_rate_experiment(
        runs, rates, train_ids, valid_ids), lowest)
    assert calls and result.status == "reference"


# --- not attempted, errors ------------------------------------------------------------------------

def test_checks_report_todo_and_errors():
    def todo(*args, **kwargs):
        raise NotImplementedError()

    assert day09.check_mask_tokens(todo).status == "todo"
    assert day09.check_masked_lm_loss(todo).status == "todo"
    assert check_experiment(todo).status == "todo"
    assert day09.check_mask_tokens(lambda *a, **k: 1 / 0).status == "error"
    assert day09.check_masked_lm_loss(lambda *a: 1 / 0).status == "error"
    result = day09.check_mask_tokens(todo)
    assert "to do" in str(result) and "hint" not in str(result).split("to do")[0]

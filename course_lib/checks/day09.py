"""Self-checks for Day 09 (masked language modeling): BERT's masking rule and the masked-LM loss (the two
pieces the mini-BERT trains with) and the mask-rate investigation."""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)  # (re-exported for the notebook)

_SPECIAL = (0, 1, 2, 3, 4)  # [PAD], [CLS], [SEP], [UNK], [MASK]
_MASK = 4


HINTS = register_hints({
    "day09.mask_tokens": Hints(
        todo="Write mask_tokens: choose 15 % of the ordinary tokens at random, corrupt them with the 80/10/10 "
             "rule on a copy of the input, and return the corrupted copy with the boolean array of chosen "
             "positions.",
        tiers=("Two independent random decisions per position, both drawn from the generator you are given: "
               "is this position selected (only ordinary tokens can be), and, if selected, what becomes of it "
               "(the blank token, a random ordinary token, or itself).",
               "One uniform number per position compared with the selection rate gives the selection; a second "
               "uniform number per position splits the selected ones into the three cases at 0.8 and 0.9. "
               "NumPy's isin tells which ids are special; a Generator's integers method draws the random ids "
               "(the upper bound is excluded).",
               "Common slips: selecting [PAD], [CLS] or [SEP] (they must never be chosen); writing into the "
               "input array instead of a copy; drawing random replacements that can be special ids; using "
               "np.random's global functions instead of the rng argument (then a seed does not reproduce the "
               "masks); ignoring the selection_rate argument.")),
    "day09.masked_lm_loss": Hints(
        todo="Write masked_lm_loss(labels, logits, weights) with keras.ops: the mean cross-entropy of the "
             "original tokens over the slots whose weight is 1.",
        tiers=("Each slot gives the negative log-probability that the softmax of its logits puts on the "
               "original token; a weighted average of these numbers, with the mask weights, ignores the "
               "padding slots.",
               "keras.ops has a sparse categorical cross-entropy that takes integer labels and raw logits "
               "(tell it they are logits); then divide the sum of weight times loss by the sum of the weights "
               "(a division that returns 0 for 0 / 0 keeps an all-padding batch harmless).",
               "Common slips: a plain mean over all slots (padding then counts); treating the logits as "
               "probabilities; NumPy instead of keras.ops (the function runs inside the compiled training "
               "step, on symbolic tensors); forgetting to cast the weights to the loss's float type.")),
    "day09.mask_rate_experiment": Hints(
        todo="Write mask_rate_experiment: for each selection rate, train the runs' model at that rate, score it "
             "at the standard 15 % [MASK] test, and count how many tokens your rule selects per training batch; "
             "then best_rate: the rate with the lowest perplexity.",
        tiers=("Equal compute: every run starts from the same weights and makes the same number of steps with "
               "the same batch size; only the share of tokens selected for prediction changes. The test is the "
               "same for every run, so the numbers compare.",
               "The train method of the runs object takes the training rows, the rate and your masking function "
               "and returns the trained model; the evaluation helper of the language_model module returns a dict with top1 "
               "and perplexity; your masking function's boolean output, summed and divided by the number of "
               "rows, times the batch size, gives the predictions per step.",
               "Common slips: evaluating a model after the next run has started (the runs share one model "
               "object: score it right after training); scoring each model at its own training rate (then the "
               "tests differ); returning the rate with the highest perplexity, or the perplexity instead of "
               "the rate.")),
})


def synthetic_batch(seed: int = 0, batch: int = 400, length: int = 64, vocabulary_size: int = 500) -> np.ndarray:
    """Token ids shaped like real model inputs: ``[CLS] words [SEP] [PAD]...``, a few ``[UNK]`` inside.

    Returns:
        int32 ``(batch, length)``; row lengths vary from 8 to ``length``.
    """
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, length), dtype=np.int32)
    for row in range(batch):
        n = int(rng.integers(6, length - 1))
        ids[row, 0] = 1
        ids[row, 1:n + 1] = rng.integers(5, vocabulary_size, size=n)
        ids[row, n + 1] = 2
        ids[row, 1:n + 1][rng.random(n) < 0.02] = 3
    return ids


def _bounds(p: float, n: int, sigmas: float = 5.0) -> float:
    return sigmas * float(np.sqrt(p * (1 - p) / max(n, 1)))


def _masking_references():
    from keras_hub.layers import MaskedLMMaskGenerator

    from course_lib.data import masking

    return (masking.mask_tokens, masking.select_tokens, masking.corrupt_tokens, masking.keras_hub_masking,
            masking.make_mlm_batch, MaskedLMMaskGenerator.call)


def check_mask_tokens(mask_tokens):
    """Check ``mask_tokens(token_ids, rng, vocabulary_size, mask_token_id, special_token_ids, selection_rate)
    -> (masked, selected)`` (Exercise 9.1) statistically against ``keras_hub.layers.MaskedLMMaskGenerator``.
    """
    spy = ReferenceSpy(*_masking_references())
    mask_tokens = spy.wrap(mask_tokens)

    def test():
        from course_lib.data.masking import keras_hub_masking, masking_statistics

        vocabulary_size = 500
        ids = synthetic_batch(0, vocabulary_size=vocabulary_size)
        before = ids.copy()
        out = mask_tokens(ids, np.random.default_rng(0), vocabulary_size, mask_token_id=_MASK,
                          special_token_ids=_SPECIAL)
        expect(isinstance(out, tuple) and len(out) == 2, "return a tuple (masked_ids, selected)")
        masked, selected = np.asarray(out[0]), np.asarray(out[1])
        expect(np.array_equal(ids, before), "do not modify token_ids in place: work on a copy")
        expect(masked.shape == ids.shape and selected.shape == ids.shape,
               f"both outputs must have the input's shape {ids.shape}, got {masked.shape} and {selected.shape}")
        expect(np.issubdtype(masked.dtype, np.integer), f"masked ids must be integers, got {masked.dtype}")
        expect(selected.dtype == bool, f"selected must be a boolean array, got {selected.dtype}")
        ours = masking_statistics(ids, masked, selected, _MASK, _SPECIAL)
        expect(ours["special_selected"] == 0,
               f"{ours['special_selected']} special tokens ([PAD]/[CLS]/[SEP]/[UNK]) were selected: never select them")
        expect(ours["changed_outside"] == 0,
               f"{ours['changed_outside']} unselected positions changed: only selected tokens may be replaced")
        changed = masked[selected & (masked != ids) & (masked != _MASK)]
        expect(changed.size == 0 or (changed.min() >= len(_SPECIAL) and changed.max() < vocabulary_size),
               "random replacements must be ordinary tokens: ids in [5, vocabulary_size)")
        reference = masking_statistics(ids, *keras_hub_masking(ids, vocabulary_size, seed=0), _MASK, _SPECIAL)
        n_eligible = int((~np.isin(ids, _SPECIAL)).sum())
        for name, nominal, n in (("selection_rate", 0.15, n_eligible), ("mask_share", 0.8, ours["n_selected"]),
                                 ("random_share", 0.1, ours["n_selected"]), ("unchanged_share", 0.1, ours["n_selected"])):
            tolerance = _bounds(nominal, n) * np.sqrt(2)
            expect(abs(ours[name] - reference[name]) <= tolerance,
                   f"{name}: yours {ours[name]:.3f}, keras_hub's MaskedLMMaskGenerator {reference[name]:.3f} "
                   f"(BERT's rule: {nominal}); the difference is more than chance allows ({tolerance:.3f})")
        # Positions must be chosen at random, independently: compare the two halves of each sequence.
        lengths = (ids > 0).sum(axis=1)
        first_half = np.arange(ids.shape[1])[None, :] < (lengths[:, None] // 2)
        eligible = ~np.isin(ids, _SPECIAL)
        rate_first = selected[eligible & first_half].mean()
        rate_second = selected[eligible & ~first_half].mean()
        expect(abs(rate_first - rate_second) < 0.03,
               f"selection rate {rate_first:.3f} in the first half of the sequences vs {rate_second:.3f} in the "
               "second: select every eligible position with the same probability")
        again = mask_tokens(ids, np.random.default_rng(0), vocabulary_size, mask_token_id=_MASK,
                            special_token_ids=_SPECIAL)
        expect(np.array_equal(np.asarray(again[0]), masked) and np.array_equal(np.asarray(again[1]), selected),
               "the same rng seed must give the same masks: draw every random number from the rng you are given")
        other = mask_tokens(ids, np.random.default_rng(1), vocabulary_size, mask_token_id=_MASK,
                            special_token_ids=_SPECIAL)
        expect(not np.array_equal(np.asarray(other[1]), selected), "another seed should give another selection")
        high = np.asarray(mask_tokens(ids, np.random.default_rng(2), vocabulary_size, mask_token_id=_MASK,
                                      special_token_ids=_SPECIAL, selection_rate=0.4)[1])
        rate_high = float(high[eligible].mean())
        expect(abs(rate_high - 0.4) < _bounds(0.4, n_eligible),
               f"with selection_rate=0.4 you selected {rate_high:.3f} of the eligible tokens: use the "
               "selection_rate argument")
        return (f"selected {ours['selection_rate']:.3f} of eligible tokens (keras_hub {reference['selection_rate']:.3f}); "
                f"[MASK] / random / unchanged = {ours['mask_share']:.2f} / {ours['random_share']:.2f} / "
                f"{ours['unchanged_share']:.2f}; special tokens never selected; selection_rate respected")

    return run_check("day09.mask_tokens", "Exercise 9.1 - BERT's masking rule", test, spy=spy)


def _numpy(value) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))


def check_masked_lm_loss(masked_lm_loss):
    """Check ``masked_lm_loss(labels, logits, weights) -> scalar`` (Exercise 9.2) against Keras's weighted
    cross-entropy, on backend tensors, and on symbolic tensors (what the compiled training step gives it)."""
    from course_lib import losses

    spy = ReferenceSpy(losses.masked_lm_loss)
    masked_lm_loss = spy.wrap(masked_lm_loss)

    def test():
        import keras

        rng = np.random.default_rng(0)
        logits = rng.normal(scale=3.0, size=(6, 5, 40)).astype(np.float32)
        ids = rng.integers(0, 40, size=(6, 5)).astype(np.int32)
        weights = (rng.random((6, 5)) < 0.6).astype(np.float32)
        weights[0] = 0.0
        tensors = [keras.ops.convert_to_tensor(a) for a in (ids, logits, weights)]
        value = _numpy(masked_lm_loss(*tensors))
        expect(value.size == 1, f"return one number (a scalar tensor), got shape {value.shape}")
        loss = float(value.reshape(()))
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        want = float(_numpy(ce(ids, logits, sample_weight=weights)))
        unweighted = float(_numpy(ce(ids, logits)))
        as_probs = keras.losses.SparseCategoricalCrossentropy(from_logits=False, reduction="mean_with_sample_weight")
        if not np.isclose(loss, want, atol=1e-4):
            if np.isclose(loss, unweighted, atol=1e-4):
                raise AssertionError("your loss averages over every slot: padding slots (weight 0) must not count")
            if np.isclose(loss, float(_numpy(as_probs(ids, logits, sample_weight=weights))), atol=1e-4):
                raise AssertionError("your loss treats the logits as probabilities: they are raw scores")
            if np.isclose(loss, want * weights.sum() / weights.size, atol=1e-4):
                raise AssertionError("you divided by the number of slots: divide by the sum of the weights")
            raise AssertionError(f"loss {loss:.5f}, expected {want:.5f}: the mean of -log softmax(logits)[label] "
                                 "over the slots of weight 1")
        uniform = float(_numpy(masked_lm_loss(keras.ops.convert_to_tensor(ids[:2]),
                                              keras.ops.zeros((2, 5, 40)), keras.ops.ones((2, 5)))).reshape(()))
        expect(np.isclose(uniform, math.log(40), atol=1e-4),
               f"equal logits over 40 tokens cost ln 40 = {math.log(40):.4f} nats, got {uniform:.4f}")
        # The training step runs the loss on symbolic tensors: it must be written with keras.ops.
        try:
            symbolic = masked_lm_loss(keras.KerasTensor((4, 3), dtype="int32"),
                                      keras.KerasTensor((4, 3, 40), dtype="float32"),
                                      keras.KerasTensor((4, 3), dtype="float32"))
        except Exception as error:  # noqa: BLE001 - reported to the student
            raise AssertionError("your loss fails on the symbolic tensors of the model's training step "
                                 f"({error.__class__.__name__}): write it with keras.ops only, not NumPy") from None
        expect(tuple(getattr(symbolic, "shape", (None,))) == (),
               f"on symbolic tensors your loss returns shape {getattr(symbolic, 'shape', '?')}: return one scalar")
        return (f"loss {loss:.4f} equals Keras's weighted cross-entropy; ln 40 for equal logits; "
                "keras.ops only (it runs inside the training step)")

    return run_check("day09.masked_lm_loss", "Exercise 9.2 - the masked-LM loss", test, spy=spy)


_EXPERIMENT: dict = {}


def check_mask_rate_experiment(run_experiment, rates, unigram_perplexity: float, vocabulary_size: int,
                               best_rate_fn=None, train_ids=None, batch_size: int | None = None):
    """Check the mask-rate investigation (Exercise 9.3) by running it once.

    Args:
        run_experiment: a zero-argument callable that runs the student's experiment and returns
            ``{rate: {"top1": float, "perplexity": float, "predictions_per_step": float}}`` (the notebook
            passes a closure over its data and its :class:`course_lib.models.bert.MaskedLMRuns`).
        rates: the selection rates asked for.
        unigram_perplexity: the perplexity of the unigram baseline on the validation text; every run starts
            there (its output bias is the unigram distribution), so a trained model must not end far above.
        vocabulary_size: ``V`` (a perplexity above ``V`` is worse than guessing uniformly).
        best_rate_fn: the student's ``best_rate(results) -> rate``, checked against the results.
        train_ids: the training sequences, to check ``predictions_per_step`` (expected: the rate times the
            ordinary tokens of a batch of ``batch_size`` sequences).
        batch_size: sequences per training step.

    Returns:
        The :class:`course_lib.checks.CheckResult`. When the check passes, :func:`mask_rate_results` returns
        the results (the experiment is not run twice).
    """
    from course_lib.models import bert

    spy = ReferenceSpy(bert.mask_rate_experiment)
    run = spy.wrap(run_experiment)
    _EXPERIMENT.pop("results", None)

    def test():
        results = run()
        expect(isinstance(results, dict), f"return a dict {{rate: {{'top1': ..., 'perplexity': ..., ...}}}}, got "
                                          f"{type(results).__name__}")
        expect(sorted(float(r) for r in results) == sorted(float(r) for r in rates),
               f"one entry per rate {list(rates)}, got {list(results)}")
        eligible = None
        if train_ids is not None and batch_size:
            eligible = float((~np.isin(np.asarray(train_ids), _SPECIAL)).sum(axis=1).mean()) * batch_size
        for rate, scores in results.items():
            expect(isinstance(scores, dict) and {"top1", "perplexity", "predictions_per_step"} <= set(scores),
                   f"results[{rate}] must be a dict with 'top1', 'perplexity' and 'predictions_per_step'")
            top1, perplexity = float(scores["top1"]), float(scores["perplexity"])
            expect(0.0 <= top1 <= 1.0, f"rate {rate}: top-1 accuracy {top1} is not a fraction")
            expect(math.isfinite(perplexity) and 1.0 <= perplexity <= vocabulary_size,
                   f"rate {rate}: perplexity {perplexity:.1f} is outside [1, V = {vocabulary_size}]")
            expect(perplexity <= 1.1 * unigram_perplexity,
                   f"rate {rate}: perplexity {perplexity:.1f} is worse than the unigram baseline "
                   f"{unigram_perplexity:.1f} that every run starts from: was the model trained?")
            if eligible is not None:
                per_step, expected = float(scores["predictions_per_step"]), float(rate) * eligible
                expect(abs(per_step - expected) <= 0.1 * expected + 1.0,
                       f"rate {rate}: {per_step:.1f} predictions per step, but a batch of {batch_size} training "
                       f"sequences holds about {eligible:.0f} ordinary tokens, of which {float(rate):.0%} is "
                       f"{expected:.1f}")
        values = [round(float(results[r]["perplexity"]), 6) for r in results]
        expect(len(set(values)) == len(values),
               "two rates give exactly the same perplexity: train the model again for every rate")
        message = "perplexity " + ", ".join(f"{float(r):.2f}: {float(results[r]['perplexity']):.1f}" for r in results)
        if best_rate_fn is not None:
            best = float(best_rate_fn(results))
            want = float(min(results, key=lambda r: float(results[r]["perplexity"])))
            expect(math.isclose(best, want), f"best rate {best}, but your results give the lowest perplexity "
                                             f"at {want}")
            message += f"; lowest at rate {best:.2f}"
        _EXPERIMENT["results"] = results
        return message

    result = run_check("day09.mask_rate_experiment", "Exercise 9.3 - investigate the mask rate", test, spy=spy)
    if not result.passed:
        _EXPERIMENT.pop("results", None)
    return result


def mask_rate_results() -> dict:
    """The results of the last passing :func:`check_mask_rate_experiment` (for ``use_or_reference``).

    Raises:
        LookupError: no passing run of the check in this kernel.
    """
    if "results" not in _EXPERIMENT:
        raise LookupError("Exercise 9.3 has not passed its check in this session")
    return _EXPERIMENT["results"]

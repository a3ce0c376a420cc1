"""Self-checks for Day 09 (masked language modeling): BERT's masking rule, the masked-LM loss and
accuracy, nearest tokens by embedding."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)

_SPECIAL = (0, 1, 2, 3, 4)  # [PAD], [CLS], [SEP], [UNK], [MASK]
_MASK = 4


HINTS = register_hints({
    "day09.mask_tokens": Hints(
        todo="Implement the BERT's masking rule described above the exercise cell.",
        tiers=("eligible = ~np.isin(token_ids, special_token_ids); selected = eligible & "
                          "(rng.random(shape) < 0.15); u = rng.random(shape); on a copy set [MASK] where selected & "
                          "(u < 0.8), a random ordinary id (rng.integers(5, vocabulary_size)) where selected & "
                          "(0.8 <= u < 0.9), leave the rest",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day09.masked_lm_metrics": Hints(
        todo="Implement the loss and accuracy on the masked positions described above the exercise cell.",
        tiers=("log_probs = logits - logsumexp(logits, axis=-1, keepdims=True); nll = -take_along_axis("
                          "log_probs, ids[..., None], -1)[..., 0]; loss = (nll * w).sum() / w.sum(); top-k: the target "
                          "is among the k largest logits; weight every accuracy by w the same way",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day09.nearest_tokens": Hints(
        todo="Implement the nearest tokens by embedding described above the exercise cell.",
        tiers=("normalise the rows: E / norm(E, axis=1, keepdims=True); sims = E_unit @ E_unit[i]; set the "
                          "token itself and ids 0..4 to -inf; take np.argsort(-sims)[:k]",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
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


def check_mask_tokens(mask_tokens):
    """Check ``mask_tokens(token_ids, rng, vocabulary_size, mask_token_id, special_token_ids) -> (masked, selected)``
    (Exercise 9.1) statistically against ``keras_hub.layers.MaskedLMMaskGenerator``.
    """
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
        return (f"selected {ours['selection_rate']:.3f} of eligible tokens (keras_hub {reference['selection_rate']:.3f}); "
                f"[MASK] / random / unchanged = {ours['mask_share']:.2f} / {ours['random_share']:.2f} / "
                f"{ours['unchanged_share']:.2f}; special tokens never selected")

    return run_check("day09.mask_tokens", "Exercise 9.1 - BERT's masking rule", test)


def check_masked_lm_metrics(masked_lm_metrics):
    """Check ``masked_lm_metrics(logits, mask_ids, mask_weights, k) -> (loss, top1, topk)`` (Exercise 9.2)
    against Keras's weighted cross-entropy and top-k accuracy."""
    def test():
        import keras

        rng = np.random.default_rng(0)
        logits = rng.normal(scale=3.0, size=(6, 5, 40)).astype(np.float32)
        ids = rng.integers(0, 40, size=(6, 5))
        weights = (rng.random((6, 5)) < 0.6).astype(np.float32)
        weights[0] = 0.0
        loss, top1, topk = (float(v) for v in masked_lm_metrics(logits, ids, weights, 5))
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        want_loss = float(ce(ids, logits, sample_weight=weights))
        acc1 = keras.metrics.SparseCategoricalAccuracy()
        acc1.update_state(ids, logits, sample_weight=weights)
        acc5 = keras.metrics.SparseTopKCategoricalAccuracy(k=5)
        acc5.update_state(ids, logits, sample_weight=weights)
        unweighted = float(ce(ids, logits))
        if not np.isclose(loss, want_loss, atol=1e-4) and np.isclose(loss, unweighted, atol=1e-4):
            raise AssertionError("your loss averages over every slot: padding slots (weight 0) must not count")
        expect(np.isclose(loss, want_loss, atol=1e-4),
               f"loss {loss:.5f}, expected {want_loss:.5f}: mean of -log softmax(logits)[target] over weight-1 slots")
        expect(np.isclose(top1, float(acc1.result()), atol=1e-6),
               f"top-1 accuracy {top1:.4f}, expected {float(acc1.result()):.4f} (weighted by mask_weights)")
        expect(np.isclose(topk, float(acc5.result()), atol=1e-6),
               f"top-5 accuracy {topk:.4f}, expected {float(acc5.result()):.4f}")
        return f"loss {loss:.4f}, top-1 {top1:.3f}, top-5 {topk:.3f} equal Keras's weighted loss and metrics"

    return run_check("day09.masked_lm_metrics", "Exercise 9.2 - loss and accuracy on the masked positions", test)


def check_nearest_tokens(nearest_tokens):
    """Check ``nearest_tokens(embeddings, vocabulary, token, k) -> [(token, similarity), ...]`` (Exercise 9.3)."""
    def test():
        from course_lib.models.bert import nearest_tokens as reference

        rng = np.random.default_rng(0)
        vocabulary = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + [f"w{i}" for i in range(60)]
        embeddings = rng.normal(size=(len(vocabulary), 8))
        embeddings[5] *= 10.0  # a long vector: cosine similarity must not depend on the norm
        embeddings[6] = 0.01 * embeddings[7]  # parallel to w2, tiny norm: cosine 1
        got = list(nearest_tokens(embeddings, vocabulary, "w2", 4))
        expect(len(got) == 4, f"expected 4 neighbours, got {len(got)}")
        expect(all(len(pair) == 2 for pair in got), "return (token, similarity) pairs")
        want = reference(embeddings, vocabulary, "w2", 4)
        expect(got[0][0] == "w1", f"w1 is a scaled copy of w2 (cosine 1.0) and must come first, got {got[0][0]!r}")
        expect([t for t, _ in got] == [t for t, _ in want],
               f"neighbours {[t for t, _ in got]}, expected {[t for t, _ in want]} (cosine similarity, best first)")
        expect(np.allclose([s for _, s in got], [s for _, s in want], atol=1e-6), "similarities should be cosines")
        for token in ("w0", "w10", "w33"):
            names = [t for t, _ in nearest_tokens(embeddings, vocabulary, token, 10)]
            expect(token not in names, f"{token!r} lists itself as its own neighbour: exclude it")
            expect(not set(names) & set(vocabulary[:5]), "special tokens should never be proposed")
        return "cosine-similarity neighbours match the reference; no self, no special tokens"

    return run_check("day09.nearest_tokens", "Exercise 9.3 - nearest tokens by embedding", test)

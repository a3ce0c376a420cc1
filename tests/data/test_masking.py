"""Unit tests for course_lib.data.masking: BERT's masking rule (statistically, against
keras_hub.layers.MaskedLMMaskGenerator) and the masked-LM batches."""

import numpy as np
import pytest

from course_lib.data import masking, tokenization

V = 500  # the vocabulary size of token_batch


# --- the masking rule ---------------------------------------------------------------------------

def test_mask_tokens_matches_keras_hub_statistically(token_batch):
    ids = token_batch()
    ours = masking.masking_statistics(ids, *masking.mask_tokens(ids, np.random.default_rng(0), V))
    ref = masking.masking_statistics(ids, *masking.keras_hub_masking(ids, V, seed=0))
    n_eligible = int((ids > 4).sum())
    # two independent binomial estimates: allow 5 standard deviations of their difference
    sd = lambda p, n: np.sqrt(2 * p * (1 - p) / n)  # noqa: E731
    assert abs(ours["selection_rate"] - ref["selection_rate"]) < 5 * sd(0.15, n_eligible)
    assert abs(ours["selection_rate"] - 0.15) < 5 * sd(0.15, n_eligible) / np.sqrt(2)
    for name, p in (("mask_share", 0.8), ("random_share", 0.1), ("unchanged_share", 0.1)):
        assert abs(ours[name] - ref[name]) < 5 * sd(p, ours["n_selected"]), name
        assert abs(ours[name] - p) < 5 * sd(p, ours["n_selected"]) / np.sqrt(2), name
    for stats in (ours, ref):
        assert stats["special_selected"] == 0 and stats["changed_outside"] == 0


def test_special_tokens_and_padding_are_never_selected(token_batch):
    ids = token_batch(1)
    special = np.isin(ids, masking.SPECIAL_IDS)
    assert (ids == 0).sum() > 1000 and (ids == 3).sum() > 50  # the batch has padding and [UNK]s
    for seed in range(20):
        rng = np.random.default_rng(seed)
        masked, selected = masking.mask_tokens(ids, rng, V, selection_rate=0.9, max_selections=40)
        assert not selected[special].any()
        np.testing.assert_array_equal(masked[special], ids[special])
        np.testing.assert_array_equal(masked[~selected], ids[~selected])
        replaced = masked[selected & (masked != ids) & (masked != tokenization.MASK_ID)]
        assert replaced.size == 0 or replaced.min() >= 5  # random replacements are ordinary tokens
        assert selected.sum(axis=1).max() <= 40


def test_masking_is_seeded_and_does_not_modify_input(token_batch):
    ids = token_batch(2)
    before = ids.copy()
    a = masking.mask_tokens(ids, np.random.default_rng(5), V)
    b = masking.mask_tokens(ids, np.random.default_rng(5), V)
    c = masking.mask_tokens(ids, np.random.default_rng(6), V)
    np.testing.assert_array_equal(ids, before)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0].dtype == np.int32


def test_select_tokens_cap_keeps_a_random_subset():
    ids = np.full((2000, 30), 7, dtype=np.int32)
    selected = masking.select_tokens(ids, np.random.default_rng(0), selection_rate=0.5, max_selections=5)
    assert selected.sum(axis=1).max() == 5
    position_rate = selected.mean(axis=0)  # every column equally likely to survive the cap
    assert position_rate.std() < 0.02
    with pytest.raises(ValueError):
        masking.corrupt_tokens(ids, selected, np.random.default_rng(0), V, mask_token_rate=0.95, random_token_rate=0.1)
    with pytest.raises(ValueError, match="shape"):
        masking.corrupt_tokens(ids, selected[:, :3], np.random.default_rng(0), V)


def test_selection_to_positions():
    ids = np.array([[1, 10, 11, 12, 2, 0], [1, 20, 2, 0, 0, 0]])
    selected = np.array([[0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    positions, targets, weights = masking.selection_to_positions(selected, ids, 3)
    assert positions.tolist() == [[1, 3, 0], [0, 0, 0]]
    assert targets.tolist() == [[10, 12, 0], [0, 0, 0]]
    assert weights.tolist() == [[1, 1, 0], [0, 0, 0]]
    assert positions.dtype == np.int32 and weights.dtype == np.float32
    with pytest.raises(ValueError, match="max_selections"):
        masking.selection_to_positions(selected, ids, 1)


def test_masked_lm_batches(token_batch):
    ids = token_batch(3)[:100]
    batches = masking.MaskedLMBatches(ids, V, batch_size=32, seed=0)
    assert len(batches) == 4 and batches.max_selections == masking.default_max_selections(64) == 15
    inputs, targets, weights = batches[0]
    assert inputs["token_ids"].shape == (32, 64) and inputs["mask_positions"].shape == (32, 15)
    assert targets.shape == weights.shape == (32, 15)
    assert batches[3][0]["token_ids"].shape == (4, 64)  # the last, partial batch
    # the targets are the original tokens at the chosen positions; other positions are untouched
    originals = ids[batches._order[:32]]
    picked = np.take_along_axis(originals, inputs["mask_positions"], axis=1)
    np.testing.assert_array_equal(targets[weights > 0], picked[weights > 0])
    assert np.all(targets[weights > 0] > 4)
    corrupted = inputs["token_ids"] != originals
    chosen = np.zeros_like(corrupted)
    np.put_along_axis(chosen, inputs["mask_positions"], weights > 0, axis=1)
    assert not corrupted[~chosen].any()
    # reproducible; new masks and order after an epoch
    again = masking.MaskedLMBatches(ids, V, batch_size=32, seed=0)[0]
    np.testing.assert_array_equal(again[0]["token_ids"], inputs["token_ids"])
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0]["token_ids"], inputs["token_ids"])
    fixed = masking.MaskedLMBatches(ids, V, batch_size=32, seed=0, shuffle=False)
    np.testing.assert_array_equal(fixed._order, np.arange(100))


def naive_mask_fn(token_ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4),
                  selection_rate=0.15):
    """An independent (student-style) masking rule: no cap on the number selected per row."""
    selected = ~np.isin(token_ids, special_token_ids) & (rng.random(token_ids.shape) < selection_rate)
    masked = np.where(selected, mask_token_id, token_ids)
    return masked, selected


def test_cap_selections_keeps_at_most_p_and_restores_the_rest():
    ids = np.full((500, 20), 9, dtype=np.int32)
    ids[:, 0], ids[:, -1] = 1, 2
    masked, selected = naive_mask_fn(ids, np.random.default_rng(0), V, selection_rate=0.6)
    assert selected.sum(axis=1).max() > 5
    capped_ids, capped = masking.cap_selections(ids, masked, selected, np.random.default_rng(1), 5)
    assert capped.sum(axis=1).max() == 5 and not (capped & ~selected).any()
    np.testing.assert_array_equal(capped_ids[~capped], ids[~capped])  # dropped selections get their token back
    assert (capped_ids[capped] == tokenization.MASK_ID).all()
    same_ids, same = masking.cap_selections(ids, masked, selected, np.random.default_rng(1), 20)
    np.testing.assert_array_equal(same, selected)
    np.testing.assert_array_equal(same_ids, masked)


def test_batches_with_a_masking_function_and_a_selection_rate(token_batch):
    ids = token_batch(4)[:64]
    batches = masking.MaskedLMBatches(ids, V, batch_size=32, seed=0, mask_fn=naive_mask_fn, selection_rate=0.4)
    assert batches.max_selections == masking.default_max_selections(64, 0.4) == 39
    inputs, targets, weights = batches[0]
    originals = ids[batches._order[:32]]
    eligible = ~np.isin(originals, masking.SPECIAL_IDS)
    assert abs(weights.sum() / eligible.sum() - 0.4) < 0.05  # the rate reached the masking function
    picked = np.take_along_axis(inputs["token_ids"], inputs["mask_positions"], axis=1)
    assert (picked[weights > 0] == tokenization.MASK_ID).all()  # naive_mask_fn's corruption was used
    np.testing.assert_array_equal(targets[weights > 0],
                                  np.take_along_axis(originals, inputs["mask_positions"], axis=1)[weights > 0])


def test_loss_on_every_position(token_batch):
    ids = token_batch(5)[:40]
    batches = masking.MaskedLMBatches(ids, V, batch_size=40, seed=0, loss_positions="all")
    assert batches.max_selections == 64
    inputs, targets, weights = batches[0]
    originals = ids[batches._order]
    eligible = ~np.isin(originals, masking.SPECIAL_IDS)
    assert weights.sum() == eligible.sum()  # every real token is a target, corrupted or not
    assert 0.1 < (inputs["token_ids"] != originals).sum() / eligible.sum() < 0.2  # the input is still 15 % BERT-masked
    np.testing.assert_array_equal(np.sort(targets[weights > 0]), np.sort(originals[eligible]))
    with pytest.raises(ValueError, match="loss_positions"):
        masking.MaskedLMBatches(ids, V, loss_positions="some")
    with pytest.raises(ValueError, match="loss_positions"):
        masking.make_mlm_batch(ids, np.random.default_rng(0), V, 10, loss_positions="every")

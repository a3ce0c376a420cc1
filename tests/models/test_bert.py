"""Unit tests for course_lib.models.bert and course_lib.checks.day09: BERT's masking rule (statistically,
against keras_hub.layers.MaskedLMMaskGenerator), the batches, the mini-BERT (tied embeddings, attention
maps, .keras round-trip), training on a tiny synthetic language, evaluation, fill_mask, and the notebook's
reference solutions against the self-checks."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from course_lib import checks, text
from course_lib.checks import day09
from course_lib.models import bert

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "day09_masked_language_modeling.ipynb"
V = 500


def big_batch(seed=0):
    return day09.synthetic_batch(seed, batch=600, length=64, vocabulary_size=V)


# --- the masking rule ---------------------------------------------------------------------------

def test_mask_tokens_matches_keras_hub_statistically():
    ids = big_batch()
    ours = bert.masking_statistics(ids, *bert.mask_tokens(ids, np.random.default_rng(0), V))
    ref = bert.masking_statistics(ids, *bert.keras_hub_masking(ids, V, seed=0))
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


def test_special_tokens_and_padding_are_never_selected():
    ids = big_batch(1)
    special = np.isin(ids, bert.SPECIAL_IDS)
    assert (ids == 0).sum() > 1000 and (ids == 3).sum() > 50  # the batch has padding and [UNK]s
    for seed in range(20):
        rng = np.random.default_rng(seed)
        masked, selected = bert.mask_tokens(ids, rng, V, selection_rate=0.9, max_selections=40)
        assert not selected[special].any()
        np.testing.assert_array_equal(masked[special], ids[special])
        np.testing.assert_array_equal(masked[~selected], ids[~selected])
        replaced = masked[selected & (masked != ids) & (masked != bert.MASK_ID)]
        assert replaced.size == 0 or replaced.min() >= 5  # random replacements are ordinary tokens
        assert selected.sum(axis=1).max() <= 40


def test_masking_is_seeded_and_does_not_modify_input():
    ids = big_batch(2)
    before = ids.copy()
    a = bert.mask_tokens(ids, np.random.default_rng(5), V)
    b = bert.mask_tokens(ids, np.random.default_rng(5), V)
    c = bert.mask_tokens(ids, np.random.default_rng(6), V)
    np.testing.assert_array_equal(ids, before)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0].dtype == np.int32


def test_select_tokens_cap_keeps_a_random_subset():
    ids = np.full((2000, 30), 7, dtype=np.int32)
    selected = bert.select_tokens(ids, np.random.default_rng(0), selection_rate=0.5, max_selections=5)
    assert selected.sum(axis=1).max() == 5
    position_rate = selected.mean(axis=0)  # every column equally likely to survive the cap
    assert position_rate.std() < 0.02
    with pytest.raises(ValueError):
        bert.corrupt_tokens(ids, selected, np.random.default_rng(0), V, mask_token_rate=0.95, random_token_rate=0.1)
    with pytest.raises(ValueError, match="shape"):
        bert.corrupt_tokens(ids, selected[:, :3], np.random.default_rng(0), V)


def test_selection_to_positions():
    ids = np.array([[1, 10, 11, 12, 2, 0], [1, 20, 2, 0, 0, 0]])
    selected = np.array([[0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    positions, targets, weights = bert.selection_to_positions(selected, ids, 3)
    assert positions.tolist() == [[1, 3, 0], [0, 0, 0]]
    assert targets.tolist() == [[10, 12, 0], [0, 0, 0]]
    assert weights.tolist() == [[1, 1, 0], [0, 0, 0]]
    assert positions.dtype == np.int32 and weights.dtype == np.float32
    with pytest.raises(ValueError, match="max_selections"):
        bert.selection_to_positions(selected, ids, 1)


def test_masked_lm_batches():
    ids = big_batch(3)[:100]
    batches = bert.MaskedLMBatches(ids, V, batch_size=32, seed=0)
    assert len(batches) == 4 and batches.max_selections == bert.default_max_selections(64) == 15
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
    again = bert.MaskedLMBatches(ids, V, batch_size=32, seed=0)[0]
    np.testing.assert_array_equal(again[0]["token_ids"], inputs["token_ids"])
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0]["token_ids"], inputs["token_ids"])
    fixed = bert.MaskedLMBatches(ids, V, batch_size=32, seed=0, shuffle=False)
    np.testing.assert_array_equal(fixed._order, np.arange(100))


# --- the model ----------------------------------------------------------------------------------

def small_model(vocabulary_size=30, sequence_length=16, **kwargs):
    keras.utils.set_random_seed(0)
    options = dict(hidden_dim=32, num_layers=2, num_heads=2, intermediate_dim=64, dropout=0.0)
    options.update(kwargs)
    return bert.MiniBert(vocabulary_size, sequence_length, **options)


def test_mini_bert_shapes_and_tied_embeddings():
    model = small_model()
    ids = np.array([[1, 5, 6, 7, 4, 8, 2] + [0] * 9] * 3, dtype=np.int32)
    logits = model({"token_ids": ids, "mask_positions": np.array([[4, 1]] * 3, dtype=np.int32)})
    assert tuple(logits.shape) == (3, 2, 30)
    head = model.get_layer("mlm_head")
    assert head.token_embedding is model.token_embedding  # the output projection IS the input embedding
    assert not any("output_kernel" in w.path for w in model.weights)
    assert model.token_embedding_matrix().shape == (30, 32)
    assert model.encode(ids).shape == (3, 16, 32)
    with pytest.raises(ValueError):
        bert.MiniBert(30, 16, hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError):
        bert.MiniBert(5, 16)


def test_attention_scores_are_distributions_that_ignore_padding():
    model = small_model()
    ids = np.array([[1, 5, 6, 7, 8, 2] + [0] * 10], dtype=np.int32)
    for layer in (0, -1):
        scores = model.attention_scores(ids, layer=layer)
        assert scores.shape == (1, 2, 16, 16)
        np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)
        assert scores[0, :, :6, 6:].max() < 1e-6  # real tokens never attend to [PAD]
    with pytest.raises(IndexError):
        model.attention_scores(ids, layer=5)


def test_padding_is_masked_out_of_attention():
    model = small_model()
    ids = np.array([[1, 5, 6, 7, 2] + [0] * 11], dtype=np.int32)
    base = model.encode(ids)[0, :5]
    # Changing the [PAD] embedding changes nothing at the real positions: padded keys are masked out.
    table = model.token_embedding.embeddings
    table.assign(keras.ops.concatenate([table[:1] + 5.0, table[1:]], axis=0))
    np.testing.assert_allclose(model.encode(ids)[0, :5], base, atol=1e-5)
    # A real token in the tail is attended to and does change them.
    other = ids.copy()
    other[0, 8] = 9
    assert not np.allclose(model.encode(other)[0, :5], base, atol=1e-4)


def test_save_load_round_trip(tmp_path):
    model = bert.compile_mlm(small_model(), 1e-3)
    model.init_unigram_bias(np.arange(30))  # weights that differ from a fresh initialisation
    model.optimizer.build(model.trainable_variables)  # its state is saved too
    inputs = {"token_ids": np.array([[1, 5, 6, 4, 7, 2] + [0] * 10] * 2, dtype=np.int32),
              "mask_positions": np.array([[3, 1, 0]] * 2, dtype=np.int32)}
    path = tmp_path / "mini_bert.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, bert.MiniBert) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs)),
                               atol=1e-6)
    assert loaded.get_layer("mlm_head").token_embedding is loaded.token_embedding  # still tied
    np.testing.assert_allclose(loaded.token_embedding_matrix(), model.token_embedding_matrix())
    assert loaded.loss.reduction == "mean_with_sample_weight"  # the compiled objective travels with the file


def counting_language(n=600, length=16, words=20, seed=0):
    """[CLS] w_k w_k+1 ... (mod words) [SEP] [PAD]...: every token is determined by its neighbours."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, length), dtype=np.int32)
    for row in range(n):
        size = int(rng.integers(6, length - 1))
        start = int(rng.integers(words))
        ids[row, 0] = 1
        ids[row, 1:size + 1] = 5 + (start + np.arange(size)) % words
        ids[row, size + 1] = 2
    return ids


def test_training_learns_a_predictable_language_and_beats_unigram():
    train, valid = counting_language(seed=0), counting_language(200, seed=1)
    vocabulary_size = 25
    model = small_model(vocabulary_size, 16, num_layers=1)
    batches = bert.MaskedLMBatches(train, vocabulary_size, batch_size=32, seed=0)
    model.init_unigram_bias(text.token_counts(train, vocabulary_size))
    bert.compile_mlm(model, 3e-3, total_steps=8 * len(batches), warmup_steps=len(batches))
    history = model.fit(batches, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] - 1.0
    scores = bert.evaluate_masked_lm(model, valid, n_draws=2, seed=0)
    baseline = bert.unigram_baseline(text.token_counts(train, vocabulary_size), scores["targets"])
    assert scores["n_predictions"] == len(scores["targets"]) > 300
    assert baseline["top1"] < 0.1 and baseline["perplexity"] > 15
    assert scores["top1"] > 0.4 and scores["top5"] >= scores["top1"]
    assert scores["perplexity"] < baseline["perplexity"] / 3
    assert np.isclose(scores["perplexity"], np.exp(scores["cross_entropy"]))


def test_init_unigram_bias_predicts_the_unigram_distribution():
    model = small_model(12, 8, num_layers=1)
    counts = np.array([50, 50, 50, 50, 50, 60, 30, 10, 0, 0, 0, 0])
    model.init_unigram_bias(counts)
    inputs = {"token_ids": np.array([[1, 4, 5, 2, 0, 0, 0, 0]], dtype=np.int32),
              "mask_positions": np.array([[1]], dtype=np.int32)}
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(model(inputs)))[0, 0]
    assert probs[:5].max() < 1e-3  # special tokens practically never proposed
    assert np.argmax(probs) == 5 and probs[5] > probs[6] > probs[7] > probs[8]
    with pytest.raises(ValueError, match="shape"):
        model.init_unigram_bias(counts[:5])


def test_unigram_baseline_numbers():
    counts = np.array([0, 0, 0, 0, 0, 6, 3, 1])
    result = bert.unigram_baseline(counts, np.array([5, 5, 6, 7]))
    assert result["top1"] == 0.5 and result["top5"] == 1.0
    probs = np.array([7, 4, 2]) / 13  # add-one smoothing over the non-special ids
    assert np.isclose(result["cross_entropy"], -np.mean(np.log(probs[[0, 0, 1, 2]])))


def test_fill_mask_and_nearest_tokens():
    vocabulary = list(text.SPECIAL_TOKENS) + [f"w{i}" for i in range(20)]
    tokenizer = text.build_tokenizer(vocabulary)
    model = small_model(len(vocabulary), 16, num_layers=1)
    results = bert.fill_mask(model, tokenizer, "w1 w2 [MASK] w4 [MASK]", top_k=3)
    assert len(results) == 2 and all(len(r) == 3 for r in results)
    for candidates in results:
        probabilities = [p for _, p in candidates]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-9
        assert all(token in vocabulary[5:] for token, _ in candidates)
    bound = bert.make_fill_mask(model, tokenizer)
    assert bound("w1 [MASK]") == bert.fill_mask(model, tokenizer, "w1 [MASK]")
    with pytest.raises(ValueError, match="MASK"):
        bound("w1 w2")
    with pytest.raises(ValueError, match="fit"):
        bound(" ".join(["w1"] * 20) + " [MASK]")
    embeddings = np.eye(len(vocabulary))
    embeddings[6] = embeddings[5] * 3 + 0.1 * embeddings[7]
    neighbours = bert.nearest_tokens(embeddings, vocabulary, "w0", k=2)
    assert neighbours[0][0] == "w1" and neighbours[0][1] > 0.99
    with pytest.raises(KeyError):
        bert.nearest_tokens(embeddings, vocabulary, "nope")


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


def test_notebook_reference_solutions_pass_the_checks():
    namespace = notebook_solutions()
    assert day09.check_mask_tokens(namespace["mask_tokens"]).passed
    assert day09.check_masked_lm_metrics(namespace["masked_lm_metrics"]).passed
    assert day09.check_nearest_tokens(namespace["nearest_tokens"]).passed
    # the students' masking solution also agrees with keras_hub on another batch, statistically
    ids = big_batch(7)
    ours = bert.masking_statistics(ids, *namespace["mask_tokens"](ids, np.random.default_rng(3), V))
    ref = bert.masking_statistics(ids, *bert.keras_hub_masking(ids, V, seed=3))
    assert abs(ours["selection_rate"] - ref["selection_rate"]) < 0.02
    assert abs(ours["mask_share"] - ref["mask_share"]) < 0.05
    assert ours["special_selected"] == 0


def test_library_functions_pass_the_checks():
    assert day09.check_mask_tokens(lambda ids, rng, v, **kw: bert.mask_tokens(ids, rng, v, **kw)).passed

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
    return bert.corrupt_tokens(ids, selected, rng, vocabulary_size), selected


def wrong_first_tokens(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    eligible = ~np.isin(ids, special_token_ids)
    selected = eligible & (np.cumsum(eligible, axis=1) <= np.round(0.15 * eligible.sum(axis=1, keepdims=True)))
    return bert.corrupt_tokens(ids, selected, rng, vocabulary_size), selected


def wrong_in_place(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    masked, selected = bert.mask_tokens(ids, rng, vocabulary_size)
    ids[...] = masked
    return masked, selected


def wrong_all_tokens(ids, rng, vocabulary_size, mask_token_id=4, special_token_ids=(0, 1, 2, 3, 4)):
    return bert.mask_tokens(ids, rng, vocabulary_size, special_token_ids=(0,))


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

"""Unit tests for course_lib.models.bert: the mini-BERT (tied embeddings, attention maps, .keras round-trip),
training on a tiny synthetic language, evaluation and fill_mask."""

import keras
import numpy as np
import pytest

from course_lib.data import masking, tokenization
from course_lib.models import bert


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
    batches = masking.MaskedLMBatches(train, vocabulary_size, batch_size=32, seed=0)
    model.init_unigram_bias(tokenization.token_counts(train, vocabulary_size))
    bert.compile_mlm(model, 3e-3, total_steps=8 * len(batches), warmup_steps=len(batches))
    history = model.fit(batches, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] - 1.0
    scores = bert.evaluate_masked_lm(model, valid, n_draws=2, seed=0)
    baseline = bert.unigram_baseline(tokenization.token_counts(train, vocabulary_size), scores["targets"])
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
    vocabulary = list(tokenization.SPECIAL_TOKENS) + [f"w{i}" for i in range(20)]
    tokenizer = tokenization.build_tokenizer(vocabulary)
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

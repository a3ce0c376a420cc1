"""Unit tests for course_lib.models.bert: the mini-BERT (tied embeddings, attention maps, .keras round-trip),
training on a tiny synthetic language, evaluation and fill_mask."""

import keras
import numpy as np
import pytest

from course_lib import losses
from course_lib.data import masking, tokenization
from course_lib.evaluation import language_model
from course_lib.models import bert, text_classifier  # text_classifier's tests share this file's trained model


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
    # the compiled metrics travel with the file; the loss is the library's masked-LM loss again
    assert loaded.compiled and loaded.mlm_loss is losses.masked_lm_loss
    logs = loaded.train_on_batch(inputs, np.array([[6, 5, 0]] * 2), sample_weight=np.array([[1.0, 1.0, 0.0]] * 2),
                                 return_dict=True)
    assert {"loss", "masked_top1", "masked_top5"} <= set(logs)


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
    scores = language_model.evaluate_masked_lm(model, valid, n_draws=2, seed=0)
    baseline = language_model.unigram_baseline(tokenization.token_counts(train, vocabulary_size), scores["targets"])
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
    result = language_model.unigram_baseline(counts, np.array([5, 5, 6, 7]))
    assert result["top1"] == 0.5 and result["top5"] == 1.0
    probs = np.array([7, 4, 2]) / 13  # add-one smoothing over the non-special ids
    assert np.isclose(result["cross_entropy"], -np.mean(np.log(probs[[0, 0, 1, 2]])))


def test_fill_mask_and_nearest_tokens():
    vocabulary = list(tokenization.SPECIAL_TOKENS) + [f"w{i}" for i in range(20)]
    tokenizer = tokenization.build_tokenizer(vocabulary)
    model = small_model(len(vocabulary), 16, num_layers=1)
    results = language_model.fill_mask(model, tokenizer, "w1 w2 [MASK] w4 [MASK]", top_k=3)
    assert len(results) == 2 and all(len(r) == 3 for r in results)
    for candidates in results:
        probabilities = [p for _, p in candidates]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-9
        assert all(token in vocabulary[5:] for token, _ in candidates)
    bound = language_model.make_fill_mask(model, tokenizer)
    assert bound("w1 [MASK]") == language_model.fill_mask(model, tokenizer, "w1 [MASK]")
    with pytest.raises(ValueError, match="MASK"):
        bound("w1 w2")
    with pytest.raises(ValueError, match="fit"):
        bound(" ".join(["w1"] * 20) + " [MASK]")
    embeddings = np.eye(len(vocabulary))
    embeddings[6] = embeddings[5] * 3 + 0.1 * embeddings[7]
    neighbours = language_model.nearest_tokens(embeddings, vocabulary, "w0", k=2)
    assert neighbours[0][0] == "w1" and neighbours[0][1] > 0.99
    with pytest.raises(KeyError):
        language_model.nearest_tokens(embeddings, vocabulary, "nope")


# --- the training step: the loss function is the model's own setting ------------------------------

def test_compute_loss_uses_the_given_loss_function():
    model = small_model(30, 8, num_layers=1)
    inputs = {"token_ids": np.array([[1, 5, 4, 7, 4, 2, 0, 0]] * 4, dtype=np.int32),
              "mask_positions": np.array([[2, 4, 0]] * 4, dtype=np.int32)}
    labels = np.array([[6, 8, 0]] * 4, dtype=np.int32)
    weights = np.array([[1.0, 1.0, 0.0]] * 4, dtype=np.float32)
    logits = model(inputs)
    expected = float(keras.ops.convert_to_numpy(losses.masked_lm_loss(labels, logits, weights)))
    assert np.isclose(float(keras.ops.convert_to_numpy(model.compute_loss(inputs, labels, logits, weights))), expected)
    calls = []

    def doubled(labels, logits, weights):
        calls.append(tuple(logits.shape))
        return 2.0 * losses.masked_lm_loss(labels, logits, weights)

    bert.compile_mlm(model, 0.0, loss_fn=doubled)  # learning rate 0: the step changes nothing
    logs = model.train_on_batch(inputs, labels, sample_weight=weights, return_dict=True)
    assert calls and np.isclose(logs["loss"], 2 * expected, rtol=1e-4)
    assert 0.0 <= logs["masked_top1"] <= logs["masked_top5"] <= 1.0
    bert.compile_mlm(model, 0.0)
    assert model.mlm_loss is losses.masked_lm_loss


TINY = dict(hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=16, dropout=0.0)


def test_masked_lm_runs_start_every_run_from_the_same_weights():
    train = counting_language(200, seed=0)
    runs = bert.MaskedLMRuns(25, 16, TINY, steps=9, batch_size=32, seed=3)  # 6 batches per epoch: 6 + 3 steps
    start = runs.model.token_embedding_matrix().copy()
    first = runs.train(train).token_embedding_matrix().copy()
    assert int(keras.ops.convert_to_numpy(runs.model.optimizer.iterations)) == 9
    assert not np.allclose(first, start)
    second = runs.train(train).token_embedding_matrix()  # reset, then the same 9 steps on the same batches
    np.testing.assert_allclose(second, first, atol=1e-5)
    other = runs.train(train, selection_rate=0.4).token_embedding_matrix()
    assert not np.allclose(other, first, atol=1e-5)
    assert runs.runs == 3 and runs.max_selections == masking.default_max_selections(16, 0.5)
    every = bert.MaskedLMRuns(25, 16, TINY, steps=4, batch_size=100, loss_positions="all")
    assert every.max_selections == 16
    every.train(train)
    assert int(keras.ops.convert_to_numpy(every.model.optimizer.iterations)) == 4
    with pytest.raises(ValueError, match="steps"):
        bert.MaskedLMRuns(25, 16, TINY, steps=0)


def test_mask_rate_experiment_trains_one_model_per_rate():
    train, valid = counting_language(200, seed=0), counting_language(50, seed=1)
    runs = bert.MaskedLMRuns(25, 16, TINY, steps=6, batch_size=32)
    results = bert.mask_rate_experiment(runs, (0.1, 0.3), train, valid, n_draws=1)
    assert list(results) == [0.1, 0.3] and runs.runs == 2
    assert all(set(r) == {"top1", "top5", "perplexity"} for r in results.values())
    assert results[0.1]["perplexity"] != results[0.3]["perplexity"]


# --- downstream: encoder, pooled features, classifier ---------------------------------------------

def test_encoder_pooled_features_and_classifier():
    model = small_model()
    ids = np.array([[1, 5, 6, 7, 2] + [0] * 11, [1, 8, 9, 10, 11, 12, 2] + [0] * 9], dtype=np.int32)
    hidden = model.encode(ids)
    encoder = model.encoder()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(ids)), hidden, atol=1e-5)
    assert encoder.get_layer("embeddings") is model.get_layer("embeddings")  # shared weights
    features = text_classifier.pooled_features(model, ids, batch_size=4)
    assert features.shape == (2, 32) and features.dtype == np.float32
    np.testing.assert_allclose(features[0], hidden[0, :5].mean(axis=0), atol=1e-5)  # [PAD] excluded
    np.testing.assert_allclose(features[1], hidden[1, :7].mean(axis=0), atol=1e-5)
    embedded = keras.ops.convert_to_numpy(
        keras.Model(model.get_layer("embeddings").input, model.get_layer("embeddings").output)(ids))
    np.testing.assert_allclose(text_classifier.pooled_features(model, ids, layer="embeddings")[0], embedded[0, :5].mean(axis=0),
                               atol=1e-5)
    with pytest.raises(ValueError, match="layer"):
        text_classifier.pooled_features(model, ids, layer="middle")
    classifier = text_classifier.build_text_classifier(model, 3)
    assert classifier(ids).shape == (2, 3)
    before = model.token_embedding_matrix().copy()
    classifier.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.fit(ids, np.array([0, 2]), epochs=2, verbose=0)
    np.testing.assert_array_equal(model.token_embedding_matrix(), before)  # the source model is untouched
    with pytest.raises(ValueError, match="num_classes"):
        text_classifier.build_text_classifier(model, 1)


def test_fine_tune_runs_compare_encoders_on_identical_batches():
    ids = counting_language(120, length=16, seed=2)
    labels = (ids[:, 1] - 5) % 2  # the parity of the first word: learnable from the tokens
    pretrained, untrained = small_model(25, 16, num_layers=1), small_model(25, 16, num_layers=1)
    pretrained.token_embedding.embeddings.assign(keras.ops.ones((25, 32)) * 0.1)
    runs = text_classifier.FineTuneRuns(pretrained, 2, steps=6, batch_size=16, seed=0)
    a = runs.fit_predict(pretrained, ids[:80], labels[:80], ids[80:], run_seed=0)
    b = runs.fit_predict(pretrained, ids[:80], labels[:80], ids[80:], run_seed=0)
    assert a.shape == (40,) and set(np.unique(a)) <= {0, 1}
    runs.fit_predict(untrained, ids[:80], labels[:80], ids[80:], run_seed=0)
    np.testing.assert_allclose(runs._encoder.token_embedding_matrix()[:5], untrained.token_embedding_matrix()[:5],
                               atol=0.03)  # started from the untrained weights
    np.testing.assert_array_equal(a, b)  # same encoder, same seed: the same run
    assert np.allclose(pretrained.token_embedding_matrix(), 0.1)  # the source encoders are never changed
    assert runs.runs == 3

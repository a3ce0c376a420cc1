"""Unit tests for course_lib.data.tokenization: the WordPiece vocabulary, the tokenizer and the encoding
helpers."""

import numpy as np
import pytest

from course_lib.data import tokenization


# --- vocabulary, tokenizer, encoding ------------------------------------------------------------

@pytest.fixture(scope="module")
def small_vocab(sentences):
    paragraphs = [s for s in sentences for _ in range(12)]
    return tokenization.learn_vocabulary(paragraphs, vocabulary_size=300)


def test_learn_vocabulary(small_vocab, sentences):
    assert tuple(small_vocab[:5]) == tokenization.SPECIAL_TOKENS
    assert len(small_vocab) == len(set(small_vocab)) <= 300
    assert "the" in small_vocab and "." in small_vocab
    assert all(t == t.lower() for t in small_vocab[5:])  # lowercased
    with pytest.raises(ValueError):
        tokenization.learn_vocabulary([], 100)
    with pytest.raises(ValueError):
        tokenization.learn_vocabulary(sentences, 5)


def test_tokenizer_and_encode(small_vocab, sentences):
    tokenizer = tokenization.build_tokenizer(small_vocab)
    ids = tokenization.tokenize(tokenizer, ["The cat sat on the [MASK].", "zzqx"])
    assert ids[0][-2] == tokenization.MASK_ID and ids[0][0] == small_vocab.index("the")
    assert tokenization.decode(small_vocab, ids[0]) == "the cat sat on the [MASK] ."
    assert ids[1] == [tokenization.UNK_ID]  # "q" and "x" never occur in the training text
    long_paragraph = " ".join(sentences * 3)
    long_ids = tokenization.tokenize(tokenizer, [long_paragraph])[0]
    encoded = tokenization.encode(tokenizer, [sentences[0], long_paragraph, "a"], sequence_length=32)
    assert encoded.dtype == np.int32 and encoded.shape[1] == 32
    assert np.all(encoded[:, 0] == tokenization.CLS_ID)
    assert np.all((encoded == tokenization.SEP_ID).sum(axis=1) == 1)
    first_ids = tokenization.tokenize(tokenizer, [sentences[0]])[0]
    n = len(first_ids)
    assert encoded[0, 1:n + 1].tolist() == first_ids and encoded[0, n + 1] == tokenization.SEP_ID
    assert np.all(encoded[0, n + 2:] == tokenization.PAD_ID)
    # the long paragraph is cut into chunks of 30 pieces; only a last chunk under 4 pieces is dropped; "a" is dropped
    bodies = [row[1:row.tolist().index(tokenization.SEP_ID)].tolist() for row in encoded[1:]]
    assert all(len(b) == 30 for b in bodies[:-1]) and 4 <= len(bodies[-1]) <= 30
    kept = sum(bodies, [])
    assert kept == long_ids[:len(kept)] and len(long_ids) - len(kept) < 4
    with pytest.raises(ValueError):
        tokenization.encode(tokenizer, sentences, sequence_length=2)
    with pytest.raises(ValueError, match="start with"):
        tokenization.build_tokenizer(["a", "b"] + list(tokenization.SPECIAL_TOKENS))


def test_token_counts_ignore_special_tokens():
    ids = np.array([[1, 5, 6, 5, 2, 0, 0], [1, 4, 3, 7, 2, 0, 0]])
    counts = tokenization.token_counts(ids, 10)
    assert counts.shape == (10,)
    assert counts.tolist() == [0, 0, 0, 0, 0, 2, 1, 1, 0, 0]


def test_encode_returns_the_source_paragraph_of_every_row(sentences):
    vocab = tokenization.learn_vocabulary(sentences * 4, vocabulary_size=200)
    tokenizer = tokenization.build_tokenizer(vocab)
    paragraphs = [sentences[0], "the cat", " ".join(sentences)]
    ids, sources = tokenization.encode(tokenizer, paragraphs, sequence_length=12, return_sources=True)
    np.testing.assert_array_equal(ids, tokenization.encode(tokenizer, paragraphs, sequence_length=12))
    assert sources.dtype == np.int64 and len(sources) == len(ids)
    assert set(sources.tolist()) == {0, 2} and np.all(np.diff(sources) >= 0)  # "the cat" (2 pieces) is dropped
    for index in (0, 2):
        alone = tokenization.encode(tokenizer, [paragraphs[index]], sequence_length=12)
        np.testing.assert_array_equal(ids[sources == index], alone)

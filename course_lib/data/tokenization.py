"""Tokenisation for Day 09: a WordPiece vocabulary learned from the training paragraphs, and fixed-length inputs.

The tokenizer is WordPiece (Schuster & Nakajima, "Japanese and Korean Voice Search", ICASSP 2012; the
sub-word scheme of BERT), with a vocabulary learned from the *training* split only by
``keras_hub.tokenizers.compute_word_piece_vocabulary`` and the special tokens :data:`SPECIAL_TOKENS`
at ids 0..4. keras_hub's tokenizers run on TensorFlow (``tf.data`` / ``tensorflow-text``) whatever the
Keras backend: that is the one place where the course needs TensorFlow on every backend.
"""

from __future__ import annotations

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
"""The reserved tokens, in vocabulary order: ids 0 ([PAD]) to 4 ([MASK])."""
PAD, CLS, SEP, UNK, MASK = SPECIAL_TOKENS
PAD_ID, CLS_ID, SEP_ID, UNK_ID, MASK_ID = range(len(SPECIAL_TOKENS))


def learn_vocabulary(paragraphs, vocabulary_size: int = 4000, lowercase: bool = True,
                     strip_accents: bool = True) -> list[str]:
    """Learn a WordPiece vocabulary from training paragraphs with ``keras_hub``.

    Calls ``keras_hub.tokenizers.compute_word_piece_vocabulary`` (which runs on ``tf.data``: a
    TensorFlow-only utility, there is no backend-agnostic vocabulary learner in Keras) with
    :data:`SPECIAL_TOKENS` reserved at ids 0..4.

    Args:
        paragraphs: iterable of training strings (never the validation split: that would leak).
        vocabulary_size: the largest vocabulary to learn (the learner may return fewer tokens on a
            small corpus).
        lowercase, strip_accents: text normalisation (BERT "uncased").

    Returns:
        The vocabulary, a list of ``str``; ``vocab[:5] == list(SPECIAL_TOKENS)``; continuation pieces
        start with ``"##"``.

    Raises:
        ValueError: no paragraphs, or ``vocabulary_size`` not larger than the number of special tokens.
    """
    paragraphs = list(paragraphs)
    if not paragraphs:
        raise ValueError("cannot learn a vocabulary from no text")
    if vocabulary_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocabulary_size must exceed {len(SPECIAL_TOKENS)}, got {vocabulary_size}")
    import keras_hub
    import tensorflow as tf  # the vocabulary learner consumes a tf.data.Dataset

    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(paragraphs), vocabulary_size=vocabulary_size,
        lowercase=lowercase, strip_accents=strip_accents, reserved_tokens=list(SPECIAL_TOKENS))


def build_tokenizer(vocabulary, lowercase: bool = True, strip_accents: bool = True):
    """A ``keras_hub.tokenizers.WordPieceTokenizer`` for ``vocabulary``, BERT-uncased style.

    ``special_tokens_in_strings=True``, so a literal ``"[MASK]"`` in the input text becomes the mask id
    (what ``fill_mask("... [MASK] ...")`` needs). The tokenizer returns variable-length id lists; use
    :func:`encode` for fixed-length model inputs.

    Raises:
        ValueError: the vocabulary does not start with :data:`SPECIAL_TOKENS`.
    """
    vocabulary = list(vocabulary)
    if tuple(vocabulary[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(f"the vocabulary must start with {list(SPECIAL_TOKENS)}, got {vocabulary[:5]}")
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, lowercase=lowercase, strip_accents=strip_accents, oov_token=UNK,
        special_tokens=list(SPECIAL_TOKENS), special_tokens_in_strings=True)


def tokenize(tokenizer, paragraphs) -> list[list[int]]:
    """Token ids of each paragraph (no special tokens added), as Python lists of ints."""
    paragraphs = list(paragraphs)
    if not paragraphs:
        return []
    out = tokenizer(paragraphs)
    if hasattr(out, "to_list"):  # a tf.RaggedTensor on the TensorFlow path
        out = out.to_list()
    return [[int(t) for t in np.asarray(row).ravel()] for row in out]


def encode(tokenizer, paragraphs, sequence_length: int = 64, min_tokens: int = 4, return_sources: bool = False):
    """Fixed-length model inputs: ``[CLS] pieces [SEP] [PAD]...`` per paragraph chunk.

    A paragraph longer than ``sequence_length - 2`` pieces is cut into consecutive chunks of that
    size (no token is dropped); a chunk with fewer than ``min_tokens`` pieces is dropped.

    Args:
        tokenizer: from :func:`build_tokenizer`.
        paragraphs: iterable of strings.
        sequence_length: ``L``, total length including ``[CLS]`` and ``[SEP]`` (>= 3).
        min_tokens: shortest chunk kept, in pieces.
        return_sources: also return which paragraph each row comes from (to carry a paragraph's label
            to its chunks).

    Returns:
        int32 array ``(n_sequences, sequence_length)``; ``[PAD]`` is 0. With ``return_sources``, the pair
        ``(ids, sources)``, ``sources`` int64 ``(n_sequences,)`` indices into ``paragraphs``.

    Raises:
        ValueError: ``sequence_length`` < 3.
    """
    if sequence_length < 3:
        raise ValueError(f"sequence_length must be at least 3, got {sequence_length}")
    body = sequence_length - 2
    rows, sources = [], []
    for index, ids in enumerate(tokenize(tokenizer, paragraphs)):
        for start in range(0, len(ids), body):
            chunk = ids[start:start + body]
            if len(chunk) >= min_tokens:
                rows.append([CLS_ID, *chunk, SEP_ID] + [PAD_ID] * (body - len(chunk)))
                sources.append(index)
    ids = np.asarray(rows, dtype=np.int32).reshape(-1, sequence_length)
    return (ids, np.asarray(sources, dtype=np.int64)) if return_sources else ids


def decode(vocabulary, ids, skip_special: bool = True) -> str:
    """Readable text from ids: WordPiece continuations (``##x``) glued to the previous piece.

    Args:
        vocabulary: list of tokens.
        ids: iterable of ints.
        skip_special: drop ``[PAD]``, ``[CLS]``, ``[SEP]`` (``[MASK]`` and ``[UNK]`` are always shown).

    Returns:
        A ``str``: the tokens separated by single spaces, each ``##`` continuation appended to the piece before it.

    Raises:
        IndexError: an id >= ``len(vocabulary)`` (a negative id is not rejected: it indexes from the end).
    """
    words: list[str] = []
    for i in ids:
        i = int(i)
        if skip_special and i in (PAD_ID, CLS_ID, SEP_ID):
            continue
        token = vocabulary[i]
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
    return " ".join(words)


def token_counts(token_ids: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """How often each id occurs in ``token_ids`` (any shape), special tokens counted as 0.

    Returns:
        int64 array ``(vocabulary_size,)``.
    """
    counts = np.bincount(np.asarray(token_ids, dtype=np.int64).ravel(), minlength=vocabulary_size)
    counts = counts[:vocabulary_size].copy()
    counts[:len(SPECIAL_TOKENS)] = 0
    return counts

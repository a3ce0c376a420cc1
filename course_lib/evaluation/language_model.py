"""Evaluating a masked language model (Day 09): masked-token accuracy, perplexity, baselines and probes by hand.

- :func:`evaluate_masked_lm`: top-1 / top-5 accuracy and perplexity at held-out masked positions (the standard
  test of BERT's pretext task, Devlin, Chang, Lee & Toutanova, NAACL-HLT 2019);
- :func:`unigram_baseline`: the context-free baseline on exactly the same positions;
- :func:`fill_mask` / :func:`make_fill_mask`: the model's candidates for every ``[MASK]`` of a sentence;
- :func:`nearest_tokens`: neighbours in the token-embedding space (cosine similarity).

The model is :class:`course_lib.models.bert.MiniBert`; token ids follow :mod:`course_lib.data.tokenization`.
"""

from __future__ import annotations

import keras
import numpy as np

from course_lib.data.masking import SPECIAL_IDS, default_max_selections, make_mlm_batch
from course_lib.data.tokenization import CLS_ID, MASK_ID, PAD_ID, SEP_ID
from course_lib.models.bert import MiniBert, predict_fixed_batch



def evaluate_masked_lm(model: MiniBert, token_ids, n_draws: int = 5, seed: int = 0, batch_size: int = 128,
                       mask_token_rate: float = 1.0, random_token_rate: float = 0.0,
                       max_selections: int | None = None) -> dict:
    """Masked-token accuracy and perplexity on held-out sequences.

    Each of ``n_draws`` seeded draws selects 15 % of the non-special tokens and corrupts them
    (default: all of them become ``[MASK]``, the fill-in-the-blank setting; pass 0.8 / 0.1 for the training
    rule); the model predicts the original token at each selected position.

    Args:
        model: a trained :class:`MiniBert`.
        token_ids: int ``(n, L)`` validation sequences.
        n_draws: independent mask draws (more predictions, a less noisy estimate).
        seed: base seed of the draws.
        batch_size: sequences per forward pass.
        mask_token_rate, random_token_rate: the corruption of the selected tokens.
        max_selections: ``P`` (default :func:`default_max_selections`).

    Returns:
        dict with ``top1``, ``top5`` (fractions), ``cross_entropy`` (mean nats per predicted token),
        ``perplexity`` (``exp(cross_entropy)``), ``n_predictions`` (int), and ``targets`` (int array of the
        true ids, in evaluation order, for baselines on exactly the same positions).
    """
    token_ids = np.asarray(token_ids, dtype=np.int32)
    max_selections = max_selections or default_max_selections(token_ids.shape[1])
    targets, top1, top5, nll = [], [], [], []
    for draw in range(n_draws):
        rng = np.random.default_rng([seed, draw, 7919])
        for start in range(0, len(token_ids), batch_size):
            inputs, ids, weights = make_mlm_batch(token_ids[start:start + batch_size], rng, model.vocabulary_size,
                                                  max_selections, mask_token_rate, random_token_rate)
            logits = predict_fixed_batch(model, inputs, batch_size).astype(np.float64)
            keep = weights > 0
            logits, ids = logits[keep], ids[keep]
            log_probs = logits - _logsumexp(logits)
            targets.append(ids)
            nll.append(-log_probs[np.arange(len(ids)), ids])
            order = np.argsort(-logits, axis=1)[:, :5]
            top1.append(order[:, 0] == ids)
            top5.append((order == ids[:, None]).any(axis=1))
    targets = np.concatenate(targets)
    cross_entropy = float(np.concatenate(nll).mean())
    return {"top1": float(np.concatenate(top1).mean()), "top5": float(np.concatenate(top5).mean()),
            "cross_entropy": cross_entropy, "perplexity": float(np.exp(cross_entropy)),
            "n_predictions": int(len(targets)), "targets": targets}


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=1, keepdims=True))


def unigram_baseline(train_counts, targets) -> dict:
    """The context-free baseline: always predict the most frequent training tokens.

    Args:
        train_counts: int ``(V,)`` token counts of the training split (special tokens 0), e.g. from
            :func:`course_lib.data.tokenization.token_counts`.
        targets: int ``(n,)`` true ids of the evaluated positions.

    Returns:
        dict with ``top1`` (share of targets equal to the most frequent token), ``top5`` (in the 5 most
        frequent), ``cross_entropy`` (nats, add-one smoothed unigram probabilities over the non-special
        ids) and ``perplexity``.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    targets = np.asarray(targets)
    order = np.argsort(-counts, kind="stable")
    smoothed = counts + 1.0
    smoothed[list(SPECIAL_IDS)] = 0.0
    probs = smoothed / smoothed.sum()
    cross_entropy = float(-np.log(probs[targets]).mean())
    return {"top1": float(np.mean(targets == order[0])), "top5": float(np.isin(targets, order[:5]).mean()),
            "cross_entropy": cross_entropy, "perplexity": float(np.exp(cross_entropy))}


# --------------------------------------------------------------------------------------------
# Using the model: fill in the blanks, nearest tokens
# --------------------------------------------------------------------------------------------

def fill_mask(model: MiniBert, tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Predict the token behind every ``[MASK]`` in ``text``.

    The text is tokenized (a literal ``[MASK]`` becomes the mask id), wrapped in ``[CLS]`` / ``[SEP]``,
    padded to the model's length, and the model's probabilities at each ``[MASK]`` are ranked.

    Args:
        model: a trained :class:`MiniBert`.
        tokenizer: the ``WordPieceTokenizer`` of :func:`course_lib.data.tokenization.build_tokenizer`.
        text: a string with at least one ``[MASK]``.
        top_k: how many candidates per mask.

    Returns:
        One list per ``[MASK]`` (left to right) of ``top_k`` ``(token, probability)`` pairs, most likely
        first; special tokens are never proposed.

    Raises:
        ValueError: no ``[MASK]`` in ``text``, or the text is longer than the model's sequence length.
    """
    from course_lib.data.tokenization import tokenize

    ids = tokenize(tokenizer, [text])[0]
    if MASK_ID not in ids:
        raise ValueError(f"no [MASK] in {text!r}")
    if len(ids) + 2 > model.sequence_length:
        raise ValueError(f"{len(ids)} tokens do not fit the model's {model.sequence_length - 2} (plus [CLS], [SEP])")
    row = [CLS_ID, *ids, SEP_ID]
    row += [PAD_ID] * (model.sequence_length - len(row))
    positions = [i for i, t in enumerate(row) if t == MASK_ID]
    logits = keras.ops.convert_to_numpy(model({"token_ids": np.asarray([row], dtype=np.int32),
                                               "mask_positions": np.asarray([positions], dtype=np.int32)},
                                              training=False))[0].astype(np.float64)
    logits[:, list(SPECIAL_IDS)] = -np.inf
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    vocabulary = tokenizer.get_vocabulary()
    results = []
    for p in probs:
        best = np.argsort(-p)[:top_k]
        results.append([(vocabulary[i], float(p[i])) for i in best])
    return results


def make_fill_mask(model: MiniBert, tokenizer):
    """``fill_mask(text, top_k=5)`` bound to ``model`` and ``tokenizer`` (see :func:`fill_mask`)."""
    def bound_fill_mask(text: str, top_k: int = 5):
        return fill_mask(model, tokenizer, text, top_k=top_k)
    bound_fill_mask.__doc__ = fill_mask.__doc__
    return bound_fill_mask


def nearest_tokens(embeddings, vocabulary, token: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` tokens whose embedding has the highest cosine similarity with ``token``'s.

    Args:
        embeddings: float ``(V, d)`` token-embedding matrix (:meth:`MiniBert.token_embedding_matrix`).
        vocabulary: list of ``V`` tokens.
        token: a token of the vocabulary.
        k: neighbours to return (the token itself and special tokens excluded).

    Returns:
        ``[(token, cosine similarity), ...]``, most similar first.

    Raises:
        KeyError: ``token`` is not in the vocabulary.
    """
    vocabulary = list(vocabulary)
    try:
        index = vocabulary.index(token)
    except ValueError as error:
        raise KeyError(f"{token!r} is not in the vocabulary") from error
    unit = np.asarray(embeddings, dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit[index]
    similarity[index] = -np.inf
    similarity[list(SPECIAL_IDS)] = -np.inf
    best = np.argsort(-similarity)[:k]
    return [(vocabulary[i], float(similarity[i])) for i in best]

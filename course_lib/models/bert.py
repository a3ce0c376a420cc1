"""A mini-BERT for masked language modeling, trained from scratch (Day 09).

BERT (Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL-HLT 2019) learns from unlabeled text with a pretext task whose targets come from the text
itself: hide some tokens and predict them from both sides. The masking rule and the batches of masked
sequences are in :mod:`course_lib.data.masking`; this module holds

- :class:`MiniBert`, the model: ``keras_hub.layers.TokenAndPositionEmbedding`` -> ``TransformerEncoder``
  blocks (Vaswani et al., "Attention Is All You Need", NeurIPS 2017) -> ``MaskedLMHead`` whose output
  projection is the transposed token-embedding matrix (tied embeddings);
- evaluation (:func:`evaluate_masked_lm`, :func:`unigram_baseline`), :func:`fill_mask`, nearest tokens by
  embedding and attention maps.

Token ids follow :mod:`course_lib.data.tokenization`: ``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3, ``[MASK]`` 4.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from course_lib.data.masking import SPECIAL_IDS, default_max_selections, make_mlm_batch
from course_lib.data.tokenization import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS

# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

def sinusoids(sequence_length: int, dim: int, scale: float = 1.0) -> np.ndarray:
    """The sinusoidal position encodings of Vaswani et al. (NeurIPS 2017), rescaled to standard deviation ``scale``.

    Computed by ``keras_hub.layers.SinePositionEncoding`` (sines on even, cosines on odd features, wavelengths
    up to 10,000).

    Returns:
        float32 ``(sequence_length, dim)``.
    """
    import keras_hub

    table = keras.ops.convert_to_numpy(
        keras_hub.layers.SinePositionEncoding()(np.zeros((1, sequence_length, dim), dtype=np.float32)))[0]
    return (table * (scale / max(float(table.std()), 1e-12))).astype(np.float32)


@keras.saving.register_keras_serializable(package="course_lib")
class MiniBert(keras.Model):
    """A small BERT encoder with a masked-LM head, built from ``keras_hub`` layers.

    ``token_ids (B, L)`` -> ``TokenAndPositionEmbedding`` (learned token + position embeddings; the position
    embeddings start from scaled sinusoids) -> ``LayerNormalization`` -> ``Dropout`` -> ``num_layers`` x
    ``TransformerEncoder`` (GELU feed-forward, ``[PAD]`` positions masked out of attention; pre-LN blocks and a
    final layer norm by default, as in Xiong et al., "On Layer Normalization in the Transformer Architecture",
    ICML 2020, which train stably at a higher learning rate than BERT's post-LN blocks) -> hidden states
    ``(B, L, hidden_dim)``; then
    ``MaskedLMHead`` gathers the hidden states at ``mask_positions (B, P)`` and maps them to vocabulary
    logits ``(B, P, V)`` with the token-embedding matrix (tied input / output embeddings, so the head adds
    only a dense layer, a layer norm and a bias).

    Inputs: a dict ``{"token_ids": int32 (B, L), "mask_positions": int32 (B, P)}`` (``P`` may vary between
    calls). Output: float32 logits ``(B, P, V)``.

    The model is a functional graph built in ``__init__`` from its hyper-parameters (like keras_hub's
    backbones), so ``get_config`` holds just those and a ``.keras`` file reloads with the embeddings still
    tied.

    Args:
        vocabulary_size: ``V`` (> 5: the special tokens plus at least one word).
        sequence_length: ``L``, the (fixed) input length.
        hidden_dim: width of the embeddings and of every block.
        num_layers: number of transformer blocks (>= 1).
        num_heads: attention heads per block (must divide ``hidden_dim``).
        intermediate_dim: width of each block's feed-forward layer.
        dropout: dropout rate in the embeddings and the blocks, in [0, 1).
        normalize_first: pre-LN blocks (True) or BERT's original post-LN blocks (False).

    Raises:
        ValueError: invalid sizes.
    """

    def __init__(self, vocabulary_size: int, sequence_length: int = 64, hidden_dim: int = 128, num_layers: int = 2,
                 num_heads: int = 4, intermediate_dim: int = 256, dropout: float = 0.1, normalize_first: bool = True,
                 **kwargs):
        if vocabulary_size <= len(SPECIAL_TOKENS) or sequence_length < 3 or num_layers < 1:
            raise ValueError(f"need vocabulary_size > {len(SPECIAL_TOKENS)}, sequence_length >= 3, num_layers >= 1; "
                             f"got {vocabulary_size}, {sequence_length}, {num_layers}")
        if num_heads < 1 or hidden_dim % num_heads or not 0.0 <= dropout < 1.0:
            raise ValueError(f"num_heads must divide hidden_dim and 0 <= dropout < 1; got hidden_dim={hidden_dim}, "
                             f"num_heads={num_heads}, dropout={dropout}")
        import keras_hub

        # Weights start at the scale 1/sqrt(hidden_dim) (BERT's 0.02 suits a 768-wide model trained for a
        # million steps; at this size it leaves the attention nearly uniform for hundreds of steps), token
        # embeddings at BERT's 0.02, position embeddings at the sinusoids of Vaswani et al. (2017) scaled to 0.02.
        kernel_init = keras.initializers.RandomNormal(stddev=hidden_dim ** -0.5)
        token_ids = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        mask_positions = keras.Input(shape=(None,), dtype="int32", name="mask_positions")
        embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="embeddings")
        x = embedding(token_ids)
        embedding.position_embedding.position_embeddings.assign(sinusoids(sequence_length, hidden_dim, scale=0.02))
        x = layers.LayerNormalization(epsilon=1e-12, name="embeddings_layer_norm")(x)
        x = layers.Dropout(dropout, name="embeddings_dropout")(x)
        padding_mask = ops.not_equal(token_ids, PAD_ID)
        for i in range(num_layers):
            x = keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, activation="gelu", layer_norm_epsilon=1e-12,
                kernel_initializer=kernel_init, normalize_first=normalize_first,
                name=f"transformer_layer_{i}")(x, padding_mask=padding_mask)
        if normalize_first:  # pre-LN blocks leave the residual stream unnormalised: close it with a layer norm
            x = layers.LayerNormalization(epsilon=1e-12, name="final_layer_norm")(x)
        logits = keras_hub.layers.MaskedLMHead(
            token_embedding=embedding.token_embedding, intermediate_activation="gelu",
            kernel_initializer=kernel_init, name="mlm_head",
        )(x, mask_positions=mask_positions)
        super().__init__(inputs={"token_ids": token_ids, "mask_positions": mask_positions}, outputs=logits, **kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.sequence_length = int(sequence_length)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.normalize_first = bool(normalize_first)

    def get_config(self) -> dict:
        # Not chained to the functional config: the graph is rebuilt from these hyper-parameters.
        return {"name": self.name, "trainable": self.trainable, "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length, "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "normalize_first": self.normalize_first}

    @classmethod
    def from_config(cls, config: dict) -> "MiniBert":
        return cls(**config)

    def init_unigram_bias(self, train_counts) -> None:
        """Start the output layer at the unigram distribution of the training text.

        Sets the ``MaskedLMHead`` bias to the log of the add-one smoothed unigram probabilities (special
        tokens at -10, i.e. practically never proposed). The other logits start near zero, so before any
        training the model already predicts like the unigram baseline; every later gain comes from the context.
        (Initialising a classifier's bias at the log prior is an old trick that skips the first phase of
        training, which would otherwise be spent learning the token frequencies.)

        Args:
            train_counts: int ``(V,)`` token counts of the training split (special tokens are ignored).

        Raises:
            ValueError: ``train_counts`` does not have ``V`` entries.
        """
        counts = np.asarray(train_counts, dtype=np.float64)
        if counts.shape != (self.vocabulary_size,):
            raise ValueError(f"train_counts must have shape ({self.vocabulary_size},), got {counts.shape}")
        counts = counts + 1.0
        counts[list(SPECIAL_IDS)] = 0.0
        log_probs = np.log(np.maximum(counts / counts.sum(), 1e-300))
        ordinary = np.ones(self.vocabulary_size, dtype=bool)
        ordinary[list(SPECIAL_IDS)] = False
        bias = np.where(ordinary, log_probs - log_probs[ordinary].mean(), -10.0)
        (variable,) = [w for w in self.get_layer("mlm_head").weights if w.name == "output_bias"]
        variable.assign(bias.astype(np.float32))

    # -- views on the trained network ----------------------------------------------------------

    @property
    def token_embedding(self):
        """The ``keras_hub.layers.ReversibleEmbedding`` shared by the input and the MLM head."""
        return self.get_layer("embeddings").token_embedding

    def token_embedding_matrix(self) -> np.ndarray:
        """float32 ``(V, hidden_dim)`` token embeddings (row ``i`` is the vector of token id ``i``)."""
        return keras.ops.convert_to_numpy(self.token_embedding.embeddings)

    def _blocks(self):
        return [self.get_layer(f"transformer_layer_{i}") for i in range(self.num_layers)]

    def encode(self, token_ids) -> np.ndarray:
        """Contextual hidden states (inference mode): float32 ``(B, L, hidden_dim)`` for int ``(B, L)`` ids."""
        x, padding_mask = self._embed(token_ids)
        for block in self._blocks():
            x = block(x, padding_mask=padding_mask, training=False)
        if self.normalize_first:
            x = self.get_layer("final_layer_norm")(x)
        return keras.ops.convert_to_numpy(x)

    def _embed(self, token_ids):
        token_ids = ops.convert_to_tensor(np.asarray(token_ids, dtype=np.int32))
        x = self.get_layer("embeddings")(token_ids)
        x = self.get_layer("embeddings_layer_norm")(x)
        return x, ops.not_equal(token_ids, PAD_ID)

    def attention_scores(self, token_ids, layer: int = -1) -> np.ndarray:
        """Attention probabilities of one block: float32 ``(B, num_heads, L, L)`` (query row, key column).

        ``keras_hub.layers.TransformerEncoder`` returns its attention probabilities when called with
        ``return_attention_scores=True``; the functional graph never asks for them, so we run the
        embeddings and the blocks before ``layer`` eagerly to get that block's input, then call the block
        once more with the flag. Rows of query positions sum to 1; padded keys get probability 0.

        Raises:
            IndexError: ``layer`` out of range.
        """
        blocks = self._blocks()
        target = blocks[layer]
        x, padding_mask = self._embed(token_ids)
        for block in blocks:
            if block is target:
                _, scores = block(x, padding_mask=padding_mask, training=False, return_attention_scores=True)
                return keras.ops.convert_to_numpy(scores)
            x = block(x, padding_mask=padding_mask, training=False)
        raise IndexError(layer)  # pragma: no cover - blocks[layer] raised already


def compile_mlm(model: MiniBert, learning_rate: float = 1e-3, total_steps: int | None = None,
                warmup_steps: int = 0, weight_decay: float = 0.01) -> MiniBert:
    """Compile for masked-LM training: AdamW, cross-entropy averaged over the selected positions, top-1/top-5.

    The loss is ``SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")``:
    with ``mask_weights`` as sample weights it is the mean negative log-likelihood (nats) over the real
    predictions only, so ``exp(loss)`` is the masked-token perplexity. The metrics ``masked_top1`` and
    ``masked_top5`` are weighted metrics (padding slots have weight 0). With ``total_steps`` the learning
    rate warms up linearly for ``warmup_steps`` then follows a cosine decay.

    Returns:
        ``model`` (compiled in place).
    """
    schedule = learning_rate
    if total_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(1, total_steps - warmup_steps), alpha=0.05,
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_top1"),
                          keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="masked_top5")],
        jit_compile=False)  # XLA compilation costs more than it saves for a model this small on a CPU
    return model


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

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
            logits = keras.ops.convert_to_numpy(model(inputs, training=False)).astype(np.float64)
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

"""A mini-BERT for masked language modeling, trained from scratch (Day 09).

BERT (Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL-HLT 2019) learns from unlabeled text with a pretext task whose targets come from the text
itself: hide some tokens and predict them from both sides. This module holds

- the masking rule (:func:`select_tokens`, :func:`corrupt_tokens`, :func:`mask_tokens`): 15 % of the
  non-special tokens are selected; of those 80 % become ``[MASK]``, 10 % a random token, 10 % stay unchanged;
  the loss is computed on the selected positions only. NumPy, seeded by a ``np.random.Generator``;
- :class:`MaskedLMBatches`, a ``keras.utils.PyDataset`` that draws fresh masks for every batch (dynamic
  masking), in the input format of ``keras_hub.layers.MaskedLMHead``: padded ``mask_positions`` with
  ``mask_weights``;
- :class:`MiniBert`, the model: ``keras_hub.layers.TokenAndPositionEmbedding`` -> ``TransformerEncoder``
  blocks (Vaswani et al., "Attention Is All You Need", NeurIPS 2017) -> ``MaskedLMHead`` whose output
  projection is the transposed token-embedding matrix (tied embeddings);
- evaluation (:func:`evaluate_masked_lm`, :func:`unigram_baseline`), :func:`fill_mask`, nearest tokens by
  embedding and attention maps.

Token ids follow :mod:`course_lib.text`: ``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3, ``[MASK]`` 4.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from course_lib.text import CLS_ID, MASK_ID, PAD_ID, SEP_ID, SPECIAL_TOKENS

SPECIAL_IDS = tuple(range(len(SPECIAL_TOKENS)))
"""Ids that are never selected for prediction: [PAD], [CLS], [SEP], [UNK], [MASK]."""
SELECTION_RATE = 0.15
MASK_TOKEN_RATE = 0.8
RANDOM_TOKEN_RATE = 0.1


# --------------------------------------------------------------------------------------------
# The masking rule
# --------------------------------------------------------------------------------------------

def default_max_selections(sequence_length: int, selection_rate: float = SELECTION_RATE) -> int:
    """Room for predictions per sequence: ``ceil(1.5 * selection_rate * sequence_length)`` (15 for L = 64).

    The expected number of selected tokens is ``selection_rate * L``; the 50 % margin means the cap of
    :func:`select_tokens` rarely bites (BERT's own budget was 20 predictions for 128 tokens).
    """
    return max(1, math.ceil(1.5 * selection_rate * sequence_length))


def select_tokens(token_ids, rng: np.random.Generator, selection_rate: float = SELECTION_RATE,
                  special_token_ids=SPECIAL_IDS, max_selections: int | None = None) -> np.ndarray:
    """Choose the positions to predict: each non-special token independently with probability ``selection_rate``.

    This is what ``keras_hub.layers.MaskedLMMaskGenerator`` does when called eagerly; BERT's original data
    pipeline instead picked exactly ``round(selection_rate * n)`` of the ``n`` eligible tokens of a sequence.
    Both select 15 % on average.

    Args:
        token_ids: int array ``(batch, sequence_length)`` (or ``(sequence_length,)``).
        rng: the random generator (the only source of randomness).
        selection_rate: probability that an eligible token is selected, in [0, 1].
        special_token_ids: ids never selected ([PAD], [CLS], [SEP], [UNK], [MASK] by default).
        max_selections: keep at most this many per sequence (a random subset of the selected ones);
            None for no cap.

    Returns:
        bool array shaped like ``token_ids``; ``False`` wherever ``token_ids`` is a special id.
    """
    token_ids = np.asarray(token_ids)
    eligible = ~np.isin(token_ids, np.asarray(special_token_ids))
    selected = eligible & (rng.random(token_ids.shape) < selection_rate)
    if max_selections is not None and selected.ndim == 2:
        # Rank the selected positions of each row in random order and keep the first max_selections.
        keys = np.where(selected, rng.random(selected.shape), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        selected &= rank < max_selections
    return selected


def corrupt_tokens(token_ids, selected, rng: np.random.Generator, vocabulary_size: int,
                   mask_token_id: int = MASK_ID, special_token_ids=SPECIAL_IDS,
                   mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE
                   ) -> np.ndarray:
    """Replace the selected tokens: ``[MASK]`` with probability 0.8, a random token 0.1, unchanged 0.1.

    Random replacements are drawn uniformly from the non-special ids (so a random ``[PAD]`` or ``[MASK]``
    can never appear). Unselected positions are copied unchanged.

    Args:
        token_ids: int array ``(batch, sequence_length)``.
        selected: bool array of the same shape, from :func:`select_tokens`.
        rng: the random generator.
        vocabulary_size: ``V``; random ids are in ``[0, V)`` minus ``special_token_ids``.
        mask_token_id: id of ``[MASK]``.
        special_token_ids: ids never used as random replacements.
        mask_token_rate, random_token_rate: the 80 / 10 split (the rest stays unchanged); each in [0, 1],
            summing to at most 1.

    Returns:
        A new int32 array shaped like ``token_ids`` (the input is not modified).

    Raises:
        ValueError: rates outside [0, 1] or summing to more than 1; shapes that differ.
    """
    if not (0 <= mask_token_rate <= 1 and 0 <= random_token_rate <= 1
            and mask_token_rate + random_token_rate <= 1 + 1e-9):
        raise ValueError(f"need 0 <= rates and mask_token_rate + random_token_rate <= 1, got "
                         f"{mask_token_rate}, {random_token_rate}")
    token_ids = np.asarray(token_ids)
    selected = np.asarray(selected, dtype=bool)
    if selected.shape != token_ids.shape:
        raise ValueError(f"selected {selected.shape} must have the shape of token_ids {token_ids.shape}")
    action = rng.random(token_ids.shape)
    corrupted = token_ids.astype(np.int32, copy=True)
    corrupted[selected & (action < mask_token_rate)] = mask_token_id
    to_random = selected & (action >= mask_token_rate) & (action < mask_token_rate + random_token_rate)
    ordinary = np.setdiff1d(np.arange(vocabulary_size), np.asarray(special_token_ids))
    corrupted[to_random] = rng.choice(ordinary, size=int(to_random.sum()))
    return corrupted


def mask_tokens(token_ids, rng: np.random.Generator, vocabulary_size: int, mask_token_id: int = MASK_ID,
                special_token_ids=SPECIAL_IDS, selection_rate: float = SELECTION_RATE,
                mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE,
                max_selections: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking rule: :func:`select_tokens` then :func:`corrupt_tokens` (Devlin et al., NAACL-HLT 2019).

    Returns:
        ``(masked_ids, selected)``: int32 model input shaped like ``token_ids``, and the bool array of
        positions whose original token must be predicted (the only positions that enter the loss).
    """
    selected = select_tokens(token_ids, rng, selection_rate, special_token_ids, max_selections)
    masked = corrupt_tokens(token_ids, selected, rng, vocabulary_size, mask_token_id, special_token_ids,
                            mask_token_rate, random_token_rate)
    return masked, selected


def selection_to_positions(selected, token_ids, max_selections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert a selection mask into ``MaskedLMHead`` targets padded to ``max_selections`` per row.

    Args:
        selected: bool ``(batch, L)`` with at most ``max_selections`` ``True`` per row.
        token_ids: the ORIGINAL ids ``(batch, L)`` (the targets).
        max_selections: ``P``.

    Returns:
        ``(mask_positions, mask_ids, mask_weights)``: int32 ``(batch, P)`` positions in increasing order
        (padding slots point at position 0), int32 ``(batch, P)`` original ids (0 in padding slots),
        float32 ``(batch, P)`` weights (1 for a real prediction, 0 for padding).

    Raises:
        ValueError: a row selects more than ``max_selections`` positions.
    """
    selected = np.asarray(selected, dtype=bool)
    counts = selected.sum(axis=1)
    if counts.size and counts.max() > max_selections:
        raise ValueError(f"a row selects {counts.max()} positions, more than max_selections={max_selections}")
    batch, length = selected.shape
    # Stable sort puts the selected positions first, in increasing order.
    order = np.argsort(~selected, axis=1, kind="stable")[:, :max_selections]
    if order.shape[1] < max_selections:  # P > L: pad the columns
        order = np.pad(order, ((0, 0), (0, max_selections - order.shape[1])))
    weights = (np.arange(max_selections)[None, :] < counts[:, None]).astype(np.float32)
    positions = np.where(weights > 0, order, 0).astype(np.int32)
    ids = np.where(weights > 0, np.take_along_axis(np.asarray(token_ids), positions, axis=1), 0).astype(np.int32)
    return positions, ids, weights


def make_mlm_batch(token_ids, rng: np.random.Generator, vocabulary_size: int, max_selections: int,
                   mask_token_rate: float = MASK_TOKEN_RATE, random_token_rate: float = RANDOM_TOKEN_RATE,
                   selection_rate: float = SELECTION_RATE):
    """One masked-LM batch in Keras ``fit`` format: ``(inputs, targets, sample_weight)``.

    Returns:
        ``({"token_ids": int32 (B, L), "mask_positions": int32 (B, P)}, mask_ids int32 (B, P),
        mask_weights float32 (B, P))``.
    """
    token_ids = np.asarray(token_ids)
    masked, selected = mask_tokens(token_ids, rng, vocabulary_size, selection_rate=selection_rate,
                                   mask_token_rate=mask_token_rate, random_token_rate=random_token_rate,
                                   max_selections=max_selections)
    positions, ids, weights = selection_to_positions(selected, token_ids, max_selections)
    return {"token_ids": masked, "mask_positions": positions}, ids, weights


class MaskedLMBatches(keras.utils.PyDataset):
    """Batches of freshly masked sequences for ``model.fit`` (dynamic masking: new masks every epoch).

    Batch ``i`` of epoch ``e`` uses ``np.random.default_rng([seed, e, i])``, so a run is reproducible and
    every epoch sees different masks (and, with ``shuffle``, a different order).

    Args:
        token_ids: int array ``(n, L)`` from :func:`course_lib.text.encode`.
        vocabulary_size: ``V``.
        batch_size: sequences per batch.
        max_selections: ``P``, predictions per sequence (default :func:`default_max_selections`).
        seed: base seed.
        shuffle: reshuffle the sequences every epoch (training); False keeps the order (validation).
        mask_token_rate, random_token_rate: the masking rule (defaults 0.8 / 0.1).
        drop_remainder: skip the last, smaller batch (with ``shuffle`` other sequences fall there next epoch);
            every batch then has the same shape, so the training step is traced once.
        **kwargs: ``keras.utils.PyDataset`` options (``workers``, ...).

    Raises:
        ValueError: ``token_ids`` is not a non-empty 2-D array, or ``drop_remainder`` leaves no batch.
    """

    def __init__(self, token_ids, vocabulary_size: int, batch_size: int = 32, max_selections: int | None = None,
                 seed: int = 0, shuffle: bool = True, mask_token_rate: float = MASK_TOKEN_RATE,
                 random_token_rate: float = RANDOM_TOKEN_RATE, drop_remainder: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.token_ids = np.asarray(token_ids, dtype=np.int32)
        if self.token_ids.ndim != 2 or len(self.token_ids) == 0:
            raise ValueError(f"token_ids must be a non-empty (n, L) array, got shape {self.token_ids.shape}")
        self.vocabulary_size = int(vocabulary_size)
        self.batch_size = int(batch_size)
        self.max_selections = max_selections or default_max_selections(self.token_ids.shape[1])
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.mask_token_rate, self.random_token_rate = mask_token_rate, random_token_rate
        self.drop_remainder = bool(drop_remainder)
        if self.drop_remainder and len(self.token_ids) < self.batch_size:
            raise ValueError(f"drop_remainder with {len(self.token_ids)} sequences < batch_size {self.batch_size}")
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        n = len(self.token_ids)
        return np.random.default_rng([self.seed, self.epoch, 1 << 20]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        if self.drop_remainder:
            return len(self.token_ids) // self.batch_size
        return math.ceil(len(self.token_ids) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        return make_mlm_batch(self.token_ids[rows], rng, self.vocabulary_size, self.max_selections,
                              self.mask_token_rate, self.random_token_rate)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._make_order()


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
            :func:`course_lib.text.token_counts`.
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
        tokenizer: the ``WordPieceTokenizer`` of :func:`course_lib.text.build_tokenizer`.
        text: a string with at least one ``[MASK]``.
        top_k: how many candidates per mask.

    Returns:
        One list per ``[MASK]`` (left to right) of ``top_k`` ``(token, probability)`` pairs, most likely
        first; special tokens are never proposed.

    Raises:
        ValueError: no ``[MASK]`` in ``text``, or the text is longer than the model's sequence length.
    """
    from course_lib.text import tokenize

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


# --------------------------------------------------------------------------------------------
# Comparing masking implementations
# --------------------------------------------------------------------------------------------

def masking_statistics(token_ids, masked_ids, selected, mask_token_id: int = MASK_ID,
                       special_token_ids=SPECIAL_IDS) -> dict:
    """Summary statistics of one masking draw, to compare implementations.

    Args:
        token_ids: the original int ids ``(batch, L)``.
        masked_ids: the corrupted ids, same shape.
        selected: bool, same shape: the positions to predict.
        mask_token_id, special_token_ids: as in :func:`mask_tokens`.

    Returns:
        dict with ``selection_rate`` (selected / eligible), ``mask_share``, ``random_share`` and
        ``unchanged_share`` (fractions of the selected positions that became ``[MASK]``, another token, or
        stayed), ``n_selected``, ``special_selected`` (selected special positions, must be 0) and
        ``changed_outside`` (unselected positions whose id changed, must be 0).
    """
    token_ids, masked_ids = np.asarray(token_ids), np.asarray(masked_ids)
    selected = np.asarray(selected, dtype=bool)
    special = np.isin(token_ids, np.asarray(special_token_ids))
    n_selected = int(selected.sum())
    before, after = token_ids[selected], masked_ids[selected]
    denominator = max(n_selected, 1)
    return {"selection_rate": n_selected / max(int((~special).sum()), 1),
            "mask_share": float(np.sum(after == mask_token_id)) / denominator,
            "random_share": float(np.sum((after != mask_token_id) & (after != before))) / denominator,
            "unchanged_share": float(np.sum(after == before)) / denominator,
            "n_selected": n_selected,
            "special_selected": int((selected & special).sum()),
            "changed_outside": int(np.sum((masked_ids != token_ids) & ~selected))}


def keras_hub_masking(token_ids, vocabulary_size: int, seed: int = 0, mask_token_id: int = MASK_ID,
                      special_token_ids=SPECIAL_IDS, selection_rate: float = SELECTION_RATE
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The same rule applied by ``keras_hub.layers.MaskedLMMaskGenerator`` (the reference implementation).

    Called eagerly the layer runs its pure-Python path, which draws from Python's ``random`` module; that
    module is seeded with ``seed`` here and its previous state restored afterwards.

    Returns:
        ``(masked_ids, selected)`` as :func:`mask_tokens` returns them.
    """
    import random

    import keras_hub

    token_ids = np.asarray(token_ids, dtype=np.int32)
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=vocabulary_size, mask_selection_rate=selection_rate, mask_token_id=mask_token_id,
        unselectable_token_ids=list(special_token_ids), mask_token_rate=MASK_TOKEN_RATE,
        random_token_rate=RANDOM_TOKEN_RATE)
    state = random.getstate()
    random.seed(seed)
    try:
        out = generator(token_ids.tolist())
    finally:
        random.setstate(state)
    masked = np.asarray(keras.ops.convert_to_numpy(out["token_ids"]) if not isinstance(out["token_ids"], list)
                        else out["token_ids"], dtype=np.int32).reshape(token_ids.shape)
    positions = out["mask_positions"]
    if not isinstance(positions, list):
        positions = keras.ops.convert_to_numpy(positions).tolist()
    selected = np.zeros(token_ids.shape, dtype=bool)
    for row, cols in enumerate(positions):
        selected[row, list(cols)] = True
    return masked, selected

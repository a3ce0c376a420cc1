"""A mini-BERT for masked language modeling, trained from scratch (Day 09).

BERT (Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL-HLT 2019) learns from unlabeled text with a pretext task whose targets come from the text
itself: hide some tokens and predict them from both sides. The masking rule and the batches of masked
sequences are in :mod:`course_lib.data.masking`; this module holds

- :class:`MiniBert`, the model: ``keras_hub.layers.TokenAndPositionEmbedding`` -> ``TransformerEncoder``
  blocks (Vaswani et al., "Attention Is All You Need", NeurIPS 2017) -> ``MaskedLMHead`` whose output
  projection is the transposed token-embedding matrix (tied embeddings);
- its training objective, :meth:`MiniBert.compute_loss`: ``MiniBert.mlm_loss`` (by default
  :func:`course_lib.losses.masked_lm_loss`; :func:`compile_mlm` sets another, e.g. a student's);
- :func:`predict_fixed_batch`, inference in fixed-size batches (one compiled function on JAX); the evaluation of
  a trained model (masked-token accuracy, perplexity, the unigram baseline, fill-mask, nearest tokens) is in
  :mod:`course_lib.evaluation.language_model`;
- :meth:`MiniBert.encoder`, the pretrained encoder for downstream use; the probe features and the text
  classifier built on it are in :mod:`course_lib.models.text_classifier`.

Token ids follow :mod:`course_lib.data.tokenization`: ``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3, ``[MASK]`` 4.
"""

from __future__ import annotations


import keras
import numpy as np
from keras import layers, ops

from course_lib.data.masking import SPECIAL_IDS, default_max_selections
from course_lib.data.tokenization import PAD_ID, SPECIAL_TOKENS
from course_lib.losses import masked_lm_loss

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

    Training: ``fit`` on ``(inputs, mask_ids, mask_weights)`` batches (:class:`course_lib.data.masking.MaskedLMBatches`)
    runs Keras's own ``train_step``, whose loss is :meth:`compute_loss`: the function ``self.mlm_loss(labels,
    logits, weights)`` (default :func:`course_lib.losses.masked_lm_loss`; :func:`compile_mlm` replaces it).
    The loss function is a training setting, not part of the saved architecture: a reloaded model uses the
    default.

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
        self.mlm_loss = masked_lm_loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The masked-LM objective of one batch, called by Keras's ``train_step`` and ``test_step``.

        Args:
            x: the inputs ``{"token_ids": (B, L), "mask_positions": (B, P)}`` (unused: ``y_pred`` holds the
                logits the model computed from them).
            y: int ``(B, P)``: the original tokens at the selected positions (``mask_ids``).
            y_pred: float ``(B, P, V)``: the logits of the ``MaskedLMHead``.
            sample_weight: float ``(B, P)``: 1 for a real prediction, 0 for a padding slot (``mask_weights``).
            training: whether this is a training step.

        Returns:
            Scalar loss tensor: ``self.mlm_loss(y, y_pred, sample_weight)``, plus the layers' own losses
            (weight regularisers; none by default).
        """
        loss = self.mlm_loss(y, y_pred, sample_weight)
        if self.losses:  # regularisation terms added by layers (none in the default model)
            loss = loss + ops.sum(self.losses)
        return loss

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

    def encoder(self) -> keras.Model:
        """The encoder without the masked-LM head, sharing this model's weights.

        Returns:
            A functional ``keras.Model``: int32 ``token_ids (B, L)`` -> float32 hidden states
            ``(B, L, hidden_dim)`` (the input of the ``MaskedLMHead``). Training it trains this model's
            layers too: copy the model first (:func:`build_text_classifier` does) to keep the original.
        """
        last = "final_layer_norm" if self.normalize_first else f"transformer_layer_{self.num_layers - 1}"
        return keras.Model(self.get_layer("embeddings").input, self.get_layer(last).output, name="encoder")

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
                warmup_steps: int = 0, weight_decay: float = 0.01, loss_fn=None) -> MiniBert:
    """Compile for masked-LM training: AdamW, the masked-LM loss, weighted top-1 / top-5 accuracy.

    AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019), here with gradients clipped to a global norm of 1.

    The loss is ``loss_fn(labels, logits, weights)`` (default :func:`course_lib.losses.masked_lm_loss`),
    called by :meth:`MiniBert.compute_loss` with the ``mask_ids`` as labels and the ``mask_weights`` as
    weights: the mean negative log-likelihood (nats) over the real predictions only, so ``exp(loss)`` is the
    masked-token perplexity. The metrics ``masked_top1`` and ``masked_top5`` are weighted metrics
    (padding slots have weight 0). With ``total_steps`` the learning rate warms up linearly for
    ``warmup_steps`` then follows a cosine decay. ``jit_compile="auto"``: XLA on JAX (where the alternative
    runs the training step op by op), none on a TensorFlow CPU and on PyTorch.

    Args:
        model: the :class:`MiniBert` to compile.
        learning_rate: peak learning rate.
        total_steps: steps of the whole run (None: constant learning rate).
        warmup_steps: linear warm-up steps (with ``total_steps``).
        weight_decay: AdamW's decoupled weight decay.
        loss_fn: ``(labels (B, P) int, logits (B, P, V), weights (B, P)) -> scalar`` written with
            ``keras.ops`` (it runs inside the compiled training step); None for the library's.

    Returns:
        ``model`` (compiled in place).
    """
    schedule = learning_rate
    if total_steps:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(1, total_steps - warmup_steps), alpha=0.05,
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    model.mlm_loss = loss_fn or masked_lm_loss
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay, clipnorm=1.0),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_top1"),
                          keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="masked_top5")],
        jit_compile="auto")
    return model


class MaskedLMRuns:
    """Short masked-LM trainings that all start from the same weights, with one compiled training step.

    Day 09 trains several small models for the same number of steps (the mask-rate investigation, the
    "loss on every position" variant). Building and compiling a model per run would trace a new training
    step each time, which on a CPU costs more than the short run itself. This object builds and compiles one
    :class:`MiniBert` (after ``keras.utils.set_random_seed(seed)``) and keeps its initial weights and
    optimizer state; :meth:`train` puts both back, then fits ``steps`` steps. Every run therefore starts
    from the same weights, with the same learning-rate schedule, and only what :meth:`train` is given
    (the masking rule, the selection rate) differs.

    Args:
        vocabulary_size: ``V``.
        sequence_length: ``L``.
        size: :class:`MiniBert` keyword arguments (``hidden_dim``, ``num_layers``, ...).
        steps: optimisation steps of every run (its compute budget).
        batch_size: sequences per step.
        learning_rate: peak learning rate (linear warm-up over ``warmup_fraction`` of the steps, cosine decay).
        seed: seed of the initial weights and of the masks.
        loss_fn: the masked-LM loss (default :func:`course_lib.losses.masked_lm_loss`).
        loss_positions: ``"selected"`` (BERT) or ``"all"`` (the loss on every real position).
        max_selections: ``P``, prediction slots per sequence, the same for every run (so the compiled step
            is reused): default room for the highest rate, :func:`default_max_selections` at
            ``max_selection_rate``; ``L`` with ``loss_positions="all"``.
        max_selection_rate: the highest selection rate :meth:`train` will be given.
        train_counts: token counts for the unigram start of the output bias (None: zeros, a uniform start).
        warmup_fraction: share of the steps spent warming up.

    Attributes:
        model: the :class:`MiniBert` that every run trains (the result of the last :meth:`train`).

    Raises:
        ValueError: ``steps`` < 1, :class:`MiniBert` sizes it rejects, or ``train_counts`` without ``V``
            entries (see :meth:`MiniBert.init_unigram_bias`).
    """

    def __init__(self, vocabulary_size: int, sequence_length: int, size: dict | None = None, steps: int = 100,
                 batch_size: int = 64, learning_rate: float = 3e-3, seed: int = 0, loss_fn=None,
                 loss_positions: str = "selected", max_selections: int | None = None,
                 max_selection_rate: float = 0.5, train_counts=None, warmup_fraction: float = 0.1):
        from course_lib.training import snapshot_optimizer

        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.steps, self.batch_size, self.seed = int(steps), int(batch_size), int(seed)
        self.loss_positions = loss_positions
        self.max_selections = max_selections or (
            sequence_length if loss_positions == "all" else default_max_selections(sequence_length, max_selection_rate))
        keras.utils.set_random_seed(self.seed)
        self.model = MiniBert(vocabulary_size, sequence_length, **(size or {}))
        if train_counts is not None:
            self.model.init_unigram_bias(train_counts)
        compile_mlm(self.model, learning_rate, total_steps=self.steps,
                    warmup_steps=int(warmup_fraction * self.steps), loss_fn=loss_fn)
        self._weights = self.model.get_weights()
        self._optimizer_state = snapshot_optimizer(self.model.optimizer, self.model.trainable_variables)
        self.runs = 0

    def train(self, token_ids, selection_rate: float = 0.15, mask_fn=None) -> MiniBert:
        """Reset :attr:`model` to the initial weights and optimizer state, then train it for ``steps`` steps.

        Args:
            token_ids: int ``(n, L)`` training sequences (at least ``batch_size`` of them).
            selection_rate: share of the ordinary tokens selected for prediction.
            mask_fn: masking function (default :func:`course_lib.data.masking.mask_tokens`).

        Returns:
            :attr:`model`, trained. The next call trains the same object again: evaluate it first.

        Raises:
            ValueError: ``token_ids`` is not a non-empty 2-D array or holds fewer than ``batch_size`` sequences
                (see :class:`~course_lib.data.masking.MaskedLMBatches`), or, with ``loss_positions="all"``, a row
                with more real tokens than ``max_selections``.
        """
        from course_lib.data.masking import MaskedLMBatches
        from course_lib.training import restore_optimizer

        self.model.set_weights(self._weights)
        restore_optimizer(self.model.optimizer, self._optimizer_state)
        batches = MaskedLMBatches(token_ids, self.model.vocabulary_size, batch_size=self.batch_size, seed=self.seed,
                                  drop_remainder=True, mask_fn=mask_fn, selection_rate=selection_rate,
                                  loss_positions=self.loss_positions, max_selections=self.max_selections)
        # Draw the masked batches of all the steps first (epoch after epoch of the generator, as fit would),
        # then train on the arrays in that order: the run depends on nothing but its arguments.
        drawn = []
        for step in range(self.steps):
            if step and step % len(batches) == 0:
                batches.on_epoch_end()
            drawn.append(batches[step % len(batches)])
        inputs = {key: np.concatenate([b[0][key] for b in drawn]) for key in ("token_ids", "mask_positions")}
        targets, weights = np.concatenate([b[1] for b in drawn]), np.concatenate([b[2] for b in drawn])
        self.model.fit(inputs, targets, sample_weight=weights, batch_size=self.batch_size, epochs=1, shuffle=False,
                       verbose=0)
        self.runs += 1
        return self.model


def mask_rate_experiment(runs: MaskedLMRuns, rates, train_ids, valid_ids, mask_fn=None, n_draws: int = 2,
                         seed: int = 0) -> dict:
    """BERT's mask rate at equal compute: one run per selection rate, the same test for all.

    For every rate, ``runs.train`` trains the model from the same initial weights for the same number of
    steps; each result is scored by :func:`course_lib.evaluation.language_model.evaluate_masked_lm` at the
    standard test (15 % of the validation tokens replaced by ``[MASK]``), so only the training rate differs. Wettig, Gao, Zhong & Chen ("Should
    You Mask 15% in Masked Language Modeling?", EACL 2023) ran this comparison at scale.

    Args:
        runs: the :class:`MaskedLMRuns` that trains every run (its ``model`` is retrained for each rate).
        rates: training selection rates, each in [0, 1]; above the ``max_selection_rate`` ``runs`` was built
            for, the selections are capped at ``runs.max_selections`` per row.
        train_ids: int ``(n, L)`` training sequences (at least ``runs.batch_size`` of them).
        valid_ids: int ``(m, L)`` validation sequences.
        mask_fn: masking function for training (default :func:`course_lib.data.masking.mask_tokens`).
        n_draws: mask draws of the evaluation.
        seed: base seed of the evaluation's draws.

    Returns:
        ``{rate: {"top1": float, "top5": float, "perplexity": float}}`` in the order of ``rates``: top-1 and
        top-5 accuracy in [0, 1] and the masked-token perplexity (``exp`` of the mean nats per token).

    Raises:
        ValueError: as :meth:`MaskedLMRuns.train`.
    """
    from course_lib.evaluation import language_model  # imported here: that module imports this one

    results = {}
    for rate in rates:
        model = runs.train(train_ids, selection_rate=rate, mask_fn=mask_fn)
        scores = language_model.evaluate_masked_lm(model, valid_ids, n_draws=n_draws, seed=seed)
        results[rate] = {key: scores[key] for key in ("top1", "top5", "perplexity")}
    return results


# --------------------------------------------------------------------------------------------
# Inference in fixed-size batches (one compiled function on JAX)
# --------------------------------------------------------------------------------------------

def predict_fixed_batch(model, inputs, batch_size: int) -> np.ndarray:
    """The model's outputs (inference mode) for one batch: an array or a dict of arrays of at most
    ``batch_size`` rows.

    On JAX the batch is padded to ``batch_size`` rows and run by ``predict_on_batch``: one compiled
    function for every batch (a model called directly runs op by op, and every new shape compiles again).
    On TensorFlow and PyTorch the model is called directly: for the few batches of an evaluation that is
    cheaper than tracing a prediction function.

    Args:
        model: a ``keras.Model``, e.g. a :class:`MiniBert` (inputs ``{"token_ids": int32 (n, L),
            "mask_positions": int32 (n, P)}``).
        inputs: an array ``(n, ...)`` or a dict of arrays with ``n`` rows each, ``n <= batch_size`` (on JAX a
            larger ``n`` runs unpadded, compiling a function for that shape).
        batch_size: the fixed row count of the compiled function (JAX).

    Returns:
        The model's output for the ``n`` rows as a NumPy array, e.g. float32 logits ``(n, P, V)`` for a
        :class:`MiniBert`.
    """
    if keras.backend.backend() != "jax":
        return keras.ops.convert_to_numpy(model(inputs, training=False))

    def pad(value):
        value = np.asarray(value)
        return np.concatenate([value, np.zeros((batch_size - len(value), *value.shape[1:]), value.dtype)])

    n = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    if n < batch_size:
        inputs = {key: pad(value) for key, value in inputs.items()} if isinstance(inputs, dict) else pad(inputs)
    return keras.ops.convert_to_numpy(model.predict_on_batch(inputs))[:n]

"""Downstream use of a pretrained mini-BERT (Day 09): probe features, a text classifier and fine-tuning runs.

The masked-LM pretraining of :class:`course_lib.models.bert.MiniBert` trains no sequence-level output; a
sequence is represented by the mean of its token vectors over the real (non-``[PAD]``) tokens:

- :func:`pooled_features`: those means, from the last hidden states or the input embeddings, for a linear probe;
- :func:`build_text_classifier`: a classifier that starts from a copy of the encoder (fine-tuning as in Devlin,
  Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
  NAACL-HLT 2019, section 3.2, with the mean in place of the ``[CLS]`` vector);
- :class:`FineTuneRuns`: fine-tuning from several starting encoders with one compiled training step.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from course_lib.data.tokenization import PAD_ID
from course_lib.models.bert import MiniBert, predict_fixed_batch


def _mean_over_tokens(hidden, token_ids):
    """Average the hidden states over the real (non-``[PAD]``) positions: ``(B, L, d)`` -> ``(B, d)``."""
    return layers.GlobalAveragePooling1D(name="mean_over_tokens")(hidden, mask=ops.not_equal(token_ids, PAD_ID))


def pooled_features(model: MiniBert, token_ids, batch_size: int = 256, layer: str = "encoder") -> np.ndarray:
    """Sequence features for a linear probe: token vectors of one layer averaged over the real tokens.

    The masked-LM objective trains no sequence-level output (``[CLS]`` gets no loss of its own without
    BERT's next-sentence task), so the features of a sequence are the mean of its token vectors (``[CLS]``
    and ``[SEP]`` included, ``[PAD]`` excluded), computed in inference mode: by default the encoder's last
    hidden states (contextual vectors), or with ``layer="embeddings"`` the input embeddings (token plus
    position vectors; the token vectors are the ones the tied output layer scores, so pretraining arranges
    them by the contexts words appear in).

    Args:
        model: a :class:`MiniBert` (trained or not).
        token_ids: int ``(n, L)`` sequences of the model's length.
        batch_size: rows per forward pass.
        layer: ``"encoder"`` (last hidden states) or ``"embeddings"``.

    Returns:
        float32 ``(n, hidden_dim)``.

    Raises:
        ValueError: an unknown ``layer``.
    """
    if layer not in ("encoder", "embeddings"):
        raise ValueError(f"layer must be 'encoder' or 'embeddings', got {layer!r}")
    token_ids = np.asarray(token_ids, dtype=np.int32)
    inputs = keras.Input(shape=(model.sequence_length,), dtype="int32", name="token_ids")
    source = model.encoder() if layer == "encoder" else keras.Model(
        model.get_layer("embeddings").input, model.get_layer("embeddings").output, name="embedding_layer")
    pooled = keras.Model(inputs, _mean_over_tokens(source(inputs), inputs), name="pooled_encoder")
    out = [predict_fixed_batch(pooled, token_ids[i:i + batch_size], batch_size)
           for i in range(0, len(token_ids), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.hidden_dim), np.float32)


def build_text_classifier(model: MiniBert, num_classes: int, dropout: float = 0.1,
                          name: str = "text_classifier") -> keras.Model:
    """A sequence classifier that starts from a *copy* of ``model``'s encoder (``model`` itself is not changed).

    ``token_ids (B, L)`` -> the encoder (:meth:`MiniBert.encoder` of a copy with the same weights) -> mean of
    the hidden states over the real tokens -> ``Dropout`` -> ``Dense(num_classes)`` logits. Fine-tuning
    trains every weight, encoder included (Devlin et al., NAACL-HLT 2019, section 3.2, with the mean of the
    token vectors in place of the ``[CLS]`` vector: our pretraining has no next-sentence task that would
    train ``[CLS]``).

    Args:
        model: the :class:`MiniBert` whose weights the encoder starts from (pretrained, or freshly initialised
            for the baseline).
        num_classes: ``K`` (>= 2).
        dropout: dropout rate before the output layer.
        name: the classifier's name.

    Returns:
        An uncompiled functional ``keras.Model``: int32 ``(B, L)`` -> float32 logits ``(B, K)``.

    Raises:
        ValueError: ``num_classes`` < 2.
    """
    return _classifier_on_copy(model, num_classes, dropout, name)[0]


def _classifier_on_copy(model: MiniBert, num_classes: int, dropout: float, name: str):
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    copy = MiniBert.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    inputs = keras.Input(shape=(model.sequence_length,), dtype="int32", name="token_ids")
    x = _mean_over_tokens(copy.encoder()(inputs), inputs)
    x = layers.Dropout(dropout, name="classifier_dropout")(x)
    logits = layers.Dense(num_classes, name="classifier_logits")(x)
    return keras.Model(inputs, logits, name=name), copy


class FineTuneRuns:
    """Fine-tune a text classifier from several starting encoders, with one compiled training step.

    The classifier is :func:`build_text_classifier`'s; it is built and compiled once (AdamW, a cosine
    learning-rate decay over ``steps`` steps, cross-entropy on the logits). Each call of
    :meth:`fit_predict` copies the given encoder's weights in, puts the classification layer and the
    optimizer back to their initial state (the same for every run), and trains every weight for ``steps``
    steps on the labeled sequences (repeated in a seeded random order), so that runs differ only by the
    starting encoder and the labeled set.

    Args:
        model: a :class:`MiniBert` of the architecture to fine-tune (its weights are not used).
        num_classes: ``K``.
        steps: optimisation steps per run.
        batch_size: sequences per step.
        learning_rate: peak learning rate.
        seed: seed of the classification layer's initial weights and of the row order.
        dropout: dropout before the classification layer.
        weight_decay: AdamW's decoupled weight decay.

    Attributes:
        classifier: the compiled ``keras.Model`` (int32 ``(B, L)`` -> logits ``(B, K)``), the last run's.
    """

    def __init__(self, model: MiniBert, num_classes: int, steps: int = 100, batch_size: int = 32,
                 learning_rate: float = 1e-3, seed: int = 0, dropout: float = 0.1, weight_decay: float = 0.01):
        from course_lib.training import build_compiled, snapshot_optimizer

        self.steps, self.batch_size, self.seed, self.runs = int(steps), int(batch_size), int(seed), 0
        keras.utils.set_random_seed(self.seed)
        self.classifier, self._encoder = _classifier_on_copy(model, num_classes, dropout, "text_classifier")
        self.classifier.compile(
            optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(learning_rate, self.steps),
                                             weight_decay=weight_decay, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        self._head = self.classifier.get_layer("classifier_logits").get_weights()
        build_compiled(self.classifier, np.zeros((1, model.sequence_length), np.int32), np.zeros((1,), np.int64))
        self._optimizer_state = snapshot_optimizer(self.classifier.optimizer, self.classifier.trainable_variables)

    def fit_predict(self, encoder: MiniBert, x_labeled, y_labeled, x_test, run_seed: int | None = None) -> np.ndarray:
        """Fine-tune from ``encoder``'s weights on the labeled sequences, then predict ``x_test``.

        Args:
            encoder: the :class:`MiniBert` to start from (not modified).
            x_labeled: int ``(n, L)`` labeled sequences; y_labeled: int ``(n,)`` their classes.
            x_test: int ``(m, L)`` sequences to classify.
            run_seed: seed of the row order and the dropout masks (default: the number of runs so far);
                give two runs the same one to compare two encoders on identical batches.

        Returns:
            int64 ``(m,)`` predicted classes.
        """
        from course_lib.backends import seed_unseeded_dropout
        from course_lib.training import reset_seed_generators, restore_optimizer

        run_seed = self.runs if run_seed is None else int(run_seed)
        self.runs += 1
        self._encoder.set_weights(encoder.get_weights())
        self.classifier.get_layer("classifier_logits").set_weights(self._head)
        restore_optimizer(self.classifier.optimizer, self._optimizer_state)
        reset_seed_generators(self.classifier, self.seed * 1000 + run_seed)
        seed_unseeded_dropout(self.seed * 1000 + run_seed)   # keras_hub's dropout layers, on PyTorch
        x_labeled, y_labeled = np.asarray(x_labeled, np.int32), np.asarray(y_labeled, np.int64)
        rng = np.random.default_rng([self.seed, run_seed])
        n_rows = self.steps * self.batch_size
        reps = math.ceil(n_rows / len(x_labeled))
        rows = np.concatenate([rng.permutation(len(x_labeled)) for _ in range(reps)])[:n_rows]
        self.classifier.fit(x_labeled[rows], y_labeled[rows], batch_size=self.batch_size, epochs=1, shuffle=False,
                            verbose=0)
        x_test = np.asarray(x_test, np.int32)
        logits = [predict_fixed_batch(self.classifier, x_test[i:i + 256], 256) for i in range(0, len(x_test), 256)]
        return np.concatenate(logits).argmax(axis=1) if logits else np.zeros(0, np.int64)

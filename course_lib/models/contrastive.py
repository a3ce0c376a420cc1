"""Contrastive learners of Days 07-08: SimCLR and MoCo (positives pulled together, negatives pushed apart).

- :class:`SimCLR` (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
  Visual Representations", ICML 2020): two independent augmented views of every image per step, NT-Xent
  over all 2N views. :func:`pretrain_simclr` builds and trains one in a call and returns its encoder.
- :class:`MoCo` (He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised Visual Representation
  Learning", CVPR 2020): a momentum (exponential moving average) key encoder and a queue of past keys as
  negatives, InfoNCE loss. :func:`momentum_update` and :func:`target_copy` also serve BYOL
  (:mod:`course_lib.models.siamese`).

Both are :class:`course_lib.models.base.SelfSupervisedModel` subclasses: they override ``compute_loss``
(backend-agnostic Keras 3: the default ``train_step`` of each backend computes the gradients), return the
encoder's representation from ``call`` and survive a ``.keras`` round-trip. The encoders and heads they
use are built by :mod:`course_lib.models.encoders`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from course_lib import losses, training
from course_lib.backends import to_numpy
from course_lib.data.augment import build_augmenter
from course_lib.models.base import SelfSupervisedModel
from course_lib.models.encoders import build_encoder, build_projection_head

#: Defaults of :func:`pretrain_simclr`.
SIMCLR_DEFAULTS = {"batch_size": 256, "temperature": 0.2, "learning_rate": 2e-3}


def default_augmenter(encoder, augmenter=None, seed: int = 0):
    """``augmenter``, or :func:`course_lib.data.augment.build_augmenter` for the encoder's input shape."""
    return augmenter if augmenter is not None else build_augmenter(tuple(encoder.input_shape[1:]), seed=seed)


# --------------------------------------------------------------------------------------------
# SimCLR
# --------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="course_lib")
class SimCLR(SelfSupervisedModel):
    r"""SimCLR: two independent augmentations per image per step, encoder + projection head, NT-Xent.

    Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020.

    Training (``fit(x_unlabeled)``, no targets): for a batch of N images the augmenter is called twice
    with ``training=True`` (independent views :math:`v_1, v_2`), both go through the encoder :math:`f`
    and the head :math:`g`, and the loss is :func:`course_lib.losses.nt_xent_loss` over all 2N views.
    ``objective="mse"`` swaps in the broken :func:`course_lib.losses.mse_between_views` (no negatives), for
    the Day-07 collapse demonstration only.

    ``call(images)`` returns the representation :math:`h = f(x)` with the encoder in inference mode, so
    ``model.predict(x)`` gives the frozen features the probes use. Metrics: ``loss``, ``accuracy``
    (fraction of views whose nearest other view is their partner) and ``std``
    (:func:`course_lib.losses.embedding_std` of the projections, the collapse diagnostic).

    Args:
        encoder: a ``keras.Model`` ``(batch, h, w, c) -> (batch, d)``, e.g. :func:`build_encoder`.
        projection_head: a ``keras.Model`` ``(batch, d) -> (batch, p)``, e.g. :func:`build_projection_head`.
        augmenter: a layer/model applied with ``training=True`` (default :func:`course_lib.data.augment.build_augmenter`).
        temperature: NT-Xent temperature :math:`\tau > 0`.
        objective: ``"nt_xent"`` (default) or ``"mse"`` (the naive loss; it collapses).
        seed: seed of the default augmenter.

    Raises:
        ValueError: unknown ``objective`` or ``temperature`` <= 0.
    """

    METRICS = ("loss", "accuracy", "std")
    SUBMODELS = ("encoder", "projection_head", "augmenter")

    def __init__(self, encoder, projection_head, augmenter=None, temperature: float = SIMCLR_DEFAULTS["temperature"],
                 objective: str = "nt_xent", seed: int = 0, **kwargs):
        if objective not in ("nt_xent", "mse"):
            raise ValueError(f"objective must be 'nt_xent' or 'mse', got {objective!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(encoder, default_augmenter(encoder, augmenter, seed), seed=seed, **kwargs)
        self.projection_head = projection_head
        self.temperature = float(temperature)
        self.objective = objective

    def project(self, images, training=False):
        """Projections :math:`z = g(f(x))`, float ``(batch, p)``."""
        return self.projection_head(self.encoder(images, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view1, view2 = self.two_views(x)
        z = self.project(ops.concatenate([view1, view2], axis=0), training=training)
        z1, z2 = ops.split(z, 2, axis=0)
        if self.objective == "nt_xent":
            loss = losses.nt_xent_loss(z1, z2, self.temperature)
        else:
            loss = losses.mse_between_views(z1, z2)
        self.track(loss=loss, accuracy=losses.contrastive_accuracy(z1, z2, self.temperature),
                   std=losses.embedding_std(z1))
        return loss

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "objective": self.objective}


def pretrain_simclr(x_train, epochs: int = 20, seed: int = 0, batch_size: int = SIMCLR_DEFAULTS["batch_size"],
                    temperature: float = SIMCLR_DEFAULTS["temperature"],
                    learning_rate: float = SIMCLR_DEFAULTS["learning_rate"], encoder_kwargs: dict | None = None,
                    augment_kwargs: dict | None = None, projection_dim: int = 64, objective: str = "nt_xent",
                    callbacks=None, return_model: bool = False, verbose: int = 0):
    """Build a :class:`SimCLR` model for ``x_train``'s image shape, train it, and return its encoder.

    The convenience entry point of Days 07, 08 and 10: ``encoder = pretrain_simclr(ds.x_train, epochs=20, seed=0)``
    then ``features = training.predict_batched(encoder, ds.x_test)``. Training uses no labels
    (:func:`course_lib.training.fit_self_supervised`: Adam,
    cosine learning-rate decay to 0). With the defaults (conv encoder of width 16, batch 256, temperature
    0.2, 20 epochs) the linear probe on the 8x8 digits reaches about 0.94 test accuracy at 10 labels per
    class, against about 0.89 for logistic regression on the pixels, in roughly 10 s of CPU time.

    Args:
        x_train: float32 images ``(n, h, w, c)`` in [0, 1] (labels are never needed).
        epochs: passes over ``x_train`` (20 is the quick-mode setting of Day 07 on the digits).
        seed: ``keras.utils.set_random_seed(seed)`` is called first (weights, shuffling and augmentations),
            so the same seed gives the same encoder on the same machine.
        batch_size: images per step (2 x batch_size views).
        temperature: NT-Xent temperature.
        learning_rate: peak Adam learning rate.
        encoder_kwargs: passed to :func:`build_encoder` (e.g. ``{"kind": "mlp"}``).
        augment_kwargs: passed to :func:`course_lib.data.augment.build_augmenter` (strengths).
        projection_dim: output dimension of the projection head.
        objective: ``"nt_xent"`` or ``"mse"`` (see :class:`SimCLR`).
        callbacks: Keras callbacks for ``fit``.
        return_model: return ``(encoder, model, history)`` instead of the encoder alone.
        verbose: ``fit`` verbosity.

    Returns:
        The trained encoder (a ``keras.Model`` ``(batch, h, w, c) -> (batch, embedding_dim)``), or
        ``(encoder, simclr_model, history)`` when ``return_model`` is true.
    """
    x_train = to_numpy(x_train, dtype=np.float32)
    keras.utils.set_random_seed(seed)
    image_shape = tuple(x_train.shape[1:])
    encoder = build_encoder(image_shape, **(encoder_kwargs or {}))
    head = build_projection_head(encoder.output_shape[-1], output_dim=projection_dim)
    augmenter = build_augmenter(image_shape, seed=seed, **(augment_kwargs or {}))
    model = SimCLR(encoder, head, augmenter, temperature=temperature, objective=objective, seed=seed)
    history = training.fit_self_supervised(model, x_train, epochs, batch_size, learning_rate, callbacks, verbose)
    return (encoder, model, history) if return_model else encoder


# --------------------------------------------------------------------------------------------
# MoCo
# --------------------------------------------------------------------------------------------

def target_copy(model, prefix: str, batch_stats: bool = False):
    """A frozen copy of a serializable model: same architecture and weights, new variables, not trainable.

    The starting point of MoCo's key encoder and BYOL's target network, which then follow their online
    network through :func:`momentum_update` only. Its name is ``prefix + model.name``.

    With ``batch_stats=False`` the copy's layers are frozen, so its batch normalisation always uses its
    moving statistics. With ``batch_stats=True`` the layers stay trainable while none of their *variables* is
    (the optimizer never sees them on any backend): Keras' ``BatchNormalization`` then normalises with the
    statistics of the current batch when called with ``training=True``, as the target networks of BYOL and
    MoCo v3 do. Do not set ``trainable`` on the copy afterwards: that would make its variables trainable.
    """
    config = model.get_config()
    if isinstance(config, dict) and "name" in config:
        config = {**config, "name": prefix + model.name}
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    twin.trainable = False
    if batch_stats:
        twin.trainable = True
        for variable in twin.weights:
            variable.trainable = False
    return twin


def momentum_update(target_weights, online_weights, momentum: float) -> None:
    r"""Exponential moving average, in place: :math:`\theta_k \leftarrow m\,\theta_k + (1 - m)\,\theta_q`.

    MoCo's key encoder and BYOL's target network follow their online network this way.

    Args:
        target_weights: list of ``keras.Variable`` (updated in place).
        online_weights: list of tensors/variables of the same shapes, in the same order.
        momentum: :math:`m \in [0, 1]`; 1 freezes the target, 0 copies the online weights. A Python number,
            or a scalar tensor (a schedule such as BYOL's, :func:`course_lib.models.siamese.cosine_momentum`).

    Raises:
        ValueError: lists of different lengths or a Python ``momentum`` outside [0, 1].
    """
    if len(target_weights) != len(online_weights):
        raise ValueError(f"{len(target_weights)} target weights but {len(online_weights)} online weights")
    if isinstance(momentum, (int, float)) and not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    for target, online in zip(target_weights, online_weights):
        m = ops.cast(momentum, target.dtype)
        target.assign(m * target + (1.0 - m) * ops.cast(online, target.dtype))


@keras.saving.register_keras_serializable(package="course_lib")
class MoCo(SelfSupervisedModel):
    r"""MoCo: a momentum key encoder and a queue of past keys as negatives (He et al., CVPR 2020).

    Each step: two independent views; the query network (``encoder`` + ``projection_head``, trained by
    gradient descent) embeds one, the key network (a copy updated only by
    :func:`momentum_update` with momentum :math:`m`, no gradient) embeds the other, and
    :func:`course_lib.losses.info_nce_loss` contrasts each query with its key (positive) and the
    ``queue_size`` keys of previous steps (negatives). The loss is symmetrized (each view plays query
    once); the new keys then replace the oldest ones in the queue. Negatives no longer have to fit in the
    batch, and the slowly moving key encoder keeps the queued keys consistent with each other.

    The key network is not trainable, so its batch-normalisation layers always use their moving statistics
    (which the momentum update also averages from the query network). Batch statistics computed over the
    current keys would be a signal shared by a query batch and its keys that the model can exploit to
    recognise current keys among the queued ones; MoCo's "shuffling BN" addresses that leak on several GPUs.
    ``call(images)`` returns the query encoder's representation in inference mode.

    Args:
        encoder, projection_head: the query network (see :func:`build_encoder`, :func:`build_projection_head`).
        augmenter: view generator (default :func:`course_lib.data.augment.build_augmenter`).
        queue_size: number of negative keys K (>= the batch size).
        momentum: key-encoder momentum :math:`m \in [0, 1)`. MoCo used 0.999 for hundreds of thousands of
            steps; the course's runs have about a hundred, so the key encoder must move faster.
        temperature: InfoNCE temperature.
        seed: seed of the default augmenter and of the queue's random initial keys.
        batch_negatives: also use the keys of the *other images of the current batch* as negatives (each query
            is scored against all N keys of the other view, its own being the positive), as MoCo v3 does
            (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021).
            In runs of a few hundred steps the key network moves fast, and with queued negatives alone a query
            can tell "current key" from "stale key" without telling images apart; in-batch negatives close
            that shortcut. With ``batch_negatives=True``, ``queue_size`` may be 0 (no queue at all).
        key_batch_stats: the key network normalises with the statistics of the current batch (True, as in
            MoCo v3) instead of its moving statistics (False, the default); see :func:`target_copy`.

    Raises:
        ValueError: ``queue_size`` < 1 (< 0 with ``batch_negatives``), ``momentum`` outside [0, 1) or
            ``temperature`` <= 0.
    """

    METRICS = ("loss", "std")
    SUBMODELS = ("encoder", "projection_head", "augmenter")

    def __init__(self, encoder, projection_head, augmenter=None, queue_size: int = 1024, momentum: float = 0.95,
                 temperature: float = 0.2, seed: int = 0, batch_negatives: bool = False,
                 key_batch_stats: bool = False, **kwargs):
        if queue_size < (0 if batch_negatives else 1) or not 0.0 <= momentum < 1.0 or temperature <= 0:
            raise ValueError(f"need queue_size >= 1 (>= 0 with batch_negatives), 0 <= momentum < 1, temperature > 0; "
                             f"got {queue_size}, {momentum}, {temperature}")
        super().__init__(encoder, default_augmenter(encoder, augmenter, seed), seed=seed, **kwargs)
        self.projection_head = projection_head
        self.batch_negatives, self.key_batch_stats = bool(batch_negatives), bool(key_batch_stats)
        self.key_encoder = target_copy(encoder, "key_", self.key_batch_stats)
        self.key_head = target_copy(projection_head, "key_", self.key_batch_stats)
        self.queue_size, self.momentum, self.temperature = int(queue_size), float(momentum), float(temperature)
        dim = int(projection_head.output_shape[-1])
        if self.queue_size:
            self.queue = self.add_weight(shape=(self.queue_size, dim), name="queue", trainable=False,
                                         initializer=keras.initializers.RandomNormal(seed=seed))
            self.queue_pointer = self.add_weight(shape=(), name="queue_pointer", dtype="int32", trainable=False,
                                                 initializer="zeros")

    def update_key_network(self, momentum) -> None:
        """Move the key network towards the query network (:func:`momentum_update`, in place).

        Args:
            momentum: :math:`m \\in [0, 1]`, a Python number or a scalar tensor.

        Raises:
            ValueError: a Python ``momentum`` outside [0, 1], or key and query networks with different numbers
                of weights (see :func:`momentum_update`).
        """
        momentum_update(self.key_encoder.weights, self.encoder.weights, momentum)
        momentum_update(self.key_head.weights, self.projection_head.weights, momentum)

    def _enqueue(self, keys):
        n = ops.shape(keys)[0]
        rows = ops.mod(self.queue_pointer + ops.arange(n, dtype="int32"), self.queue_size)
        self.queue.assign(ops.scatter_update(self.queue, ops.expand_dims(rows, 1), keys))
        self.queue_pointer.assign(ops.mod(self.queue_pointer + n, self.queue_size))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:  # MoCo updates the key network from the current query network before computing keys
            self.update_key_network(self.momentum)
        view1, view2 = self.two_views(x)
        both = ops.concatenate([view1, view2], axis=0)
        q1, q2 = ops.split(self.projection_head(self.encoder(both, training=training), training=training), 2)
        key_mode = bool(training) and self.key_batch_stats
        keys = self.key_head(self.key_encoder(both, training=key_mode), training=key_mode)
        k1, k2 = ops.split(ops.stop_gradient(keys), 2)
        if self.batch_negatives:
            loss = 0.5 * (self._batch_loss(q1, k2) + self._batch_loss(q2, k1))
        else:
            negatives = ops.stop_gradient(self.queue)
            loss = 0.5 * (losses.info_nce_loss(q1, k2, negatives, self.temperature)
                          + losses.info_nce_loss(q2, k1, negatives, self.temperature))
        if training and self.queue_size:
            self._enqueue(losses.l2_normalize(k2))
        self.track(loss=loss, std=losses.embedding_std(q1))
        return loss

    def _batch_loss(self, q, k):
        """InfoNCE of queries ``q`` against all keys ``k`` of the batch (positives on the diagonal) and the queue."""
        q, k = losses.l2_normalize(q), losses.l2_normalize(k)
        logits = ops.matmul(q, ops.transpose(k))
        if self.queue_size:
            queue = losses.l2_normalize(ops.stop_gradient(self.queue))
            logits = ops.concatenate([logits, ops.matmul(q, ops.transpose(queue))], axis=1)
        targets = ops.arange(ops.shape(q)[0], dtype="int32")
        return ops.mean(ops.sparse_categorical_crossentropy(targets, logits / self.temperature, from_logits=True))

    def get_config(self):
        return {**super().get_config(), "queue_size": self.queue_size, "momentum": self.momentum,
                "temperature": self.temperature, "batch_negatives": self.batch_negatives,
                "key_batch_stats": self.key_batch_stats}



"""Self-supervised representation learners of Days 07-08: SimCLR, MoCo and SimSiam, with their encoders and heads.

- :func:`build_encoder`: the small convolutional (or MLP) encoder :math:`f` whose output :math:`h` is the
  representation we evaluate with frozen-feature probes.
- :func:`build_projection_head`: the MLP :math:`g` mapping :math:`h` to the space :math:`z` where the loss
  is computed (the probes use :math:`h`, not :math:`z`).
- :class:`SimCLR` (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
  Visual Representations", ICML 2020): two independent augmented views of every image per step, NT-Xent
  over all 2N views. :func:`pretrain_simclr` builds and trains one in a call and returns its encoder.
- :class:`MoCo` (He, Fan, Wu, Xie & Girshick, "Momentum Contrast for Unsupervised Visual Representation
  Learning", CVPR 2020): a momentum (exponential moving average) key encoder and a queue of past keys as
  negatives, InfoNCE loss.
- :class:`SimSiam` (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): no negatives;
  a predictor and a stop-gradient prevent collapse.
- :func:`fit_self_supervised` (the training recipe shared by every method), :func:`embed` (frozen features as
  NumPy), :func:`save_encoder` / :func:`load_encoder` (a ``.keras`` file plus the settings it was trained
  with; Day 07 saves ``build/models/day07_simclr_encoder.keras`` this way for Days 08 and 10).

Every model is a ``keras.Model`` subclass that overrides ``compute_loss`` (backend-agnostic Keras 3: the
default ``train_step`` of each backend computes the gradients), exposes its ``keras.metrics.Mean``
trackers through ``metrics``, returns the encoder's representation from ``call`` (so ``model.predict(x)``
gives frozen features) and survives a ``.keras`` save / load round-trip. Their ``compile`` also builds the
optimizer's variables, so the TensorFlow backend traces the training step once instead of twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from course_lib import losses
from course_lib.augment import build_augmenter

#: Defaults of :func:`pretrain_simclr`, tuned on the digits (quick mode, 2-core CPU).
SIMCLR_DEFAULTS = {"batch_size": 256, "temperature": 0.2, "learning_rate": 2e-3}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------

def build_encoder(input_shape=(8, 8, 1), kind: str = "conv", width: int = 16, embedding_dim: int = 128,
                  batch_norm: bool = True, bn_momentum: float = 0.9, name: str = "encoder") -> keras.Model:
    """A small encoder for 8x8 or 28x28 grayscale images (Functional API).

    ``kind="conv"``: ``[Conv3x3(width) -> BN -> ReLU] -> [Conv3x3(2 width) -> BN -> ReLU] -> MaxPool2``
    (repeated with a stride-2 stage for inputs larger than 16 pixels) -> ``Flatten`` -> ``Dense(embedding_dim)``
    -> BN -> ReLU. ``kind="mlp"``: ``Flatten -> [Dense(4 width) -> BN -> ReLU] -> Dense(embedding_dim) -> BN -> ReLU``.

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``.
        kind: ``"conv"`` or ``"mlp"``.
        width: number of filters of the first convolution (units scale with it).
        embedding_dim: dimension of the representation :math:`h`.
        batch_norm: use batch normalisation after every hidden layer.
        bn_momentum: momentum of the batch-normalisation moving statistics. 0.9 rather than Keras' 0.99:
            short CPU runs have a few hundred steps, and the frozen encoder (inference mode) uses these
            statistics.
        name: model name.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, *input_shape)`` to float32 ``(batch, embedding_dim)``
        (non-negative: the last activation is a ReLU).

    Raises:
        ValueError: unknown ``kind`` or a non-positive size.
    """
    if kind not in ("conv", "mlp"):
        raise ValueError(f"kind must be 'conv' or 'mlp', got {kind!r}")
    if width < 1 or embedding_dim < 1:
        raise ValueError(f"width and embedding_dim must be >= 1, got {width}, {embedding_dim}")

    def norm_act(x, label):
        if batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"{label}_bn")(x)
        return layers.Activation("relu", name=f"{label}_relu")(x)

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if kind == "conv":
        stage = 0
        while True:
            stage += 1
            x = norm_act(layers.Conv2D(width * stage, 3, padding="same", use_bias=not batch_norm,
                                       name=f"conv{stage}a")(x), f"conv{stage}a")
            x = norm_act(layers.Conv2D(2 * width * stage, 3, padding="same", use_bias=not batch_norm,
                                       name=f"conv{stage}b")(x), f"conv{stage}b")
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
            if x.shape[1] <= 7:
                break
        x = layers.Flatten(name="flatten")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = norm_act(layers.Dense(4 * width, use_bias=not batch_norm, name="dense1")(x), "dense1")
    x = layers.Dense(embedding_dim, use_bias=not batch_norm, name="embedding")(x)
    outputs = norm_act(x, "embedding")
    return keras.Model(inputs, outputs, name=name)


def build_projection_head(input_dim: int = 128, hidden_dim: int = 128, output_dim: int = 64,
                          batch_norm: bool = True, output_batch_norm: bool = False,
                          name: str = "projection_head") -> keras.Model:
    """The projection head :math:`g`: ``Dense(hidden_dim) -> [BN] -> ReLU -> Dense(output_dim) [-> BN]``.

    SimCLR computes the loss on :math:`z = g(h)` and evaluates :math:`h`; the head absorbs the invariances
    the loss imposes that would otherwise throw away information useful downstream (Chen et al., 2020).

    Args:
        input_dim: dimension of the representation :math:`h`.
        hidden_dim, output_dim: widths of the hidden layer and of :math:`z`.
        batch_norm: batch normalisation after the hidden layer.
        output_batch_norm: batch normalisation (without scale and offset) on :math:`z`, as SimSiam's projector.
        name: model name.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, input_dim)`` to float32 ``(batch, output_dim)``.
    """
    inputs = keras.Input(shape=(int(input_dim),), name="representation")
    x = layers.Dense(hidden_dim, use_bias=not batch_norm, name="hidden")(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation("relu", name="hidden_relu")(x)
    outputs = layers.Dense(output_dim, use_bias=not output_batch_norm, name="projection")(x)
    if output_batch_norm:
        outputs = layers.BatchNormalization(center=False, scale=False, name="projection_bn")(outputs)
    return keras.Model(inputs, outputs, name=name)


def build_predictor(dim: int = 64, hidden_dim: int = 32, name: str = "predictor") -> keras.Model:
    """SimSiam / BYOL predictor :math:`h`: a bottleneck MLP ``Dense(hidden_dim) -> BN -> ReLU -> Dense(dim)``.

    Returns:
        A ``keras.Model`` mapping float32 ``(batch, dim)`` to float32 ``(batch, dim)``.
    """
    inputs = keras.Input(shape=(int(dim),), name="projection")
    x = layers.Dense(hidden_dim, use_bias=False, name="hidden")(inputs)
    x = layers.BatchNormalization(name="hidden_bn")(x)
    x = layers.Activation("relu", name="hidden_relu")(x)
    outputs = layers.Dense(dim, name="prediction")(x)
    return keras.Model(inputs, outputs, name=name)


def _augmenter_for(encoder, augmenter, seed):
    return augmenter if augmenter is not None else build_augmenter(tuple(encoder.input_shape[1:]), seed=seed)


class _PrebuiltOptimizerMixin:
    """Build the optimizer's variables in ``compile``.

    Created lazily inside the first traced training step, they would make TensorFlow trace the whole
    step twice (a variable created during tracing forces a retrace), doubling the start-up time.
    """

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Loading a saved model re-compiles it with the saved optimizer (its state is restored afterwards).
        self.compile(**keras.saving.deserialize_keras_object(config))


def _serialize(obj):
    return keras.saving.serialize_keras_object(obj)


def _deserialize(config):
    return keras.saving.deserialize_keras_object(config)


# --------------------------------------------------------------------------------------------
# SimCLR
# --------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="course_lib")
class SimCLR(_PrebuiltOptimizerMixin, keras.Model):
    r"""SimCLR: two independent augmentations per image per step, encoder + projection head, NT-Xent.

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
        augmenter: a layer/model applied with ``training=True`` (default :func:`course_lib.augment.build_augmenter`).
        temperature: NT-Xent temperature :math:`\tau > 0`.
        objective: ``"nt_xent"`` (default) or ``"mse"`` (the naive loss; it collapses).
        seed: seed of the default augmenter.

    Raises:
        ValueError: unknown ``objective`` or ``temperature`` <= 0.
    """

    def __init__(self, encoder, projection_head, augmenter=None, temperature: float = SIMCLR_DEFAULTS["temperature"],
                 objective: str = "nt_xent", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if objective not in ("nt_xent", "mse"):
            raise ValueError(f"objective must be 'nt_xent' or 'mse', got {objective!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder = encoder
        self.projection_head = projection_head
        self.augmenter = _augmenter_for(encoder, augmenter, seed)
        self.temperature = float(temperature)
        self.objective = objective
        self.seed = seed
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.std_tracker = keras.metrics.Mean(name="std")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker, self.std_tracker]

    def call(self, images, training=False):
        # The model's output is the frozen representation; the training passes happen in compute_loss.
        return self.encoder(images, training=False)

    def project(self, images, training=False):
        """Projections :math:`z = g(f(x))`, float ``(batch, p)``."""
        return self.projection_head(self.encoder(images, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view1 = self.augmenter(x, training=True)
        view2 = self.augmenter(x, training=True)
        z = self.project(ops.concatenate([view1, view2], axis=0), training=training)
        z1, z2 = ops.split(z, 2, axis=0)
        if self.objective == "nt_xent":
            loss = losses.nt_xent_loss(z1, z2, self.temperature)
        else:
            loss = losses.mse_between_views(z1, z2)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(losses.contrastive_accuracy(z1, z2, self.temperature))
        self.std_tracker.update_state(losses.embedding_std(z1))
        return loss

    def get_config(self):
        return {**super().get_config(), "encoder": _serialize(self.encoder),
                "projection_head": _serialize(self.projection_head), "augmenter": _serialize(self.augmenter),
                "temperature": self.temperature, "objective": self.objective, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "augmenter"):
            config[key] = _deserialize(config[key])
        return cls(**config)


def embed(encoder, images, batch_size: int = 512) -> np.ndarray:
    """Frozen features of ``images``: ``encoder`` in inference mode, as a float32 NumPy array ``(n, d)``.

    Calls the model directly batch by batch (no ``predict``: for these small models building a traced
    prediction function for every encoder and input size costs more than it saves).

    Args:
        encoder: a model ``(batch, h, w, c) -> (batch, d)`` (or any model, e.g. encoder + head).
        images: float32 array ``(n, h, w, c)``.
        batch_size: images per call.
    """
    images = np.asarray(images, dtype=np.float32)
    chunks = [ops.convert_to_numpy(encoder(images[i:i + batch_size], training=False))
              for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def fit_self_supervised(model, x_train, epochs: int, batch_size: int = SIMCLR_DEFAULTS["batch_size"],
                        learning_rate: float = SIMCLR_DEFAULTS["learning_rate"], callbacks=None, verbose: int = 0):
    """Compile ``model`` with Adam and a cosine learning-rate decay to 0, then ``fit`` it on unlabeled images.

    The shared training recipe of Days 07-08, so that every method gets the same budget.

    Args:
        model: a :class:`SimCLR`, :class:`MoCo`, :class:`SimSiam` or
            :class:`course_lib.models.pretext.RotationPrediction` (any model whose ``compute_loss`` needs no targets).
        x_train: float32 images ``(n, h, w, c)``.
        epochs, batch_size: training length (the last batch of an epoch may be smaller).
        learning_rate: peak learning rate.
        callbacks, verbose: passed to ``fit``.

    Returns:
        The ``keras.callbacks.History``.
    """
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    return model.fit(np.asarray(x_train, dtype=np.float32), epochs=epochs, batch_size=batch_size, shuffle=True,
                     verbose=verbose, callbacks=callbacks)


def pretrain_simclr(x_train, epochs: int = 20, seed: int = 0, batch_size: int = SIMCLR_DEFAULTS["batch_size"],
                    temperature: float = SIMCLR_DEFAULTS["temperature"],
                    learning_rate: float = SIMCLR_DEFAULTS["learning_rate"], encoder_kwargs: dict | None = None,
                    augment_kwargs: dict | None = None, projection_dim: int = 64, objective: str = "nt_xent",
                    callbacks=None, return_model: bool = False, verbose: int = 0):
    """Build a :class:`SimCLR` model for ``x_train``'s image shape, train it, and return its encoder.

    The convenience entry point of Days 07, 08 and 10: ``encoder = pretrain_simclr(ds.x_train, epochs=20, seed=0)``
    then ``features = embed(encoder, ds.x_test)``. Training uses no labels (:func:`fit_self_supervised`: Adam,
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
        augment_kwargs: passed to :func:`course_lib.augment.build_augmenter` (strengths).
        projection_dim: output dimension of the projection head.
        objective: ``"nt_xent"`` or ``"mse"`` (see :class:`SimCLR`).
        callbacks: Keras callbacks for ``fit``.
        return_model: return ``(encoder, model, history)`` instead of the encoder alone.
        verbose: ``fit`` verbosity.

    Returns:
        The trained encoder (a ``keras.Model`` ``(batch, h, w, c) -> (batch, embedding_dim)``), or
        ``(encoder, simclr_model, history)`` when ``return_model`` is true.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    keras.utils.set_random_seed(seed)
    image_shape = tuple(x_train.shape[1:])
    encoder = build_encoder(image_shape, **(encoder_kwargs or {}))
    head = build_projection_head(encoder.output_shape[-1], output_dim=projection_dim)
    augmenter = build_augmenter(image_shape, seed=seed, **(augment_kwargs or {}))
    model = SimCLR(encoder, head, augmenter, temperature=temperature, objective=objective, seed=seed)
    history = fit_self_supervised(model, x_train, epochs, batch_size, learning_rate, callbacks, verbose)
    return (encoder, model, history) if return_model else encoder


def save_encoder(model, path, **metadata) -> Path:
    """Save the encoder ``model`` to ``path`` (a ``.keras`` file) and ``metadata`` to a JSON file beside it.

    Day 07 saves its SimCLR encoder this way to ``course_lib.paths.build_dir() / "models" /
    "day07_simclr_encoder.keras"`` with the dataset, mode, seed and training settings, so that later days
    can reuse it only when it was trained the way they would train it (:func:`load_encoder`).

    Args:
        model: the encoder, a ``keras.Model``.
        path: target ``.keras`` path (parent folders are created).
        **metadata: JSON-serializable values, written to ``path`` with the suffix ``.json``.

    Returns:
        The path of the saved model.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=1, sort_keys=True), encoding="utf-8")
    return path


def load_encoder(path, **expected):
    """Load an encoder saved by :func:`save_encoder` if it exists and its metadata equals ``expected``.

    Args:
        path: the ``.keras`` file.
        **expected: metadata values that must match exactly (after a JSON round-trip, so tuples compare
            equal to lists), e.g. ``dataset="digits", mode="quick", seed=0``.

    Returns:
        The loaded ``keras.Model``, or None when the file or its metadata is missing, a value differs, or the
        file cannot be loaded (a stale or foreign file is never used silently: the caller trains instead).
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.exists() or not sidecar.exists():
        return None
    try:
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
        wanted = json.loads(json.dumps(expected))
        if any(saved.get(key) != value for key, value in wanted.items()):
            return None
        return keras.models.load_model(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None


# --------------------------------------------------------------------------------------------
# MoCo
# --------------------------------------------------------------------------------------------

def _twin(model, prefix: str):
    """A fresh copy of a serializable model (same architecture, new variables, name ``prefix + name``)."""
    config = model.get_config()
    if isinstance(config, dict) and "name" in config:
        config = {**config, "name": prefix + model.name}
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    twin.trainable = False
    return twin


def momentum_update(target_weights, online_weights, momentum: float) -> None:
    r"""Exponential moving average, in place: :math:`\theta_k \leftarrow m\,\theta_k + (1 - m)\,\theta_q`.

    MoCo's key encoder and BYOL's target network follow their online network this way.

    Args:
        target_weights: list of ``keras.Variable`` (updated in place).
        online_weights: list of tensors/variables of the same shapes, in the same order.
        momentum: :math:`m \in [0, 1]`; 1 freezes the target, 0 copies the online weights.

    Raises:
        ValueError: lists of different lengths or ``momentum`` outside [0, 1].
    """
    if len(target_weights) != len(online_weights):
        raise ValueError(f"{len(target_weights)} target weights but {len(online_weights)} online weights")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    for target, online in zip(target_weights, online_weights):
        target.assign(momentum * target + (1.0 - momentum) * ops.cast(online, target.dtype))


@keras.saving.register_keras_serializable(package="course_lib")
class MoCo(_PrebuiltOptimizerMixin, keras.Model):
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
        augmenter: view generator (default :func:`course_lib.augment.build_augmenter`).
        queue_size: number of negative keys K (>= the batch size).
        momentum: key-encoder momentum :math:`m \in [0, 1)`. MoCo used 0.999 for hundreds of thousands of
            steps; the course's runs have about a hundred, so the key encoder must move faster.
        temperature: InfoNCE temperature.
        seed: seed of the default augmenter and of the queue's random initial keys.

    Raises:
        ValueError: ``queue_size`` < 1, ``momentum`` outside [0, 1) or ``temperature`` <= 0.
    """

    def __init__(self, encoder, projection_head, augmenter=None, queue_size: int = 1024, momentum: float = 0.95,
                 temperature: float = 0.2, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if queue_size < 1 or not 0.0 <= momentum < 1.0 or temperature <= 0:
            raise ValueError(f"need queue_size >= 1, 0 <= momentum < 1, temperature > 0; "
                             f"got {queue_size}, {momentum}, {temperature}")
        self.encoder = encoder
        self.projection_head = projection_head
        self.key_encoder = _twin(encoder, "key_")
        self.key_head = _twin(projection_head, "key_")
        self.augmenter = _augmenter_for(encoder, augmenter, seed)
        self.queue_size, self.momentum, self.temperature, self.seed = int(queue_size), float(momentum), \
            float(temperature), seed
        dim = int(projection_head.output_shape[-1])
        self.queue = self.add_weight(shape=(self.queue_size, dim), name="queue", trainable=False,
                                     initializer=keras.initializers.RandomNormal(seed=seed))
        self.queue_pointer = self.add_weight(shape=(), name="queue_pointer", dtype="int32", trainable=False,
                                             initializer="zeros")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.std_tracker = keras.metrics.Mean(name="std")

    @property
    def metrics(self):
        return [self.loss_tracker, self.std_tracker]

    def call(self, images, training=False):
        return self.encoder(images, training=False)

    def _enqueue(self, keys):
        n = ops.shape(keys)[0]
        rows = ops.mod(self.queue_pointer + ops.arange(n, dtype="int32"), self.queue_size)
        self.queue.assign(ops.scatter_update(self.queue, ops.expand_dims(rows, 1), keys))
        self.queue_pointer.assign(ops.mod(self.queue_pointer + n, self.queue_size))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:  # MoCo updates the key network from the current query network before computing keys
            momentum_update(self.key_encoder.weights, self.encoder.weights, self.momentum)
            momentum_update(self.key_head.weights, self.projection_head.weights, self.momentum)
        view1 = self.augmenter(x, training=True)
        view2 = self.augmenter(x, training=True)
        both = ops.concatenate([view1, view2], axis=0)
        q1, q2 = ops.split(self.projection_head(self.encoder(both, training=training), training=training), 2)
        keys = self.key_head(self.key_encoder(both, training=False), training=False)
        k1, k2 = ops.split(ops.stop_gradient(keys), 2)
        negatives = ops.stop_gradient(self.queue)
        loss = 0.5 * (losses.info_nce_loss(q1, k2, negatives, self.temperature)
                      + losses.info_nce_loss(q2, k1, negatives, self.temperature))
        if training:
            self._enqueue(losses.l2_normalize(k2))
        self.loss_tracker.update_state(loss)
        self.std_tracker.update_state(losses.embedding_std(q1))
        return loss

    def get_config(self):
        return {**super().get_config(), "encoder": _serialize(self.encoder),
                "projection_head": _serialize(self.projection_head), "augmenter": _serialize(self.augmenter),
                "queue_size": self.queue_size, "momentum": self.momentum, "temperature": self.temperature,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "augmenter"):
            config[key] = _deserialize(config[key])
        return cls(**config)


# --------------------------------------------------------------------------------------------
# SimSiam
# --------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="course_lib")
class SimSiam(_PrebuiltOptimizerMixin, keras.Model):
    r"""SimSiam: a Siamese network with a predictor and a stop-gradient, no negatives (Chen & He, CVPR 2021).

    Each step: two independent views, projections :math:`z_1, z_2` (encoder + projection head) and
    predictions :math:`p_i = h(z_i)`; the loss is
    :func:`course_lib.losses.symmetric_stop_gradient_loss`
    :math:`\tfrac12 D(p_1, \mathrm{sg}(z_2)) + \tfrac12 D(p_2, \mathrm{sg}(z_1))` with :math:`D` the negative
    cosine similarity. Without the stop-gradient the same network collapses to a constant; with it, the
    ``std`` metric (:func:`course_lib.losses.embedding_std` of :math:`z`) stays well above 0.

    Args:
        encoder, projection_head: as in :class:`SimCLR`. The paper's projector ends with batch normalisation
            (``build_projection_head(..., output_batch_norm=True)``); in the course's short runs a plain
            projector works as well, and only without that final normalisation does removing the stop-gradient
            show the collapse (standardising every output dimension over the batch also keeps outputs apart).
        predictor: ``(batch, p) -> (batch, p)``, e.g. :func:`build_predictor`.
        augmenter: view generator (default :func:`course_lib.augment.build_augmenter`).
        stop_gradient: keep the stop-gradient (True); False demonstrates the collapse.
        seed: seed of the default augmenter.
    """

    def __init__(self, encoder, projection_head, predictor, augmenter=None, stop_gradient: bool = True,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projection_head = projection_head
        self.predictor = predictor
        self.augmenter = _augmenter_for(encoder, augmenter, seed)
        self.stop_gradient = bool(stop_gradient)
        self.seed = seed
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.std_tracker = keras.metrics.Mean(name="std")

    @property
    def metrics(self):
        return [self.loss_tracker, self.std_tracker]

    def call(self, images, training=False):
        return self.encoder(images, training=False)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view1 = self.augmenter(x, training=True)
        view2 = self.augmenter(x, training=True)
        z = self.projection_head(self.encoder(ops.concatenate([view1, view2], axis=0), training=training),
                                 training=training)
        p1, p2 = ops.split(self.predictor(z, training=training), 2)
        z1, z2 = ops.split(z, 2)
        if self.stop_gradient:
            loss = losses.symmetric_stop_gradient_loss(p1, p2, z1, z2)
        else:  # the ablation: gradients flow into both branches
            cos = lambda p, t: ops.mean(ops.sum(losses.l2_normalize(p) * losses.l2_normalize(t), axis=1))
            loss = -0.5 * (cos(p1, z2) + cos(p2, z1))
        self.loss_tracker.update_state(loss)
        self.std_tracker.update_state(losses.embedding_std(z1))
        return loss

    def get_config(self):
        return {**super().get_config(), "encoder": _serialize(self.encoder),
                "projection_head": _serialize(self.projection_head), "predictor": _serialize(self.predictor),
                "augmenter": _serialize(self.augmenter), "stop_gradient": self.stop_gradient, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "predictor", "augmenter"):
            config[key] = _deserialize(config[key])
        return cls(**config)

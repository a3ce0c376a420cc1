"""A pretext task for Day 08: predicting image rotations (Gidaris, Singh & Komodakis, ICLR 2018).

A *pretext task* manufactures labels from the data itself: rotate every image by 0, 90, 180 and 270
degrees and train a classifier to tell which rotation was applied. To succeed, the network has to know
what an upright digit looks like — which strokes go where — and that knowledge is what we hope the
encoder's representation keeps. No human label is used.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from course_lib.models.base import SelfSupervisedModel

N_ROTATIONS = 4


def rotate90(images, k: int):
    """Rotate square images by ``k`` quarter turns counter-clockwise (``k`` in {0, 1, 2, 3}, a Python int).

    Args:
        images: tensor ``(batch, size, size, channels)``.
        k: number of 90-degree turns.

    Returns:
        Tensor of the same shape; ``rotate90(x, 1)[i, :, :, c]`` equals ``np.rot90(x[i, :, :, c], 1)``.

    Raises:
        ValueError: non-square images.
    """
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"rotation prediction needs square images, got {images.shape[1]}x{images.shape[2]}")
    k = int(k) % 4
    if k == 0:
        return images
    if k == 1:   # transpose then flip rows (np.rot90 convention)
        return ops.flip(ops.transpose(images, (0, 2, 1, 3)), axis=1)
    if k == 2:
        return ops.flip(ops.flip(images, axis=1), axis=2)
    return ops.flip(ops.transpose(images, (0, 2, 1, 3)), axis=2)


def rotation_batch(images):
    """All four rotations of a batch and their labels (the pretext task's "free" labels).

    Args:
        images: float tensor ``(N, size, size, channels)``.

    Returns:
        ``(rotated, labels)``: tensor ``(4N, size, size, channels)`` of ``images``' dtype (the N images rotated
        by 0 degrees, then by 90, 180 and 270) and int32 ``(4N,)`` labels ``[0]*N + [1]*N + [2]*N + [3]*N``.

    Raises:
        ValueError: non-square images (see :func:`rotate90`).
    """
    n = ops.shape(images)[0]
    rotated = ops.concatenate([rotate90(images, k) for k in range(N_ROTATIONS)], axis=0)
    labels = ops.repeat(ops.arange(N_ROTATIONS, dtype="int32"), n)
    return rotated, labels


@keras.saving.register_keras_serializable(package="course_lib")
class RotationPrediction(SelfSupervisedModel):
    """Rotation prediction (Gidaris, Singh & Komodakis, ICLR 2018): encoder + 4-way classifier on rotated images.

    ``fit(x_unlabeled)``: every batch is (optionally) augmented, expanded to its four rotations
    (:func:`rotation_batch`) and the classifier ``Dense(4)`` on top of the encoder is trained with
    cross-entropy against the rotation index. Metrics: ``loss`` (nats) and ``accuracy`` (rotation accuracy;
    chance = 0.25). ``call(images)`` returns the encoder's representation in inference mode.

    Args:
        encoder: ``(batch, s, s, c) -> (batch, d)`` for square images, e.g.
            :func:`course_lib.models.encoders.build_encoder`.
        augmenter: optional layer applied with ``training=True`` before rotating (small translations and
            noise make the task harder to solve from pixel-level shortcuts); None for plain images.
        hidden_dim: width of the classifier's hidden layer (0 for a linear classifier).
    """

    METRICS = ("loss", "accuracy")

    def __init__(self, encoder, augmenter=None, hidden_dim: int = 0, seed: int = 0, **kwargs):
        super().__init__(encoder, augmenter, seed=seed, **kwargs)
        self.hidden_dim = int(hidden_dim)
        head = [keras.Input(shape=(int(encoder.output_shape[-1]),))]
        if self.hidden_dim:
            head.append(layers.Dense(self.hidden_dim, activation="relu"))
        head.append(layers.Dense(N_ROTATIONS, name="rotation_logits"))
        self.rotation_head = keras.Sequential(head, name="rotation_head")

    def rotation_logits(self, images, training=False):
        """Logits ``(batch, 4)`` of the rotation classifier."""
        return self.rotation_head(self.encoder(images, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.augmenter is not None:
            x = self.augmenter(x, training=True)
        rotated, labels = rotation_batch(x)
        logits = self.rotation_logits(rotated, training=training)
        loss = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        self.track(loss=loss, accuracy=ops.mean(ops.cast(ops.argmax(logits, axis=1) == labels, "float32")))
        return loss

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim}

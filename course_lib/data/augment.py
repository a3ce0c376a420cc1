"""Image augmentations for self-supervised learning on small grayscale images (8x8 digits, 28x28 MNIST-like).

Contrastive and non-contrastive methods (Days 07-08) learn by making the representation of an image
invariant to a family of random transformations: two **independent** random views of every image in
every training step (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020). For handwritten digits the useful transformations are small
geometric ones (translation by about one pixel of an 8x8 image, a few degrees of rotation, a little zoom),
additive pixel noise and erasing a small patch. Flips are *not* used: a mirrored 2 is not a 2.

The pipeline is a ``keras.Sequential`` of Keras 3 preprocessing layers (``RandomZoom``, ``RandomRotation``,
``RandomTranslation``, ``GaussianNoise``) plus two small layers of ours, :class:`RandomPatchErasing` (Keras'
``RandomErasing`` draws patch sizes meant for photographs) and :class:`ClipValues`;
each layer owns its ``keras.random.SeedGenerator``, so calling the pipeline twice with
``training=True`` gives two independent views, and a fixed seed reproduces the whole sequence.

:func:`add_noise` is the other kind of corruption of the course: a seeded NumPy corruption (Gaussian or
masking noise) that builds the fixed noisy test set of the denoising autoencoder (Day 04).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

#: Default augmentation strengths (see :func:`build_augmenter`), tuned on the digits.
DEFAULT_STRENGTHS = {"translate": 0.125, "rotate": 10.0, "zoom": 0.1, "noise": 0.1, "erase": 0.25}


@keras.saving.register_keras_serializable(package="course_lib")
class ClipValues(layers.Layer):
    """Clip values to ``[low, high]`` (after additive noise, images stay valid intensities).

    Input and output: float tensor of any shape; no weights.
    """

    def __init__(self, low: float = 0.0, high: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)

    def call(self, inputs):
        return ops.clip(inputs, self.low, self.high)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package="course_lib")
class RandomPatchErasing(layers.Layer):
    """Erase one random square patch per image with probability ``rate`` (Zhong et al.'s random erasing idea).

    Keras' ``RandomErasing`` samples patch areas for large photographs; on an 8x8 image we want a
    patch of a fixed, small side. The side is ``round(size * min(height, width))`` pixels (at least 1),
    its position uniform, its content set to ``fill_value``. Only active with ``training=True``.

    Args:
        rate: probability that an image gets a patch, in [0, 1].
        size: patch side as a fraction of the image side, in (0, 1].
        fill_value: value written into the patch (0 = background for the course's images).
        seed: integer seed of the layer's ``keras.random.SeedGenerator``.

    Input and output: float ``(batch, height, width, channels)``.
    """

    def __init__(self, rate: float = 0.5, size: float = 0.25, fill_value: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 1.0 or not 0.0 < size <= 1.0:
            raise ValueError(f"need 0 <= rate <= 1 and 0 < size <= 1, got rate={rate}, size={size}")
        self.rate, self.size, self.fill_value, self.seed = float(rate), float(size), float(fill_value), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.rate == 0.0:
            return images
        shape = ops.shape(images)
        batch, height, width = shape[0], images.shape[1], images.shape[2]
        side = max(1, int(round(self.size * min(height, width))))
        top = keras.random.randint((batch, 1, 1, 1), 0, height - side + 1, seed=self.seed_generator)
        left = keras.random.randint((batch, 1, 1, 1), 0, width - side + 1, seed=self.seed_generator)
        apply = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.rate
        rows = ops.reshape(ops.arange(height), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width), (1, 1, width, 1))
        inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side) & apply
        return ops.where(inside, ops.cast(self.fill_value, images.dtype), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "size": self.size, "fill_value": self.fill_value,
                "seed": self.seed}


def build_augmenter(image_shape=(8, 8, 1), translate: float = DEFAULT_STRENGTHS["translate"],
                    rotate: float = DEFAULT_STRENGTHS["rotate"], zoom: float = DEFAULT_STRENGTHS["zoom"],
                    noise: float = DEFAULT_STRENGTHS["noise"], erase: float = DEFAULT_STRENGTHS["erase"],
                    seed: int = 0, name: str = "augmenter") -> keras.Sequential:
    """The course's augmentation pipeline, a ``keras.Sequential`` of preprocessing layers.

    Order: ``RandomZoom`` -> ``RandomRotation`` -> ``RandomTranslation`` (bilinear, zero fill: the
    background of the course's images is 0) -> ``GaussianNoise`` -> :class:`RandomPatchErasing` ->
    :class:`ClipValues` to [0, 1]. A strength of 0 leaves that layer out. Every random layer is active
    only when called with ``training=True``; call the pipeline twice to get two independent views.

    Args:
        image_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``.
        translate: maximal shift as a fraction of the image side (0.125 = 1 pixel of 8, 3.5 of 28).
        rotate: maximal rotation in degrees (uniform in ``[-rotate, rotate]``).
        zoom: maximal relative zoom in or out (uniform in ``[-zoom, zoom]``).
        noise: standard deviation of additive Gaussian pixel noise (images are in [0, 1]).
        erase: probability of erasing one square patch of a quarter of the image side.
        seed: base seed; layer ``i`` gets ``seed + i`` so the layers draw independent numbers.
        name: model name.

    Returns:
        A ``keras.Sequential`` mapping float32 ``(batch, *image_shape)`` in [0, 1] to the same shape.

    Raises:
        ValueError: a negative strength, or ``erase`` > 1.
    """
    strengths = {"translate": translate, "rotate": rotate, "zoom": zoom, "noise": noise, "erase": erase}
    if any(v < 0 for v in strengths.values()) or erase > 1:
        raise ValueError(f"augmentation strengths must be >= 0 (erase <= 1), got {strengths}")
    stack = [keras.Input(shape=tuple(image_shape))]
    if zoom > 0:
        stack.append(layers.RandomZoom((-zoom, zoom), fill_mode="constant", seed=seed + 1))
    if rotate > 0:
        stack.append(layers.RandomRotation(rotate / 360.0, fill_mode="constant", seed=seed + 2))
    if translate > 0:
        stack.append(layers.RandomTranslation((-translate, translate), (-translate, translate), fill_mode="constant",
                                              seed=seed + 3))
    if noise > 0:
        stack.append(layers.GaussianNoise(noise, seed=seed + 4))
    if erase > 0:
        stack.append(RandomPatchErasing(rate=erase, size=0.25, seed=seed + 5))
    stack.append(ClipValues(0.0, 1.0))
    return allow_jit_on_jax(keras.Sequential(stack, name=name))


#: Keras layers that declare ``supports_jit = False`` for TensorFlow's sake but compile under ``jax.jit``.
JAX_JIT_COMPATIBLE = (layers.RandomZoom, layers.RandomRotation, layers.RandomTranslation)


def allow_jit_on_jax(augmenter):
    """Mark the Keras geometric layers inside ``augmenter`` as jit-compatible when the backend is JAX.

    Why: ``RandomZoom``, ``RandomRotation`` and ``RandomTranslation`` set ``supports_jit = False`` because
    TensorFlow's XLA cannot compile their ``ImageProjectiveTransformV3`` kernel. Keras then resolves
    ``jit_compile="auto"`` to False (and refuses True) for every model that contains one, on every backend. On
    TensorFlow that still means a compiled ``tf.function`` graph; on JAX it means a training step run op by op
    from Python, without ``jax.jit``: SimCLR trained about 6 times slower on JAX than on TensorFlow. On JAX these
    layers are plain ``jax.numpy`` code, which ``jax.jit`` compiles. Other backends are left as Keras made them.

    Called by :func:`build_augmenter` and by the models that take an augmenter (a pipeline a student builds,
    a model loaded from a ``.keras`` file), so every model holding one gets ``jit_compile`` on JAX.

    Args:
        augmenter: a layer or model (searched recursively through ``.layers``), or None.

    Returns:
        ``augmenter`` itself, changed in place on the JAX backend.
    """
    if augmenter is None or keras.backend.backend() != "jax":
        return augmenter
    pending = [augmenter]
    while pending:
        layer = pending.pop()
        if isinstance(layer, JAX_JIT_COMPATIBLE):
            layer.supports_jit = True
        pending.extend(getattr(layer, "layers", ()))
    return augmenter


def two_views(augmenter, images):
    """Two independent augmented views of every image: ``(augmenter(x, training=True), augmenter(x, training=True))``.

    Args:
        augmenter: a callable layer/model such as :func:`build_augmenter`'s result.
        images: float tensor ``(batch, height, width, channels)``.

    Returns:
        A pair of tensors of the same shape as ``images``; view ``i`` of both members comes from image ``i``.
    """
    return augmenter(images, training=True), augmenter(images, training=True)


def add_noise(x, kind: str = "gaussian", level: float = 0.3, seed: int = 0) -> np.ndarray:
    """A corrupted copy of images in [0, 1] (the input is not modified).

    Args:
        x: array ``(n, ...)`` of pixel values in [0, 1].
        kind: ``"gaussian"``: add :math:`\\mathcal N(0, \\text{level}^2)` to every pixel and clip to [0, 1];
            ``"masking"``: set every pixel to 0 independently with probability ``level``.
        level: noise standard deviation (pixel units) or masking probability.
        seed: seed of the ``numpy.random.default_rng`` drawing the noise (same seed, same noise).

    Returns:
        float32 array, same shape as ``x``, values in [0, 1].

    Raises:
        ValueError: unknown ``kind``, negative ``level`` or a masking probability >= 1.
    """
    x = np.asarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        if level < 0:
            raise ValueError(f"level must be >= 0, got {level!r}")
        return np.clip(x + level * rng.standard_normal(x.shape).astype(np.float32), 0.0, 1.0)
    if kind == "masking":
        if not 0 <= level < 1:
            raise ValueError(f"a masking probability must be in [0, 1), got {level!r}")
        return np.where(rng.random(x.shape) < level, np.float32(0.0), x).astype(np.float32)
    raise ValueError(f"kind must be 'gaussian' or 'masking', got {kind!r}")

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
:func:`gaussian_noise` is the same Gaussian corruption written with ``keras.random`` and ``keras.ops``, for use
inside a compiled training step (the denoising autoencoder draws fresh noise with it at every step).
"""

from __future__ import annotations

import math

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
    """Erase one random square patch per image with probability ``rate`` (a simplified random erasing).

    Random erasing: Zhong, Zheng, Kang, Li & Yang, "Random Erasing Data Augmentation", AAAI 2020. They draw
    the patch's area and aspect ratio at random and fill it with random values; Keras' ``RandomErasing``
    likewise samples patch areas meant for large photographs. On an 8x8 image we want a square patch of a
    fixed, small side instead. The side is ``round(size * min(height, width))`` pixels (at least 1), its
    position uniform, its content set to ``fill_value``. Only active with ``training=True``.

    Args:
        rate: probability that an image gets a patch, in [0, 1].
        size: patch side as a fraction of the image side, in (0, 1].
        fill_value: value written into the patch (0 = background for the course's images).
        seed: integer seed of the layer's ``keras.random.SeedGenerator``.

    Input and output: float ``(batch, height, width, channels)`` (channels last), same dtype.

    Raises:
        ValueError: ``rate`` outside [0, 1] or ``size`` outside (0, 1].
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


@keras.saving.register_keras_serializable(package="course_lib")
class RandomAffine(layers.Layer):
    r"""A random affine warp per image, resampled once (bilinear, zero fill), active only with ``training=True``.

    For every image, independently: a rotation angle uniform in ``[-rotate, rotate]`` degrees, a zoom factor
    :math:`s = e^{u}` with :math:`u` uniform in ``[log(1 - zoom_out), log(1 + zoom_in)]`` (s > 1 enlarges the
    digit, i.e. crops into it), an aspect-ratio change :math:`e^{v}`, :math:`v` uniform in ``[-aspect, aspect]``
    (x scale :math:`s e^{v/2}`, y scale :math:`s e^{-v/2}`), a shear angle uniform in ``[-shear, shear]`` degrees
    and a translation uniform in ``[-translate, translate]`` times the image side in each direction. The
    composed map :math:`x_{out} = c + t + A (x_{in} - c)` about the image centre :math:`c` is inverted in closed
    form and applied with ``keras.ops.image.affine_transform``: one interpolation instead of one per Keras
    preprocessing layer, which costs less and blurs 28x28 strokes less. It is the small-image counterpart of
    SimCLR's random resized crop (Chen et al., ICML 2020).

    Args:
        rotate: maximal rotation in degrees (>= 0).
        zoom_in: maximal relative enlargement (>= 0), e.g. 0.25 = up to 1.25x.
        zoom_out: maximal relative shrinking, in [0, 1).
        aspect: maximal log aspect-ratio change (>= 0).
        shear: maximal shear angle in degrees (>= 0).
        translate: maximal shift as a fraction of the image side (>= 0), 0.1 = 2.8 pixels of 28.
        seed: integer seed of the layer's ``keras.random.SeedGenerator``.

    Input and output: float32 ``(batch, height, width, channels)`` (channels last).

    Raises:
        ValueError: a negative strength or ``zoom_out`` >= 1.
    """

    def __init__(self, rotate: float = 12.0, zoom_in: float = 0.25, zoom_out: float = 0.1, aspect: float = 0.2,
                 shear: float = 10.0, translate: float = 0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        values = {"rotate": rotate, "zoom_in": zoom_in, "zoom_out": zoom_out, "aspect": aspect, "shear": shear,
                  "translate": translate}
        if any(v < 0 for v in values.values()) or zoom_out >= 1:
            raise ValueError(f"strengths must be >= 0 and zoom_out < 1, got {values}")
        self.rotate, self.zoom_in, self.zoom_out = float(rotate), float(zoom_in), float(zoom_out)
        self.aspect, self.shear, self.translate = float(aspect), float(shear), float(translate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # TensorFlow's XLA cannot compile the projective-transform kernel behind affine_transform (the reason
        # Keras' RandomRotation & co. declare supports_jit=False); JAX and PyTorch run it as ordinary ops.
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def _uniform(self, batch, low, high):
        return keras.random.uniform((batch,), minval=low, maxval=high, seed=self.seed_generator)

    def transforms(self, batch, height: int, width: int):
        """Random inverse maps, float32 ``(batch, 8)`` in the format of ``keras.ops.image.affine_transform``."""
        deg = math.pi / 180.0
        theta = self._uniform(batch, -self.rotate * deg, self.rotate * deg)
        log_s = self._uniform(batch, math.log(1.0 - self.zoom_out), math.log(1.0 + self.zoom_in))
        v = self._uniform(batch, -self.aspect, self.aspect)
        shear = self._uniform(batch, -self.shear * deg, self.shear * deg)
        tx = self._uniform(batch, -self.translate, self.translate) * width
        ty = self._uniform(batch, -self.translate, self.translate) * height
        sx, sy = ops.exp(log_s + 0.5 * v), ops.exp(log_s - 0.5 * v)
        cos, sin, tan = ops.cos(theta), ops.sin(theta), ops.tan(shear)
        # forward map A = R(theta) @ Shear @ diag(sx, sy), acting on (x, y) = (column, row)
        m00, m01 = cos * sx, (cos * tan - sin) * sy
        m10, m11 = sin * sx, (sin * tan + cos) * sy
        det = m00 * m11 - m01 * m10
        i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        ox, oy = cx + tx, cy + ty                     # x_in = c + A^-1 (x_out - c - t)
        a2 = cx - i00 * ox - i01 * oy
        b2 = cy - i10 * ox - i11 * oy
        zeros = ops.zeros_like(theta)
        return ops.stack([i00, i01, a2, i10, i11, b2, zeros, zeros], axis=1)

    def call(self, images, training=None):
        if not training:
            return images
        transform = self.transforms(ops.shape(images)[0], images.shape[1], images.shape[2])
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                          fill_value=0, data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotate": self.rotate, "zoom_in": self.zoom_in, "zoom_out": self.zoom_out,
                "aspect": self.aspect, "shear": self.shear, "translate": self.translate, "seed": self.seed}


#: Augmentation strengths of :func:`build_augmenter28` (tuned on mnist5k, 28x28 digits, quick mode).
AUGMENT28_DEFAULTS = {"rotate": 12.0, "zoom_in": 0.25, "zoom_out": 0.1, "aspect": 0.2, "shear": 10.0,
                      "translate": 0.1, "noise": 0.1, "erase": 0.3, "erase_size": 0.3}


def build_augmenter28(image_shape=(28, 28, 1), rotate: float = AUGMENT28_DEFAULTS["rotate"],
                      zoom_in: float = AUGMENT28_DEFAULTS["zoom_in"], zoom_out: float = AUGMENT28_DEFAULTS["zoom_out"],
                      aspect: float = AUGMENT28_DEFAULTS["aspect"], shear: float = AUGMENT28_DEFAULTS["shear"],
                      translate: float = AUGMENT28_DEFAULTS["translate"], noise: float = AUGMENT28_DEFAULTS["noise"],
                      erase: float = AUGMENT28_DEFAULTS["erase"], erase_size: float = AUGMENT28_DEFAULTS["erase_size"],
                      seed: int = 0, name: str = "augmenter") -> keras.Sequential:
    """View generator for 28x28 digits: :class:`RandomAffine` -> ``GaussianNoise`` -> patch erasing -> clip.

    The 28x28 counterpart of :func:`build_augmenter` (Days 07, 08 and 10 on mnist5k / MNIST). A strength of 0
    leaves that stage out (all geometric strengths 0 leave :class:`RandomAffine` out).

    Args:
        image_shape: ``(height, width, channels)``.
        rotate, zoom_in, zoom_out, aspect, shear, translate: see :class:`RandomAffine`.
        noise: standard deviation of additive Gaussian noise (images in [0, 1]).
        erase: probability of erasing one square patch (:class:`RandomPatchErasing`).
        erase_size: side of that patch as a fraction of the image side.
        seed: base seed; each random stage gets its own offset.
        name: model name.

    Returns:
        A ``keras.Sequential`` mapping float32 ``(batch, *image_shape)`` in [0, 1] to the same shape; identity
        unless called with ``training=True``.

    Raises:
        ValueError: a negative strength, ``zoom_out`` >= 1 or ``erase`` > 1.
    """
    if noise < 0 or not 0 <= erase <= 1:
        raise ValueError(f"need noise >= 0 and 0 <= erase <= 1, got {noise}, {erase}")
    stack = [keras.Input(shape=tuple(image_shape))]
    if any(v > 0 for v in (rotate, zoom_in, zoom_out, aspect, shear, translate)):
        stack.append(RandomAffine(rotate, zoom_in, zoom_out, aspect, shear, translate, seed=seed + 1))
    if noise > 0:
        stack.append(layers.GaussianNoise(noise, seed=seed + 4))
    if erase > 0:
        stack.append(RandomPatchErasing(rate=erase, size=erase_size, seed=seed + 5))
    stack.append(ClipValues(0.0, 1.0))
    return allow_jit_on_jax(keras.Sequential(stack, name=name))


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


def gaussian_noise(x, std: float, seed=None):
    """Images plus Gaussian noise, clipped to [0, 1], as backend tensors (usable inside a training step).

    :math:`\\tilde x = \\operatorname{clip}(x + \\sigma \\varepsilon, 0, 1)`, :math:`\\varepsilon \\sim \\mathcal N(0, I)`
    drawn with ``keras.random.normal``: the Gaussian corruption of the denoising autoencoder (Vincent,
    Larochelle, Bengio & Manzagol, ICML 2008), the backend-agnostic counterpart of :func:`add_noise`.

    Args:
        x: float tensor or array ``(n, ...)`` of pixel values in [0, 1].
        std: noise standard deviation :math:`\\sigma` in pixel units (>= 0).
        seed: a ``keras.random.SeedGenerator`` (a new draw at every call: what a layer or model stores), an int
            (the same draw every time) or None (the global seed generator; not inside a traced JAX function).

    Returns:
        float tensor of ``x``'s shape and dtype (float32 for an integer or float64 array), values in [0, 1].

    Raises:
        ValueError: a negative ``std``.
    """
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) not in ("float16", "bfloat16", "float32"):
        x = ops.cast(x, "float32")
    noise = keras.random.normal(ops.shape(x), stddev=std, dtype=x.dtype, seed=seed)
    return ops.clip(x + noise, 0.0, 1.0)

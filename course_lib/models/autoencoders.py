"""Autoencoders (Day 04): dense, convolutional, linear and denoising, each with its encoder and decoder.

An autoencoder is two networks trained together to copy their input through a bottleneck:
an **encoder** :math:`f` maps an image :math:`x` to a code :math:`z = f(x)` of ``latent_dim`` numbers and a
**decoder** :math:`g` maps the code back to an image :math:`\\hat x = g(z)`. Training minimises a
reconstruction loss, e.g. :math:`\\frac1n\\sum_i \\lVert x_i - g(f(x_i)) \\rVert^2`, with ``fit(x, x)``: the
targets are the inputs themselves, so no labels are needed (Hinton & Salakhutdinov, "Reducing the
Dimensionality of Data with Neural Networks", Science 2006).

- :class:`Autoencoder`: a ``keras.Model`` holding an ``encoder`` and a ``decoder`` sub-model; ``call`` is
  ``decoder(encoder(x))`` — one connected graph, so ``fit(x, x)`` trains both.
- :func:`build_dense_autoencoder`: ``Flatten`` + ``Dense`` layers (also the linear autoencoder with
  ``hidden=()`` and linear activations, which learns the same subspace as PCA).
- :func:`build_conv_autoencoder`: strided convolutions down, transposed convolutions up.
- :class:`DenoisingAutoencoder` / :func:`build_denoising_autoencoder`: corrupts its input during training
  only (Gaussian or masking noise drawn with ``keras.random`` and a stored ``SeedGenerator``, or any noise
  function with the signature of :func:`course_lib.data.augment.gaussian_noise`) and learns to output the clean
  image (Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust Features with Denoising
  Autoencoders", ICML 2008).
- :func:`fit_autoencoder`: compile (Adam with a cosine-decayed learning rate, a per-pixel loss) and
  ``fit(x, x)``; :func:`code_size_study`: autoencoder against PCA at several code sizes.

All classes are registered serializable (package ``course_lib``) and survive a ``.keras`` save / load.
The code is backend-agnostic Keras 3 (``keras.ops``, ``keras.random``).
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

from course_lib.backends import steps_per_execution
from course_lib.models.base import SubmodelConfig
from course_lib.training import predict_batched

NOISE_KINDS = ("gaussian", "masking")


def _check_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels) with positive sizes, got {input_shape!r}")
    return shape


def _check_latent(latent_dim) -> int:
    if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    return int(latent_dim)


def _last_dim(model, attribute: str) -> int | None:
    """Last dimension of a built model's (first) input or output shape; None when Keras cannot tell yet."""
    try:
        shape = getattr(model, attribute)
    except (AttributeError, ValueError):  # e.g. an unbuilt subclassed model
        return None
    if isinstance(shape, list):
        shape = shape[0]
    return None if shape[-1] is None else int(shape[-1])


@keras.saving.register_keras_serializable(package="course_lib")
class Autoencoder(SubmodelConfig, keras.Model):
    """An encoder followed by a decoder, trained to reconstruct its input.

    Args:
        encoder: a ``keras.Model`` mapping images ``(batch, h, w, c)`` to codes ``(batch, latent_dim)``.
        decoder: a ``keras.Model`` mapping codes ``(batch, latent_dim)`` to images ``(batch, h, w, c)``.
        **kwargs: passed to ``keras.Model`` (``name``, ...).

    Attributes:
        encoder, decoder: the two sub-models (they share their weights with this model).
        latent_dim: size of the code (None if neither sub-model's shapes are known yet).

    ``call(x)`` returns ``decoder(encoder(x))``. Compile with a reconstruction loss (e.g. ``"mse"``) and train
    with ``fit(x, x)``. :meth:`encode`, :meth:`decode` and :meth:`reconstruct` run on NumPy arrays in batches.

    Raises:
        ValueError: the encoder's code size differs from the decoder's input size.
    """

    SUBMODELS = ("encoder", "decoder")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        code, expected = _last_dim(encoder, "output_shape"), _last_dim(decoder, "input_shape")
        if code is not None and expected is not None and code != expected:
            raise ValueError(f"the encoder outputs codes of size {code} but the decoder expects {expected}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = code if code is not None else expected

    def call(self, inputs, training=False):
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def encode(self, x, batch_size: int = 1024) -> np.ndarray:
        """Codes of images ``x`` ``(n, h, w, c)``: float32 ``(n, latent_dim)``."""
        return predict_batched(self.encoder, x, batch_size)

    def decode(self, z, batch_size: int = 1024) -> np.ndarray:
        """Images decoded from codes ``z`` ``(n, latent_dim)``: float32 ``(n, h, w, c)``."""
        return predict_batched(self.decoder, z, batch_size)

    def reconstruct(self, x, batch_size: int = 1024) -> np.ndarray:
        """``decoder(encoder(x))`` in inference mode (no noise): float32, same shape as ``x``."""
        return self.decode(self.encode(x, batch_size), batch_size)


@keras.saving.register_keras_serializable(package="course_lib")
class DenoisingAutoencoder(Autoencoder):
    """An :class:`Autoencoder` that corrupts its input during training and learns to undo the corruption.

    With ``fit(x, x)`` the model sees a freshly corrupted :math:`\\tilde x` at every step and is penalised
    against the clean :math:`x` (Vincent, Larochelle, Bengio & Manzagol, ICML 2008). In inference mode
    (``training=False``: ``predict``, ``evaluate``, :meth:`reconstruct`) no noise is added, so pass the noisy
    images themselves to denoise them.

    Args:
        encoder, decoder: as for :class:`Autoencoder`.
        noise: ``"gaussian"`` (add :math:`\\mathcal N(0, \\sigma^2)` per pixel, then clip to [0, 1]) or
            ``"masking"`` (set each pixel to 0 with probability ``noise_level``).
        noise_level: :math:`\\sigma` for Gaussian noise (in pixel units, images in [0, 1]), the drop
            probability for masking noise. Must be in [0, 1) for masking, >= 0 for Gaussian.
        seed: int seed of the ``keras.random.SeedGenerator`` that draws the noise (None: from the global seed).
        noise_fn: optional corruption ``noise_fn(x, noise_level, seed_generator) -> x_tilde`` written with
            ``keras.ops`` / ``keras.random`` (it runs inside the compiled training step), used instead of the
            built-in ``noise``, e.g. :func:`course_lib.data.augment.gaussian_noise` or a student's version of it.
            A function is not saved with the model: after a ``.keras`` round-trip the model corrupts with the
            built-in kind ``noise`` (inference never corrupts, so loaded predictions do not change).

    Raises:
        ValueError: unknown ``noise``, a ``noise_level`` outside its range, or a ``noise_fn`` that is not callable.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, noise: str = "gaussian",
                 noise_level: float = 0.3, seed: int | None = None, noise_fn=None, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if noise_fn is not None and not callable(noise_fn):
            raise ValueError(f"noise_fn must be callable, got {noise_fn!r}")
        self.noise_fn = noise_fn
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
        if noise_level < 0 or (noise == "masking" and noise_level >= 1):
            raise ValueError(f"noise_level must be >= 0 (and < 1 for masking noise), got {noise_level!r}")
        self.noise = noise
        self.noise_level = float(noise_level)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def corrupt(self, inputs):
        """A corrupted copy of ``inputs`` (a backend tensor, same shape), drawn with the model's seed generator.

        Args:
            inputs: images ``(batch, h, w, c)`` in [0, 1] (array or tensor), cast to the model's compute dtype.

        Returns:
            A tensor of ``inputs``' shape in the compute dtype (float32 by default): Gaussian noise clipped to
            [0, 1], or pixels set to 0 with probability ``noise_level`` (masking), or ``noise_fn``'s result.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if self.noise_fn is not None:
            return self.noise_fn(inputs, self.noise_level, self.seed_generator)
        if self.noise == "gaussian":
            noisy = inputs + self.noise_level * keras.random.normal(ops.shape(inputs), seed=self.seed_generator,
                                                                    dtype=inputs.dtype)
            return ops.clip(noisy, 0.0, 1.0)
        keep = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator, dtype=inputs.dtype) >= self.noise_level
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def call(self, inputs, training=False):
        if training:
            inputs = self.corrupt(inputs)
        return super().call(inputs, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"noise": self.noise, "noise_level": self.noise_level, "seed": self.seed})
        return config


def build_dense_encoder(input_shape, latent_dim: int, hidden: Sequence[int] = (128,), activation: str | None = "relu",
                        name: str = "encoder") -> keras.Model:
    """Functional encoder ``Flatten -> Dense(h, activation) for h in hidden -> Dense(latent_dim)``.

    The last layer (named ``"code"``) is linear, so codes are unbounded real vectors.

    Args:
        input_shape: ``(height, width, channels)`` of one image.
        latent_dim: size of the code (>= 1).
        hidden: widths of the hidden layers.
        activation: activation of the hidden layers (None: linear).
        name: model name.

    Returns:
        ``keras.Model`` mapping float32 ``(batch, *input_shape)`` to float32 ``(batch, latent_dim)``.

    Raises:
        ValueError: ``input_shape`` is not three positive sizes, or ``latent_dim`` is not a positive integer.
    """
    input_shape, latent_dim = _check_shape(input_shape), _check_latent(latent_dim)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten()(inputs)  # Dense acts on the last axis only: flatten first
    for i, units in enumerate(hidden):
        x = layers.Dense(int(units), activation=activation, name=f"enc_dense_{i}")(x)
    code = layers.Dense(latent_dim, name="code")(x)
    return keras.Model(inputs, code, name=name)


def build_dense_decoder(latent_dim: int, output_shape, hidden: Sequence[int] = (128,), activation: str | None = "relu",
                        output_activation: str | None = "sigmoid", name: str = "decoder") -> keras.Model:
    """Functional decoder ``Dense(h) for h in reversed(hidden) -> Dense(h*w*c, output_activation) -> Reshape``.

    Args:
        latent_dim: size of the code (>= 1).
        output_shape: ``(height, width, channels)`` of one image.
        hidden: widths of the encoder's hidden layers (used here in reverse order).
        activation: activation of the hidden layers (None: linear).
        output_activation: activation of the pixel layer (``"sigmoid"``; None: linear).
        name: model name.

    Returns:
        ``keras.Model`` mapping float32 ``(batch, latent_dim)`` to float32 ``(batch, *output_shape)``
        (values in (0, 1) with the default sigmoid output).

    Raises:
        ValueError: ``output_shape`` is not three positive sizes, or ``latent_dim`` is not a positive integer.
    """
    output_shape, latent_dim = _check_shape(output_shape), _check_latent(latent_dim)
    codes = keras.Input(shape=(latent_dim,), name="code")
    x = codes
    for i, units in enumerate(reversed(tuple(hidden))):
        x = layers.Dense(int(units), activation=activation, name=f"dec_dense_{i}")(x)
    x = layers.Dense(math.prod(output_shape), activation=output_activation, name="pixels")(x)
    outputs = layers.Reshape(output_shape, name="image")(x)
    return keras.Model(codes, outputs, name=name)


def build_dense_autoencoder(input_shape, latent_dim: int, hidden: Sequence[int] = (128,),
                            activation: str | None = "relu", output_activation: str | None = "sigmoid",
                            name: str = "dense_autoencoder") -> Autoencoder:
    """A fully connected :class:`Autoencoder` with ``.encoder`` and ``.decoder``.

    Encoder: ``Flatten -> Dense(h, activation)... -> Dense(latent_dim)`` (linear code layer).
    Decoder: the mirror image, ending in ``Dense(h*w*c, output_activation) -> Reshape(input_shape)``.
    With ``hidden=()``, ``activation=None`` and ``output_activation=None`` it is a **linear** autoencoder,
    whose optimum under the squared error spans the same subspace as the first ``latent_dim`` principal
    components (Baldi & Hornik, Neural Networks, 1989).

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``.
        latent_dim: size of the code (>= 1).
        hidden: widths of the hidden layers of the encoder (the decoder uses them reversed).
        activation: activation of the hidden layers.
        output_activation: ``"sigmoid"`` for images in [0, 1] (default), None for a linear output.
        name: model name.

    Returns:
        An uncompiled :class:`Autoencoder`; ``model.encoder`` maps float32 ``(batch, *input_shape)`` to
        ``(batch, latent_dim)`` codes, ``model.decoder`` maps codes back to ``(batch, *input_shape)``.
        Compile it (e.g. ``model.compile("adam", "mse")``) and train with ``model.fit(x, x)``.

    Raises:
        ValueError: a malformed ``input_shape`` or ``latent_dim`` < 1.
    """
    encoder = build_dense_encoder(input_shape, latent_dim, hidden, activation)
    decoder = build_dense_decoder(latent_dim, input_shape, hidden, activation, output_activation)
    return Autoencoder(encoder, decoder, name=name)


def build_linear_autoencoder(input_shape, latent_dim: int, name: str = "linear_autoencoder") -> Autoencoder:
    """:func:`build_dense_autoencoder` with no hidden layer and no nonlinearity: ``x -> W2 (W1 x + b1) + b2``.

    Its optimum under the squared error spans the principal subspace (Baldi & Hornik, Neural Networks, 1989).

    Args:
        input_shape: ``(height, width, channels)`` of one image.
        latent_dim: size of the code (>= 1).
        name: model name.

    Returns:
        An uncompiled :class:`Autoencoder` mapping float32 ``(batch, *input_shape)`` to unbounded float32
        reconstructions of the same shape, through ``(batch, latent_dim)`` codes.

    Raises:
        ValueError: ``input_shape`` is not three positive sizes, or ``latent_dim`` is not a positive integer.
    """
    return build_dense_autoencoder(input_shape, latent_dim, hidden=(), activation=None, output_activation=None,
                                   name=name)


def build_conv_autoencoder(input_shape, latent_dim: int, filters: Sequence[int] = (16, 32),
                           activation: str = "relu", output_activation: str | None = "sigmoid",
                           name: str = "conv_autoencoder") -> Autoencoder:
    """A convolutional :class:`Autoencoder` with ``.encoder`` and ``.decoder``.

    Encoder: one ``Conv2D(f, 3, strides=2, padding="same")`` per entry of ``filters`` (each halves height and
    width), ``Flatten``, ``Dense(latent_dim)``. Decoder: ``Dense`` to the smallest feature map, ``Reshape``,
    one ``Conv2DTranspose(f, 3, strides=2)`` per entry of ``filters`` in reverse (each doubles height and
    width), then ``Conv2D(channels, 3, output_activation)``. With two stages: 8x8 -> 2x2 and 28x28 -> 7x7.

    Args:
        input_shape: ``(height, width, channels)``; height and width must be divisible by ``2 ** len(filters)``.
        latent_dim: size of the code (>= 1).
        filters: channels of each down-sampling stage.
        activation: activation of the convolutions.
        output_activation: ``"sigmoid"`` (default) for images in [0, 1].
        name: model name.

    Returns:
        An uncompiled :class:`Autoencoder` (float32 ``(batch, *input_shape)`` in and out).

    Raises:
        ValueError: a malformed shape, empty ``filters``, or a size not divisible by ``2 ** len(filters)``.
    """
    input_shape, latent_dim = _check_shape(input_shape), _check_latent(latent_dim)
    filters = tuple(int(f) for f in filters)
    height, width, channels = input_shape
    factor = 2 ** len(filters)
    if not filters or height % factor or width % factor:
        raise ValueError(f"height and width ({height}, {width}) must be divisible by 2 ** len(filters) = {factor} "
                         "(use fewer stages or a dense autoencoder)")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation=activation, name=f"enc_conv_{i}")(x)
    x = layers.Flatten()(x)
    code = layers.Dense(latent_dim, name="code")(x)
    encoder = keras.Model(inputs, code, name="encoder")

    small = (height // factor, width // factor, filters[-1])
    codes = keras.Input(shape=(latent_dim,), name="code")
    x = layers.Dense(math.prod(small), activation=activation, name="dec_dense")(codes)
    x = layers.Reshape(small)(x)
    for i, f in enumerate(reversed(filters)):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=activation, name=f"dec_deconv_{i}")(x)
    outputs = layers.Conv2D(channels, 3, padding="same", activation=output_activation, name="image")(x)
    decoder = keras.Model(codes, outputs, name="decoder")
    return Autoencoder(encoder, decoder, name=name)


def build_denoising_autoencoder(input_shape, latent_dim: int, noise: str = "gaussian", noise_level: float = 0.3,
                                architecture: str = "dense", seed: int | None = None,
                                name: str = "denoising_autoencoder", **kwargs) -> DenoisingAutoencoder:
    """A :class:`DenoisingAutoencoder` with the layers of the dense or the convolutional builder.

    The encoder and decoder come from :func:`build_dense_autoencoder` or :func:`build_conv_autoencoder`.

    Args:
        input_shape, latent_dim: as for the other builders.
        noise, noise_level, seed: the corruption, see :class:`DenoisingAutoencoder`.
        architecture: ``"dense"`` or ``"conv"``.
        name: model name.
        **kwargs: passed to the chosen builder (``hidden=...`` or ``filters=...``).

    Returns:
        An uncompiled :class:`DenoisingAutoencoder`; train it with ``fit(x_clean, x_clean)``.

    Raises:
        ValueError: unknown ``architecture`` or ``noise``, or invalid sizes.
    """
    builders = {"dense": build_dense_autoencoder, "conv": build_conv_autoencoder}
    if architecture not in builders:
        raise ValueError(f"architecture must be 'dense' or 'conv', got {architecture!r}")
    base = builders[architecture](input_shape, latent_dim, **kwargs)
    return DenoisingAutoencoder(base.encoder, base.decoder, noise=noise, noise_level=noise_level, seed=seed, name=name)


def fit_autoencoder(model, x, epochs: int, batch_size: int = 128, learning_rate: float = 4e-3,
                    loss: str = "binary_crossentropy", verbose: int = 0):
    """Compile ``model`` and train it to reconstruct ``x`` (``fit(x, x)``); returns the ``History``.

    The optimizer is Adam with a learning rate that decays from ``learning_rate`` to 0 along a half cosine over
    all ``epochs * ceil(n / batch_size)`` steps (``keras.optimizers.schedules.CosineDecay``; Loshchilov & Hutter,
    "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017). The default loss is the binary
    cross-entropy per pixel, averaged over pixels: for sigmoid outputs and targets in [0, 1] it is the negative
    log-likelihood of a Bernoulli (or, for grey levels, a continuous-Bernoulli-like) decoder and trains faster
    than the squared error; use ``loss="mse"`` for a model with unbounded (linear) outputs. The batches run 16
    per call (``steps_per_execution``; 1 on PyTorch) and ``jit_compile`` keeps Keras's default ``"auto"``: compiled
    on JAX, no XLA on a TensorFlow CPU, eager on PyTorch (``jit_compile=False`` would make JAX run every operation
    on its own). No labels are involved: the targets are the inputs.

    Args:
        model: a ``keras.Model`` mapping images ``(n, ...)`` to images of the same shape (e.g. an
            :class:`Autoencoder`, or a :class:`DenoisingAutoencoder`, which corrupts its inputs itself).
        x: float32 array ``(n, h, w, c)`` of training images in [0, 1].
        epochs: passes over ``x`` (>= 1).
        batch_size: images per step.
        learning_rate: the initial learning rate.
        loss: a Keras loss name or object.
        verbose: passed to ``fit``.

    Returns:
        The ``keras.callbacks.History`` (``history.history["loss"]``: one training loss per epoch).

    Raises:
        ValueError: ``epochs`` or ``batch_size`` < 1, or an empty ``x``.
    """
    x = np.asarray(x, dtype=np.float32)
    if epochs < 1 or batch_size < 1 or len(x) == 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and data, got {epochs}, {batch_size}, {len(x)} images")
    steps = int(epochs) * int(math.ceil(len(x) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, steps_per_execution=steps_per_execution(16))
    return model.fit(x, x, epochs=int(epochs), batch_size=int(batch_size), verbose=verbose)


def pca_test_error(x_train, x_test, n_components: int, seed: int = 0) -> float:
    """Test reconstruction MSE of PCA with ``n_components`` components fitted on the training images.

    Args:
        x_train, x_test: arrays ``(n, ...)`` (flattened internally), e.g. images in [0, 1].
        n_components: number of principal components k (1 <= k <= min(n_train, d)).
        seed: ``random_state`` of ``sklearn.decomposition.PCA``.

    Returns:
        The mean squared error over every test pixel (squared pixel units).
    """
    from sklearn.decomposition import PCA

    train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    pca = PCA(int(n_components), random_state=seed).fit(train)
    return float(np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2))


def code_size_study(build_fn, train_fn, x_train, x_test, sizes, epochs: int, hidden=(512,), seed: int = 0) -> dict:
    """Autoencoder against PCA at several code sizes, on the test split.

    For each code size k: PCA with k components (:func:`pca_test_error`) and an autoencoder built by
    ``build_fn(input_shape, k, hidden) -> (encoder, decoder)``, chained as an :class:`Autoencoder`, trained by
    ``train_fn(model, x_train, epochs)`` from the global seed ``seed + k`` (``keras.utils.set_random_seed``), then
    scored by its test MSE. The ratio AE / PCA below 1 is what the nonlinearity buys at that code size.

    Args:
        build_fn: e.g. a function returning :func:`build_dense_encoder` and :func:`build_dense_decoder`.
        train_fn: e.g. :func:`fit_autoencoder`.
        x_train, x_test: float32 images ``(n, h, w, c)`` in [0, 1].
        sizes: code sizes (positive ints).
        epochs: training epochs of every autoencoder.
        hidden: hidden widths passed to ``build_fn``.
        seed: base seed.

    Returns:
        ``{k: {"pca_mse": float, "ae_mse": float, "ratio": float}}`` in the order of ``sizes``.
    """
    results = {}
    for k in sizes:
        keras.utils.set_random_seed(int(seed) + int(k))
        encoder, decoder = build_fn(tuple(x_train.shape[1:]), int(k), tuple(hidden))
        model = Autoencoder(encoder, decoder, name=f"autoencoder_{k}")
        train_fn(model, x_train, int(epochs))
        ae_mse = float(np.mean((model.reconstruct(x_test) - np.asarray(x_test, dtype=np.float32)) ** 2))
        pca_mse = pca_test_error(x_train, x_test, int(k), seed=seed)
        results[int(k)] = {"pca_mse": pca_mse, "ae_mse": ae_mse, "ratio": ae_mse / pca_mse}
    return results

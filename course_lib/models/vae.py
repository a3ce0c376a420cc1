"""The variational autoencoder (Day 05): sampling layer, KL term, ELBO, as backend-agnostic Keras 3 code.

A VAE (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014) is a latent-variable model
:math:`p(z) = \\mathcal N(0, I)`, :math:`p_\\theta(x \\mid z)` (the **decoder**), trained with an approximate
posterior :math:`q_\\phi(z \\mid x) = \\mathcal N(\\mu_\\phi(x), \\operatorname{diag} \\sigma^2_\\phi(x))` (the
**encoder**) by maximising the evidence lower bound

.. math::

    \\log p_\\theta(x) \\ge \\mathrm{ELBO}(x) = \\mathbb E_{q_\\phi(z\\mid x)}[\\log p_\\theta(x \\mid z)]
        - \\mathrm{KL}(q_\\phi(z \\mid x) \\,\\|\\, p(z)).

Here the decoder is Bernoulli per pixel, so :math:`-\\log p_\\theta(x\\mid z)` is the binary cross-entropy
**summed** over pixels (nats), and the KL term has the closed form :func:`course_lib.losses.gaussian_kl`. The expectation
is estimated with one reparameterised sample :math:`z = \\mu + \\sigma \\odot \\varepsilon`,
:math:`\\varepsilon \\sim \\mathcal N(0, I)` (:class:`Sampling`). The :math:`\\beta`-VAE (Higgins et al.,
"beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework", ICLR 2017) weights
the KL term by :math:`\\beta`; :math:`\\beta = 1` is the ELBO.

- :class:`Sampling`: the reparameterisation layer (``keras.random.normal`` with a stored ``SeedGenerator``).
- :func:`course_lib.losses.gaussian_kl`, :func:`course_lib.losses.bernoulli_nll`: the two terms, per example, in
  nats (``keras.ops``).
- :class:`VAE`: a ``keras.Model`` whose ``compute_loss`` adds the KL term inside the model and tracks total,
  reconstruction and KL losses separately; ``encoder``, ``decoder``, :meth:`VAE.sample`,
  :meth:`VAE.reconstruct`, :meth:`VAE.elbo_terms`.
- :func:`build_vae`: dense encoder / decoder for images ``(h, w, c)`` with values in [0, 1].
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

from course_lib.losses import bernoulli_nll, gaussian_kl
from course_lib.models.base import SubmodelConfig
from course_lib.models.autoencoders import _last_dim


@keras.saving.register_keras_serializable(package="course_lib")
class Sampling(layers.Layer):
    """The reparameterisation layer: :math:`z = \\mu + \\exp(\\tfrac12 \\log\\sigma^2) \\odot \\varepsilon`.

    :math:`\\varepsilon \\sim \\mathcal N(0, I)`, drawn afresh at every call.

    The reparameterisation trick (Kingma & Welling, ICLR 2014): the randomness enters through
    :math:`\\varepsilon`, which does not depend on the parameters, so gradients flow to :math:`\\mu` and
    :math:`\\log\\sigma^2`. Noise comes from ``keras.random.normal`` with the layer's ``SeedGenerator``: the same
    ``seed`` gives the same sequence of draws.

    Args:
        seed: int seed of the layer's ``keras.random.SeedGenerator`` (None: drawn from the global seed).

    Call arguments:
        inputs: ``[z_mean, z_log_var]``, two float tensors ``(batch, latent_dim)``; ``z_log_var`` is the
            natural log of the variance.

    Returns:
        ``z``, float tensor ``(batch, latent_dim)``.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="course_lib")
class VAE(SubmodelConfig, keras.Model):
    """A variational autoencoder with a Bernoulli decoder and the KL term inside the model.

    Args:
        encoder: ``keras.Model`` mapping images ``(batch, h, w, c)`` to ``[z_mean, z_log_var]``, each
            ``(batch, latent_dim)``.
        decoder: ``keras.Model`` mapping codes ``(batch, latent_dim)`` to Bernoulli **logits**
            ``(batch, h, w, c)`` (use :meth:`decode` for pixel probabilities).
        beta: weight :math:`\\beta \\ge 0` of the KL term in the training loss (1 = the ELBO;
            Higgins et al., ICLR 2017).
        seed: seed of the :class:`Sampling` layer (and of :meth:`sample`'s default noise).
        **kwargs: passed to ``keras.Model``.

    ``call(x)`` returns a dict ``{"logits", "z_mean", "z_log_var", "z"}`` with ``z`` **sampled** from
    :math:`q(z \\mid x)` (also in inference mode, so ``evaluate`` estimates the ELBO). ``compute_loss`` returns
    the batch mean of :math:`\\text{recon} + \\beta\\,\\text{KL}` and updates three ``keras.metrics.Mean``
    trackers exposed by :attr:`metrics`: ``loss`` (that objective), ``reconstruction_loss`` (Bernoulli
    negative log-likelihood summed over pixels) and ``kl_loss`` — per-example means in nats. Compile with an
    optimizer only (``vae.compile(keras.optimizers.Adam(1e-3))``) and train with ``fit(x)``.

    Raises:
        ValueError: negative ``beta``, or an encoder whose code size differs from the decoder's input size.
    """

    SUBMODELS = ("encoder", "decoder")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        code, expected = _last_dim(encoder, "output_shape"), _last_dim(decoder, "input_shape")
        if code is not None and expected is not None and code != expected:
            raise ValueError(f"the encoder outputs codes of size {code} but the decoder expects {expected}")
        code = code if code is not None else expected
        if code is None:
            raise ValueError("cannot tell the latent size: build the encoder and decoder first (Functional models)")
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.seed = seed
        self.latent_dim = int(code)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.prior_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        """The three loss trackers (Keras resets them at each epoch and reports them in ``History``)."""
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs, training=False):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling([z_mean, z_log_var])
        logits = self.decoder(z, training=training)
        return {"logits": logits, "z_mean": z_mean, "z_log_var": z_log_var, "z": z}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative :math:`\\beta`-ELBO of the batch (a scalar); updates the three trackers.

        ``y`` and ``sample_weight`` are ignored (the target of a VAE is its input ``x``).
        """
        reconstruction = bernoulli_nll(ops.cast(x, y_pred["logits"].dtype), y_pred["logits"])
        kl = gaussian_kl(y_pred["z_mean"], y_pred["z_log_var"])
        total = reconstruction + self.beta * kl
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return ops.mean(total)

    # ---- convenience methods on NumPy arrays (inference mode, batched, eager) ----------------------------

    def _chunks(self, x, batch_size):
        x = np.asarray(x, dtype="float32")
        if len(x) == 0:
            raise ValueError("got an empty array")
        return (x[i:i + batch_size] for i in range(0, len(x), batch_size))

    def encode(self, x, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """``(z_mean, z_log_var)`` of images ``x`` ``(n, h, w, c)``: two float32 arrays ``(n, latent_dim)``."""
        means, log_vars = [], []
        for chunk in self._chunks(x, batch_size):
            z_mean, z_log_var = self.encoder(chunk, training=False)
            means.append(ops.convert_to_numpy(z_mean))
            log_vars.append(ops.convert_to_numpy(z_log_var))
        return np.concatenate(means), np.concatenate(log_vars)

    def decode(self, z, batch_size: int = 1024) -> np.ndarray:
        """Pixel probabilities :math:`\\operatorname{sigmoid}(\\text{decoder}(z))`: float32 ``(n, h, w, c)``."""
        return np.concatenate([ops.convert_to_numpy(ops.sigmoid(self.decoder(chunk, training=False)))
                               for chunk in self._chunks(z, batch_size)])

    def reconstruct(self, x, batch_size: int = 1024) -> np.ndarray:
        """Decode the posterior mean :math:`\\mu(x)`: float32 images in (0, 1), same shape as ``x`` (deterministic)."""
        return self.decode(self.encode(x, batch_size)[0], batch_size)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` new images: decode :math:`z \\sim \\mathcal N(0, I)`; float32 ``(n, h, w, c)`` pixel probabilities.

        Args:
            n: number of images (>= 1).
            seed: an int draws the codes with ``keras.random.normal(seed=seed)`` (same seed, same images);
                None uses the model's own seed generator (a new draw at every call).
        """
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        z = keras.random.normal((int(n), self.latent_dim), seed=self.prior_seed_generator if seed is None else seed)
        return self.decode(ops.convert_to_numpy(z))

    def elbo_terms(self, x, batch_size: int = 1024, n_samples: int = 1) -> dict[str, np.ndarray]:
        """Per-example terms of the negative ELBO (:math:`\\beta = 1`), in nats.

        The reconstruction term is averaged over ``n_samples`` draws of :math:`z \\sim q(z\\mid x)` (the layer's
        seed generator); the KL term is exact.

        Returns:
            ``{"reconstruction": (n,), "kl": (n,), "negative_elbo": (n,)}``, float64 arrays.
        """
        recon, kl = [], []
        for chunk in self._chunks(x, batch_size):
            z_mean, z_log_var = self.encoder(chunk, training=False)
            total = 0.0
            for _ in range(int(n_samples)):
                logits = self.decoder(self.sampling([z_mean, z_log_var]), training=False)
                total = total + ops.convert_to_numpy(bernoulli_nll(ops.convert_to_tensor(chunk), logits))
            recon.append(np.asarray(total, dtype=np.float64) / int(n_samples))
            kl.append(ops.convert_to_numpy(gaussian_kl(z_mean, z_log_var)).astype(np.float64))
        recon, kl = np.concatenate(recon), np.concatenate(kl)
        return {"reconstruction": recon, "kl": kl, "negative_elbo": recon + kl}

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta, "seed": self.seed})
        return config


def build_vae_encoder(input_shape, latent_dim: int, hidden: Sequence[int] = (128, 64), activation: str = "relu",
                      name: str = "encoder") -> keras.Model:
    """Dense encoder ``Flatten -> Dense(h)... -> [Dense(latent_dim) "z_mean", Dense(latent_dim) "z_log_var"]``.

    Returns:
        ``keras.Model`` mapping float32 ``(batch, *input_shape)`` to ``[z_mean, z_log_var]``, each
        ``(batch, latent_dim)``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Flatten()(inputs)
    for i, units in enumerate(hidden):
        x = layers.Dense(int(units), activation=activation, name=f"enc_dense_{i}")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def build_vae_decoder(latent_dim: int, output_shape, hidden: Sequence[int] = (128, 64), activation: str = "relu",
                      name: str = "decoder") -> keras.Model:
    """Dense decoder ``Dense(h) for h in reversed(hidden) -> Dense(h*w*c) -> Reshape``, outputting **logits**.

    Returns:
        ``keras.Model`` mapping float32 ``(batch, latent_dim)`` to Bernoulli logits ``(batch, *output_shape)``.
    """
    codes = keras.Input(shape=(latent_dim,), name="z")
    x = codes
    for i, units in enumerate(reversed(tuple(hidden))):
        x = layers.Dense(int(units), activation=activation, name=f"dec_dense_{i}")(x)
    x = layers.Dense(math.prod(output_shape), name="logits")(x)
    outputs = layers.Reshape(tuple(output_shape))(x)
    return keras.Model(codes, outputs, name=name)


def build_vae(input_shape, latent_dim: int = 2, hidden: Sequence[int] = (128, 64), beta: float = 1.0,
              seed: int | None = None, activation: str = "relu", name: str = "vae") -> VAE:
    """A :class:`VAE` with dense encoder and decoder (:func:`build_vae_encoder`, :func:`build_vae_decoder`).

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``; pixel values in [0, 1].
        latent_dim: size of :math:`z` (2 for a plottable latent space).
        hidden: hidden widths of the encoder (the decoder uses them reversed).
        beta: KL weight (1 = the ELBO).
        seed: seed of the sampling noise.
        activation: activation of the hidden layers.
        name: model name.

    Returns:
        An uncompiled :class:`VAE`: ``vae.compile(keras.optimizers.Adam(1e-3)); vae.fit(x_train, epochs=...)``.

    Raises:
        ValueError: a malformed ``input_shape``, ``latent_dim`` < 1 or ``beta`` < 0.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    encoder = build_vae_encoder(shape, int(latent_dim), hidden, activation)
    decoder = build_vae_decoder(int(latent_dim), shape, hidden, activation)
    return VAE(encoder, decoder, beta=beta, seed=seed, name=name)


def latent_grid(n: int = 15, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Codes on an ``n x n`` grid of a 2-D standard-normal latent space, spaced by quantiles.

    Points are :math:`(\\Phi^{-1}(u), \\Phi^{-1}(v))` for :math:`u, v` evenly spaced in ``[low, high]``, so that
    equal steps hold equal prior mass. Rows go from high to low second coordinate (so a tiled image has
    "up" at the top).

    Returns:
        float32 array ``(n * n, 2)`` in row-major order.

    Raises:
        ValueError: ``n`` < 2 or not ``0 < low < high < 1``.
    """
    from scipy.stats import norm

    if n < 2 or not 0 < low < high < 1:
        raise ValueError(f"need n >= 2 and 0 < low < high < 1, got n={n}, low={low}, high={high}")
    axis = norm.ppf(np.linspace(low, high, int(n)))
    return np.array([[a, b] for b in axis[::-1] for a in axis], dtype=np.float32)


def tile(images, n_cols: int) -> np.ndarray:
    """Tile images ``(n, h, w[, 1])`` into one ``(n // n_cols * h, n_cols * w)`` array.

    Raises:
        ValueError: ``n`` is not a multiple of ``n_cols``.
    """
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    n, h, w = images.shape
    if n % n_cols:
        raise ValueError(f"{n} images do not fill rows of {n_cols}")
    return images.reshape(n // n_cols, n_cols, h, w).transpose(0, 2, 1, 3).reshape(n // n_cols * h, n_cols * w)

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
  :meth:`VAE.reconstruct`, :meth:`VAE.elbo_terms`. The two loss terms and the sampling layer can be
  replaced by other implementations of the same maths (the course trains its VAE with the student's own).
- :class:`KLWarmup`: a callback that ramps the KL weight from 0 to :math:`\\beta` over the first epochs
  ("KL annealing", Bowman et al., "Generating Sentences from a Continuous Space", CoNLL 2016; "warm-up",
  Sønderby et al., "Ladder Variational Autoencoders", NeurIPS 2016), against posterior collapse early in training.
- :func:`build_vae`: dense encoder / decoder for images ``(h, w, c)`` with values in [0, 1].
- :func:`kl_monte_carlo`: a Monte-Carlo estimate of the KL term (to check the closed form);
  :func:`aggregate_posterior_log_density` and :func:`elbo_surgery`: the aggregate posterior
  :math:`q(z) = \\frac1N \\sum_i q(z \\mid x_i)` and the split of the average KL term into the mutual
  information :math:`I_q(x; z)` and :math:`\\mathrm{KL}(q(z) \\,\\|\\, p(z))` (Hoffman & Johnson, "ELBO surgery",
  NIPS 2016 Workshop on Advances in Approximate Bayesian Inference).
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
        kl_weight: the KL weight the training starts with (default ``beta``); stored in the non-trainable
            ``keras.Variable`` :attr:`kl_weight`, which :class:`KLWarmup` moves towards ``beta``.
        sampling: a layer called as ``sampling([z_mean, z_log_var]) -> z`` used instead of
            ``Sampling(seed=seed)`` (e.g. a student's sampling layer).
        reconstruction_loss: ``f(x, logits) -> (batch,)`` nats, used instead of
            :func:`course_lib.losses.bernoulli_nll`.
        kl_loss: ``f(z_mean, z_log_var) -> (batch,)`` nats, used instead of :func:`course_lib.losses.gaussian_kl`.
        **kwargs: passed to ``keras.Model``.

    ``call(x)`` returns a dict ``{"logits", "z_mean", "z_log_var", "z"}`` with ``z`` **sampled** from
    :math:`q(z \\mid x)` (also in inference mode, so ``evaluate`` estimates the ELBO). ``compute_loss`` returns
    the batch mean of :math:`\\text{recon} + w\\,\\text{KL}` with :math:`w` the current :attr:`kl_weight`
    (:math:`\\beta` unless a warm-up is running) and updates three ``keras.metrics.Mean`` trackers exposed by
    :attr:`metrics`: ``loss`` (that objective), ``reconstruction_loss`` (Bernoulli negative log-likelihood summed
    over pixels) and ``kl_loss`` — per-example means in nats. Compile with an optimizer only
    (``vae.compile(keras.optimizers.Adam(1e-3))``) and train with ``fit(x)``.

    ``get_config`` saves ``beta``, ``seed`` and the current KL weight. Functions and layers passed as
    ``sampling``, ``reconstruction_loss`` or ``kl_loss`` are training-time choices and are not saved: a
    loaded model uses the library's versions (the same maths, so loaded predictions do not change).

    Raises:
        ValueError: negative ``beta`` or ``kl_weight``, or an encoder whose code size differs from the decoder's
            input size.
    """

    SUBMODELS = ("encoder", "decoder")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, beta: float = 1.0, seed: int | None = None,
                 kl_weight: float | None = None, sampling=None, reconstruction_loss=None, kl_loss=None, **kwargs):
        super().__init__(**kwargs)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        if kl_weight is not None and kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight!r}")
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
        self.kl_weight = keras.Variable(float(beta if kl_weight is None else kl_weight), trainable=False,
                                        dtype="float32", name="kl_weight")
        self.sampling = sampling if sampling is not None else Sampling(seed=seed, name="sampling")
        self.reconstruction_loss = reconstruction_loss or bernoulli_nll
        self.kl_loss = kl_loss or gaussian_kl
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
        """Negative ELBO of the batch with the KL term weighted by :attr:`kl_weight` (a scalar); updates the trackers.

        ``y`` and ``sample_weight`` are ignored (the target of a VAE is its input ``x``).
        """
        logits = y_pred["logits"]
        reconstruction = self.reconstruction_loss(ops.cast(x, logits.dtype), logits)
        kl = self.kl_loss(y_pred["z_mean"], y_pred["z_log_var"])
        total = reconstruction + ops.cast(self.kl_weight, kl.dtype) * kl
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

        Returns:
            float32 array ``(n, h, w, c)`` of pixel probabilities in (0, 1).

        Raises:
            ValueError: ``n`` is not a positive integer.
        """
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        z = keras.random.normal((int(n), self.latent_dim), seed=self.prior_seed_generator if seed is None else seed)
        return self.decode(ops.convert_to_numpy(z))

    def elbo_terms(self, x, batch_size: int = 1024, n_samples: int = 1) -> dict[str, np.ndarray]:
        """Per-example terms of the negative ELBO (:math:`\\beta = 1`), in nats.

        The reconstruction term is averaged over ``n_samples`` draws of :math:`z \\sim q(z\\mid x)` (the layer's
        seed generator); the KL term is exact. Both use the model's loss functions.

        Returns:
            ``{"reconstruction": (n,), "kl": (n,), "negative_elbo": (n,)}``, float64 arrays.
        """
        recon, kl = [], []
        for chunk in self._chunks(x, batch_size):
            z_mean, z_log_var = self.encoder(chunk, training=False)
            total = 0.0
            for _ in range(int(n_samples)):
                logits = self.decoder(self.sampling([z_mean, z_log_var]), training=False)
                total = total + ops.convert_to_numpy(self.reconstruction_loss(ops.convert_to_tensor(chunk), logits))
            recon.append(np.asarray(total, dtype=np.float64) / int(n_samples))
            kl.append(ops.convert_to_numpy(self.kl_loss(z_mean, z_log_var)).astype(np.float64))
        recon, kl = np.concatenate(recon), np.concatenate(kl)
        return {"reconstruction": recon, "kl": kl, "negative_elbo": recon + kl}

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta, "seed": self.seed,
                       "kl_weight": float(ops.convert_to_numpy(self.kl_weight))})
        return config


class KLWarmup(keras.callbacks.Callback):
    """Ramp a :class:`VAE`'s KL weight linearly from ``beta / epochs`` to ``beta`` over the first ``epochs`` epochs.

    At the start of epoch ``e`` (counted from 0) the weight is :math:`\\beta \\min(1, (e + 1) / E)`; after ``E``
    epochs it stays at :math:`\\beta`, so the final model optimises the intended objective. Early in training the
    decoder cannot yet use the code, and a full-weight KL term pushes every posterior onto the prior, switching
    latent units off for good (posterior collapse); a small weight first lets the code become informative
    ("KL annealing", Bowman et al., CoNLL 2016; "warm-up", Sønderby et al., NeurIPS 2016).

    Args:
        epochs: length of the ramp ``E`` in epochs (>= 1).

    Raises:
        ValueError: ``epochs`` < 1.
        TypeError: (at the start of training) the model has no ``kl_weight`` variable and ``beta``.
    """

    def __init__(self, epochs: int = 10):
        super().__init__()
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.epochs = int(epochs)

    def weight(self, epoch: int, beta: float) -> float:
        """The KL weight during epoch ``epoch`` (from 0) for the target ``beta``."""
        return float(beta) * min(1.0, (int(epoch) + 1) / self.epochs)

    def on_train_begin(self, logs=None):
        """Check that the model has a ``kl_weight`` variable and a ``beta`` (raises ``TypeError`` otherwise)."""
        if not hasattr(self.model, "kl_weight") or not hasattr(self.model, "beta"):
            raise TypeError(f"KLWarmup needs a model with kl_weight and beta (a VAE), got {type(self.model).__name__}")

    def on_epoch_begin(self, epoch, logs=None):
        """Set the model's ``kl_weight`` to ``weight(epoch, model.beta)`` for the epoch that starts."""
        self.model.kl_weight.assign(self.weight(epoch, self.model.beta))


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
              seed: int | None = None, activation: str = "relu", name: str = "vae", **kwargs) -> VAE:
    """A :class:`VAE` with dense encoder and decoder (:func:`build_vae_encoder`, :func:`build_vae_decoder`).

    Args:
        input_shape: ``(height, width, channels)``, e.g. ``(8, 8, 1)`` or ``(28, 28, 1)``; pixel values in [0, 1].
        latent_dim: size of :math:`z` (2 for a plottable latent space).
        hidden: hidden widths of the encoder (the decoder uses them reversed).
        beta: KL weight (1 = the ELBO).
        seed: seed of the sampling noise.
        activation: activation of the hidden layers.
        name: model name.
        **kwargs: passed to :class:`VAE` (``kl_weight``, ``sampling``, ``reconstruction_loss``, ``kl_loss``).

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
    return VAE(encoder, decoder, beta=beta, seed=seed, name=name, **kwargs)


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


# ---- the KL term by Monte Carlo, and the aggregate posterior ---------------------------------------------------

def kl_monte_carlo(z_mean, z_log_var, n_samples: int, seed: int = 0) -> np.ndarray:
    """Monte-Carlo estimate of :math:`\\mathrm{KL}(\\mathcal N(\\mu, \\operatorname{diag}\\sigma^2) \\,\\|\\, \\mathcal N(0, I))`.

    The average over ``n_samples`` draws :math:`z = \\mu + \\sigma \\odot \\varepsilon` of
    :math:`\\log q(z) - \\log p(z) = \\sum_j \\tfrac12 \\big(z_j^2 - \\varepsilon_j^2 - \\log \\sigma_j^2\\big)`
    (the :math:`\\log 2\\pi` terms cancel). Unbiased; its variance per draw is
    :math:`\\sum_j \\big(\\mu_j^2 \\sigma_j^2 + \\tfrac12 (\\sigma_j^2 - 1)^2\\big)`, so the error falls as
    :math:`1/\\sqrt{n}`. The closed form (:func:`course_lib.losses.gaussian_kl`) has no error at all, which is
    why a VAE uses it (Kingma & Welling, ICLR 2014, section 2.4 and appendix B).

    Args:
        z_mean, z_log_var: arrays or tensors ``(batch, latent_dim)``.
        n_samples: draws per example (>= 1).
        seed: int seed of ``keras.random.normal``.

    Returns:
        float64 array ``(batch,)``, nats.

    Raises:
        ValueError: ``n_samples`` < 1 or shapes that differ.
    """
    mean = ops.convert_to_tensor(np.asarray(ops.convert_to_numpy(z_mean), dtype=np.float32))
    log_var = ops.convert_to_tensor(np.asarray(ops.convert_to_numpy(z_log_var), dtype=np.float32))
    if tuple(mean.shape) != tuple(log_var.shape) or len(mean.shape) != 2:
        raise ValueError(f"z_mean and z_log_var must both be (batch, latent_dim), got {mean.shape}, {log_var.shape}")
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    eps = keras.random.normal((int(n_samples), *mean.shape), seed=seed)
    z = mean[None] + ops.exp(0.5 * log_var)[None] * eps
    per_draw = 0.5 * ops.sum(ops.square(z) - ops.square(eps) - log_var[None], axis=-1)
    return ops.convert_to_numpy(ops.mean(per_draw, axis=0)).astype(np.float64)


def _gaussian_log_density(z, mean, log_var) -> np.ndarray:
    """``log N(z_a; mean_b, diag exp(log_var_b))`` for every pair: ``(len(z), len(mean))``, float64."""
    z, mean, log_var = (np.asarray(a, dtype=np.float64) for a in (z, mean, log_var))
    inv_var = np.exp(-log_var)                                        # (N, k)
    # sum_j (z_j - m_j)^2 / v_j = sum z^2/v - 2 z m/v + m^2/v, as matrix products
    quad = (z ** 2) @ inv_var.T - 2.0 * z @ (mean * inv_var).T + np.sum(mean ** 2 * inv_var, axis=1)[None]
    return -0.5 * (quad + np.sum(log_var, axis=1)[None] + z.shape[1] * np.log(2.0 * np.pi))


def aggregate_posterior_log_density(z, z_mean, z_log_var, batch_size: int = 512) -> np.ndarray:
    """:math:`\\log q(z)` of the aggregate posterior :math:`q(z) = \\frac1N \\sum_{i=1}^N \\mathcal N(z; \\mu_i, \\sigma_i^2)`.

    :math:`q(z)` is the distribution of codes the encoder actually uses over a data set of ``N`` images (the
    "aggregate posterior", Makhzani et al., "Adversarial Autoencoders", ICLR 2016 workshop; Hoffman & Johnson,
    2016). Where it is much smaller than the prior :math:`p(z)`, prior samples land in "holes" that no training
    image maps to, and the decoder was never trained there.

    Args:
        z: query codes ``(m, latent_dim)``.
        z_mean, z_log_var: the ``N`` posteriors, ``(N, latent_dim)`` each (e.g. :meth:`VAE.encode` of a data set).
        batch_size: query codes per block (memory ``batch_size * N`` floats).

    Returns:
        float64 array ``(m,)`` of log densities (nats).

    Raises:
        ValueError: latent sizes that differ.
    """
    from scipy.special import logsumexp

    z = np.asarray(z, dtype=np.float64)
    z_mean, z_log_var = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    if z.ndim != 2 or z_mean.shape != z_log_var.shape or z_mean.shape[1] != z.shape[1]:
        raise ValueError(f"shapes do not match: z {z.shape}, z_mean {z_mean.shape}, z_log_var {z_log_var.shape}")
    out = [logsumexp(_gaussian_log_density(z[i:i + batch_size], z_mean, z_log_var), axis=1)
           for i in range(0, len(z), batch_size)]
    return np.concatenate(out) - np.log(len(z_mean))


def standard_normal_log_density(z) -> np.ndarray:
    """:math:`\\log p(z)` under the prior :math:`\\mathcal N(0, I)`: float64 ``(m,)`` for codes ``(m, latent_dim)``."""
    z = np.asarray(z, dtype=np.float64)
    return -0.5 * np.sum(z ** 2, axis=1) - 0.5 * z.shape[1] * np.log(2.0 * np.pi)


def elbo_surgery(z_mean, z_log_var, n_samples: int = 2, seed: int = 0) -> dict[str, float]:
    """Split the average KL term into mutual information and the aggregate posterior's distance to the prior.

    For the data set of ``N`` encoded images (``x`` uniform over them) and the encoder's joint
    :math:`q(x, z) = \\frac1N q(z \\mid x)`,

    .. math::

        \\frac1N \\sum_i \\mathrm{KL}\\big(q(z \\mid x_i) \\,\\|\\, p(z)\\big)
            = I_q(x; z) + \\mathrm{KL}\\big(q(z) \\,\\|\\, p(z)\\big)

    (Hoffman & Johnson, "ELBO surgery: yet another way to carve up the variational evidence lower bound",
    NIPS 2016 Workshop on Advances in Approximate Bayesian Inference). Both terms are non-negative, so the
    average KL term is an **upper bound** on the information the code carries about the image,
    :math:`I_q(x; z) \\le \\log N`; the rest measures how far the codes actually used are from the prior.
    The two terms are estimated by Monte Carlo with ``n_samples`` draws :math:`z \\sim q(z \\mid x_i)` per image and
    the exact mixture density :func:`aggregate_posterior_log_density`.

    Args:
        z_mean, z_log_var: the posteriors of the ``N`` images, ``(N, latent_dim)`` each.
        n_samples: draws per image (>= 1).
        seed: seed of the NumPy generator drawing :math:`\\varepsilon`.

    Returns:
        ``{"average_kl", "mutual_information", "marginal_kl", "log_n"}`` in nats: the closed-form average KL
        term, the estimates of :math:`I_q(x; z)` and :math:`\\mathrm{KL}(q(z) \\| p(z))` (they add up to the
        Monte-Carlo estimate of the average KL), and :math:`\\log N`, the largest possible mutual information.

    Raises:
        ValueError: ``z_mean`` and ``z_log_var`` of different shapes (from NumPy broadcasting or
            :func:`aggregate_posterior_log_density`), or ``n_samples`` < 1.
    """
    from course_lib.losses import gaussian_kl

    mean, log_var = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    rng = np.random.default_rng(seed)
    z = (mean[None] + np.exp(0.5 * log_var)[None] * rng.standard_normal((int(n_samples), *mean.shape)))
    z = z.reshape(-1, mean.shape[1])
    owner = np.tile(np.arange(len(mean)), int(n_samples))
    log_conditional = -0.5 * np.sum((z - mean[owner]) ** 2 / np.exp(log_var[owner]) + log_var[owner]
                                    + np.log(2.0 * np.pi), axis=1)
    log_marginal = aggregate_posterior_log_density(z, mean, log_var)
    log_prior = standard_normal_log_density(z)
    average_kl = float(np.mean(ops.convert_to_numpy(gaussian_kl(mean.astype("float32"), log_var.astype("float32")))))
    return {"average_kl": average_kl,
            "mutual_information": float(np.mean(log_conditional - log_marginal)),
            "marginal_kl": float(np.mean(log_marginal - log_prior)),
            "log_n": float(np.log(len(mean)))}


def monte_carlo_kl_errors(z_mean, z_log_var, sample_counts, seed: int = 0, kl_fn=None) -> dict[int, float]:
    """Relative RMS error of :func:`kl_monte_carlo` against the closed form, for each number of samples.

    :math:`\\sqrt{\\frac1N \\sum_i (\\widehat{\\mathrm{KL}}_i - \\mathrm{KL}_i)^2} \\,/\\, \\frac1N \\sum_i \\mathrm{KL}_i`
    over the ``N`` examples.

    Args:
        z_mean, z_log_var: ``(N, latent_dim)`` each, e.g. the encodings of the test images.
        sample_counts: numbers of draws per example (positive ints).
        seed: seed of every estimate (``seed + n``).
        kl_fn: closed form ``f(z_mean, z_log_var) -> (N,)`` (default :func:`course_lib.losses.gaussian_kl`).

    Returns:
        ``{n: relative error}`` in the order of ``sample_counts`` (Python floats, >= 0).

    Raises:
        ValueError: a count that is not a positive integer, or ``z_mean`` and ``z_log_var`` that are not both
            ``(N, latent_dim)`` of one shape (from :func:`kl_monte_carlo`; shapes that do not broadcast fail
            earlier, in ``kl_fn``, with the backend's own error).
    """
    exact = np.asarray(ops.convert_to_numpy((kl_fn or gaussian_kl)(
        ops.convert_to_tensor(np.asarray(z_mean, np.float32)), ops.convert_to_tensor(np.asarray(z_log_var, np.float32)))),
        dtype=np.float64)
    errors = {}
    for count in sample_counts:
        estimate = kl_monte_carlo(z_mean, z_log_var, int(count), seed=int(seed) + int(count))
        errors[int(count)] = float(np.sqrt(np.mean((estimate - exact) ** 2)) / np.mean(exact))
    return errors

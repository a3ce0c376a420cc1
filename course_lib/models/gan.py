"""A deep convolutional GAN (DCGAN) for small grayscale images, with a correct alternating ``train_step``.

A generative adversarial network (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014) trains two
networks against each other: a generator :math:`G` maps noise :math:`z \\sim \\mathcal{N}(0, I)` to images, a
discriminator :math:`D` outputs a logit :math:`\\ell(x)` with :math:`D(x) = \\sigma(\\ell(x))` the probability that
:math:`x` is real. Each training step alternates

1. a **discriminator step** on real images (target 1) and generated images (target 0), updating only :math:`D`:
   :math:`L_D = -\\log D(x) - \\log(1 - D(G(z)))`;
2. a **generator step** through the discriminator with the **non-saturating** loss
   :math:`L_G = -\\log D(G(z))` (target 1 for generated images), updating only :math:`G`.

The architecture follows the DCGAN guidelines (Radford, Metz & Chintala, "Unsupervised Representation Learning
with Deep Convolutional Generative Adversarial Networks", ICLR 2016): strided (transposed) convolutions instead of
pooling, ReLU in the generator with a ``tanh`` output, LeakyReLU in the discriminator, and batch normalisation in
*both* networks except the generator's output layer and the discriminator's input layer. **One deviation:**
:func:`build_discriminator` has no batch normalisation (dropout before its output instead). Batch normalisation
makes each image's output depend on the other images of its batch (Salimans et al., "Improved Techniques for
Training GANs", NeurIPS 2016), and the discriminator sees batches that are all real or all generated, so it
could tell them apart by their batch statistics; without it, each logit depends on its own image only, and the
small discriminator trains stably on the course's data.

**Pixel ranges.** The course's images are float32 in [0, 1]; the ``tanh`` generator produces [-1, 1]. The
model works in [-1, 1] throughout: rescale real images with :func:`to_tanh_range` before ``fit`` and generated
images with :func:`to_unit_range` before showing or scoring them (:func:`generate_images` does it for you).

Everything is backend-agnostic Keras 3 (``keras.ops``, ``keras.random`` with a ``SeedGenerator``): Keras 3
has no backend-agnostic way to differentiate a loss inside a custom training step, and the steps take their
gradients from :func:`course_lib.autodiff.gradients`, the one place where TensorFlow, JAX and PyTorch differ.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from course_lib import autodiff
from course_lib.losses import discriminator_loss, generator_loss
from course_lib.models.base import SubmodelConfig

__all__ = ["build_generator", "build_discriminator", "DCGAN", "SampleGrid", "gradients", "discriminator_step", "generator_step",
           "alternating_step", "generator_gradient_norms", "to_tanh_range", "to_unit_range", "generate_images"]


# --- pixel ranges ---------------------------------------------------------------------------------

def to_tanh_range(images):
    """Map images from [0, 1] (the course's data) to [-1, 1] (a ``tanh`` generator's range): ``2 x - 1``.

    Args:
        images: float array of any shape with values in [0, 1].

    Returns:
        float32 NumPy array of the same shape with values in [-1, 1].
    """
    return (2.0 * np.asarray(ops.convert_to_numpy(images), dtype=np.float32) - 1.0).astype(np.float32)


def to_unit_range(images):
    """Map ``tanh`` outputs from [-1, 1] back to [0, 1]: ``(x + 1) / 2``, clipped to [0, 1].

    Args:
        images: array or tensor of any shape with values in [-1, 1].

    Returns:
        float32 NumPy array of the same shape with values in [0, 1].
    """
    images = np.asarray(ops.convert_to_numpy(images), dtype=np.float32)
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


# --- builders -------------------------------------------------------------------------------------

def _check_image_shape(image_shape) -> tuple[int, int, int]:
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or image_shape[0] % 4 or image_shape[1] % 4 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (height, width, channels) with height and width divisible by 4 "
                         f"(e.g. (8, 8, 1) or (28, 28, 1)), got {image_shape}")
    return image_shape


def build_generator(latent_dim: int = 32, image_shape=(8, 8, 1), filters: int = 64,
                    name: str = "generator") -> keras.Model:
    """The DCGAN generator: noise ``z`` to an image in [-1, 1].

    ``Dense(h/4 * w/4 * 2 filters) -> BatchNorm -> ReLU -> Reshape -> Conv2DTranspose(filters, stride 2)
    -> BatchNorm -> ReLU -> Conv2DTranspose(channels, stride 2, tanh)``: two doublings, so an 8x8 image starts
    from a 2x2 map and a 28x28 image from a 7x7 map.

    Args:
        latent_dim: size of the noise vector ``z``.
        image_shape: ``(height, width, channels)`` of the images; height and width divisible by 4.
        filters: channels of the last hidden feature map (the first has twice as many).
        name: model name.

    Returns:
        An uncompiled Functional ``keras.Model`` mapping float32 ``(batch, latent_dim)`` to float32
        ``(batch, *image_shape)`` in [-1, 1].

    Raises:
        ValueError: ``latent_dim`` or ``filters`` < 1, or an image shape whose sides are not divisible by 4.
    """
    height, width, channels = _check_image_shape(image_shape)
    if latent_dim < 1 or filters < 1:
        raise ValueError(f"latent_dim and filters must be >= 1, got {latent_dim}, {filters}")
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense((height // 4) * (width // 4) * 2 * filters, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((height // 4, width // 4, 2 * filters))(x)
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh", name="image")(x)
    return keras.Model(z, images, name=name)


def build_discriminator(image_shape=(8, 8, 1), filters: int = 32, dropout: float = 0.2,
                        name: str = "discriminator") -> keras.Model:
    """The DCGAN discriminator: an image in [-1, 1] to one real-vs-generated **logit**.

    ``Conv2D(filters, stride 2) -> LeakyReLU(0.2) -> Conv2D(2 filters, stride 2) -> LeakyReLU(0.2) -> Flatten
    -> Dropout -> Dense(1)`` (the convolutions without bias). No sigmoid: the losses take logits (numerically
    stable cross-entropy).

    Args:
        image_shape: ``(height, width, channels)``; height and width divisible by 4.
        filters: channels of the first convolution (the second has twice as many).
        dropout: dropout rate before the output layer, in [0, 1).
        name: model name.

    Returns:
        An uncompiled Functional ``keras.Model`` mapping float32 ``(batch, *image_shape)`` to float32 logits
        ``(batch, 1)``.

    Raises:
        ValueError: ``filters`` < 1, ``dropout`` outside [0, 1) or a bad image shape.
    """
    image_shape = _check_image_shape(image_shape)
    if filters < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"need filters >= 1 and 0 <= dropout < 1, got {filters}, {dropout}")
    images = keras.Input(shape=image_shape, name="image")
    # Convolutions without bias: the dense layer's bias suffices, and TensorFlow's graph optimizer logs an error
    # (harmless, but alarming) when it tries to fuse Conv2D + BiasAdd + LeakyReLU inside a gradient tape.
    x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False)(images)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(2 * filters, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(images, logits, name=name)


# --- the two steps --------------------------------------------------------------------------------

#: ``gradients(loss_fn, variables) -> (loss, grads)`` on every backend (kept here for existing imports): see
#: :func:`course_lib.autodiff.gradients`.
gradients = autodiff.gradients


def discriminator_step(generator, discriminator, optimizer, real_images, z):
    """One discriminator update on a batch of real images (target 1) and of ``generator(z)`` (target 0).

    Only ``discriminator.trainable_variables`` are updated; the generator runs in training mode (its batch
    statistics move, as in every step of the original recipe) but its weights are not differentiated.
    Backend-agnostic: the gradients come from :func:`course_lib.autodiff.gradients`.

    Args:
        generator, discriminator: the two models (see :func:`build_generator`, :func:`build_discriminator`).
        optimizer: the discriminator's ``keras.optimizers.Optimizer``.
        real_images: float32 ``(batch, h, w, c)`` in [-1, 1].
        z: float32 noise ``(batch', latent_dim)``.

    Returns:
        ``(loss, real_logits, fake_logits)`` (tensors: a scalar, ``(batch, 1)`` and ``(batch', 1)``).
    """
    fake_images = ops.stop_gradient(generator(z, training=True))
    weights = discriminator.trainable_variables

    def loss_fn():
        real_logits = discriminator(real_images, training=True)
        fake_logits = discriminator(fake_images, training=True)
        return discriminator_loss(real_logits, fake_logits), (real_logits, fake_logits)

    (loss, (real_logits, fake_logits)), grads = autodiff.gradients(loss_fn, weights, has_aux=True)
    optimizer.apply(grads, weights)
    return loss, real_logits, fake_logits


def generator_step(generator, discriminator, optimizer, z, non_saturating: bool = True):
    """One generator update through the discriminator: target 1 for ``generator(z)``.

    The discriminator is part of the computation (the gradient flows through it into the generator) but only
    ``generator.trainable_variables`` are updated; the discriminator runs in inference mode (no dropout).

    Args:
        generator, discriminator: the two models.
        optimizer: the generator's ``keras.optimizers.Optimizer``.
        z: float32 noise ``(batch, latent_dim)``.
        non_saturating: use the non-saturating loss (see :func:`course_lib.losses.generator_loss`).

    Returns:
        The scalar generator loss (tensor).
    """
    weights = generator.trainable_variables

    def loss_fn():
        return generator_loss(discriminator(generator(z, training=True), training=False), non_saturating)

    loss, grads = autodiff.gradients(loss_fn, weights)
    optimizer.apply(grads, weights)
    return loss


def alternating_step(gan, real_images):
    """One training step of a GAN: a discriminator update, then a generator update with fresh noise.

    This is the body of :meth:`DCGAN.train_step` (Day 06's Exercise 6.3 asks for the same function): draw
    noise with ``gan.sample_noise``, :func:`discriminator_step` on ``real_images`` and ``generator(z)``, then
    :func:`generator_step` with new noise against the updated discriminator.

    Args:
        gan: a :class:`DCGAN` (its ``generator``, ``discriminator``, ``d_optimizer``, ``g_optimizer`` and
            ``sample_noise`` are used).
        real_images: float32 ``(batch, h, w, c)`` in [-1, 1].

    Returns:
        ``{"d_loss", "g_loss", "d_real", "d_fake"}``: the two losses and the discriminator's mean probability
        that the real and the generated images of the discriminator step are real (scalar tensors).
    """
    n = ops.shape(real_images)[0]
    d_loss, real_logits, fake_logits = discriminator_step(gan.generator, gan.discriminator, gan.d_optimizer,
                                                          real_images, gan.sample_noise(n))
    g_loss = generator_step(gan.generator, gan.discriminator, gan.g_optimizer, gan.sample_noise(n))
    return {"d_loss": d_loss, "g_loss": g_loss, "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits))}


def generator_gradient_norms(generator, discriminator, z) -> dict[str, float]:
    """Measure how strongly each generator loss pushes the generator, at noise ``z`` (nothing is updated).

    Both networks run in inference mode. The global norm of a gradient is the square root of the sum of the
    squares of all its entries, over all of ``generator.trainable_variables``.

    Args:
        generator, discriminator: the two models.
        z: float32 noise ``(batch, latent_dim)``.

    Returns:
        ``{"d_fake": mean D(G(z)), "non_saturating": norm, "saturating": norm}`` (Python floats): the
        discriminator's mean probability that the generated images are real, and the gradient norms of the
        non-saturating loss ``mean(softplus(-l))`` and of the saturating (minimax) loss ``mean(log(1 - sigmoid(l)))``.
        Per image, the derivatives with respect to the logit are ``-(1 - D)`` and ``-D``: their ratio is
        ``(1 - D) / D``, large where the discriminator rejects the image.

    Reference: Goodfellow et al., NeurIPS 2014, section 3 (the non-saturating objective).
    """
    weights = generator.trainable_variables
    d_fake = ops.mean(ops.sigmoid(discriminator(generator(z, training=False), training=False)))
    norms = {}
    for name, non_saturating in (("non_saturating", True), ("saturating", False)):
        _, grads = autodiff.gradients(
            lambda: generator_loss(discriminator(generator(z, training=False), training=False), non_saturating),
            weights)
        norms[name] = float(np.sqrt(sum(float(ops.convert_to_numpy(ops.sum(g * g))) for g in grads)))
    return {"d_fake": float(ops.convert_to_numpy(d_fake)), **norms}


# --- the model ------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="course_lib")
class DCGAN(SubmodelConfig, keras.Model):
    """A GAN as one ``keras.Model``: two sub-models, two optimizers, an alternating ``train_step``.

    Each ``train_step`` (one batch of real images in [-1, 1]) runs ``step_fn(self, real_images)`` (default
    :func:`alternating_step`: a discriminator update, then a generator update with fresh noise drawn from the
    model's own ``keras.random.SeedGenerator``) and tracks the mean losses and the discriminator's mean
    probabilities on real and generated images. Calling the model maps noise to images: ``gan(z)`` is
    ``generator(z)``.

    **Every backend.** The step is written with :func:`course_lib.autodiff.gradients` and
    ``optimizer.apply``, which work on TensorFlow, JAX and PyTorch. On TensorFlow and PyTorch ``fit`` calls
    ``train_step(data)`` and the step updates the variables in place (on PyTorch under ``torch.no_grad()``).
    On JAX ``fit`` compiles ``train_step(state, data) -> (logs, state)``, a pure function of the variables'
    values: the same step runs inside :func:`course_lib.autodiff.run_stateless`, which feeds it the values
    of ``state`` and collects the assignments it makes. The JAX trainer's ``state`` holds the model's
    variables and ``self.optimizer``'s, not the two optimizers a GAN uses: their variables (Adam's moments and
    step counters) would be baked into the compiled step as constants and never advance. So both optimizers
    are built in :meth:`compile` and their variables are listed in :attr:`variables` (hence in
    ``non_trainable_variables``), and travel through the compiled step like batch-norm statistics;
    ``self.optimizer`` is an unused ``SGD`` without state.

    Use::

        gan = DCGAN(build_generator(32, (28, 28, 1)), build_discriminator((28, 28, 1)), seed=0)
        gan.compile()                          # Adam(2e-4, beta_1=0.5) for both, as in Radford et al. 2016
        gan.fit(to_tanh_range(x_train), epochs=8, batch_size=32, callbacks=[SampleGrid()])

    Args:
        generator: a model ``(batch, latent_dim) -> (batch, h, w, c)`` in [-1, 1].
        discriminator: a model ``(batch, h, w, c) -> (batch, 1)`` logits.
        latent_dim: noise size; default ``generator.input_shape[-1]``.
        seed: integer seed of the noise source (``None``: drawn from Keras's global seed).
        step_fn: ``step_fn(gan, real_images) -> {"d_loss", "g_loss", "d_real", "d_fake"}``, the training step
            (default :func:`alternating_step`); the trackers of the keys it returns are updated and logged. Not
            saved: a reloaded model uses the default.

    References: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Radford, Metz & Chintala,
    "Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks", ICLR 2016.
    """

    SUBMODELS = ("generator", "discriminator")

    def __init__(self, generator, discriminator, latent_dim: int | None = None, seed: int | None = None,
                 step_fn=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim or generator.input_shape[-1])
        self.seed = seed
        self.step_fn = step_fn
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        if generator.built and discriminator.built:  # e.g. Functional models: nothing left to build
            self.built = True

    def build(self, input_shape=None):
        self.generator.build((None, self.latent_dim))
        self.discriminator.build((None, *self.generator.output_shape[1:]))
        self.built = True

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Set the two optimizers (instances or names; default for each: ``Adam(2e-4, beta_1=0.5)``, as in
        Radford et al. 2016) and create their variables.

        Extra keyword arguments go to ``keras.Model.compile`` (e.g. ``jit_compile``); the model has no
        ``loss`` argument: its losses are :func:`course_lib.losses.discriminator_loss` and
        :func:`course_lib.losses.generator_loss`.
        """
        kwargs.setdefault("optimizer", keras.optimizers.SGD())  # unused by the step; SGD keeps no state
        super().compile(**kwargs)
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5)
        if not self.built:
            self.build()
        # Built here, outside any compiled function (JAX cannot create variables while it traces a step); an
        # optimizer that comes already built (on other variables) is kept as it is.
        for optimizer, model in ((self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)):
            if not optimizer.built:
                optimizer.build(model.trainable_variables)

    @property
    def variables(self):
        """The model's variables and, once compiled, both optimizers' (see the class docstring: JAX)."""
        own = list(super().variables)
        seen = {id(v) for v in own}
        for optimizer in (getattr(self, "d_optimizer", None), getattr(self, "g_optimizer", None)):
            if optimizer is not None and optimizer.built:
                own += [v for v in optimizer.variables if id(v) not in seen]
        return own

    @property
    def metrics(self):
        """The trackers of ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (reset every epoch)."""
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def sample_noise(self, n):
        """``n`` noise vectors ``(n, latent_dim)`` from the model's seeded normal source (advances its state)."""
        return keras.random.normal((n, self.latent_dim), seed=self.seed_generator)

    def _step(self, data):
        real_images = data[0] if isinstance(data, (tuple, list)) else data
        logs = (self.step_fn or alternating_step)(self, real_images)
        tracked = [tracker for tracker in self.metrics if tracker.name in logs]  # a step may log fewer values
        for tracker in tracked:
            tracker.update_state(logs[tracker.name])
        return {tracker.name: tracker.result() for tracker in tracked}

    def train_step(self, *args):
        if keras.backend.backend() == "jax":  # the JAX trainer: train_step(state, data) -> (logs, state)
            state, data = args
            groups = (self.trainable_variables, self.non_trainable_variables, self.optimizer.variables,
                      self.metrics_variables)
            variables = [v for group in groups for v in group]
            logs, values = autodiff.run_stateless(self._step, variables, [t for part in state for t in part], data)
            new_state, start = [], 0
            for group in groups:
                new_state.append(values[start:start + len(group)])
                start += len(group)
            return logs, tuple(new_state)
        (data,) = args  # TensorFlow and PyTorch: train_step(data) -> logs, the variables updated in place
        with autodiff.no_grad():
            return self._step(data)

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "seed": self.seed})
        return config

    # Keras saves layer variables but not SeedGenerator states; store the noise state too, so that a reloaded
    # model continues with exactly the noise the original would have drawn.
    _NOISE_STATE_KEY = "noise_seed_state"

    def save_own_variables(self, store):
        """Save the model's own variables, plus the noise ``SeedGenerator``'s state (an integer ``(2,)`` array)."""
        super().save_own_variables(store)
        store[self._NOISE_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        """Restore what :meth:`save_own_variables` stored (without a stored noise state, the current one is kept)."""
        own = self._trainable_variables + self._non_trainable_variables
        for i, variable in enumerate(own):
            variable.assign(store[f"{i}"])
        if self._NOISE_STATE_KEY in store.keys():
            self.seed_generator.state.assign(np.asarray(store[self._NOISE_STATE_KEY]))

    def get_compile_config(self):
        """The two serialized optimizers, ``{"d_optimizer", "g_optimizer"}``, or ``{}`` when not compiled."""
        if not self.compiled:
            return {}
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer)}

    def compile_from_config(self, config):
        """Re-compile with the two optimizers of :meth:`get_compile_config` (``keras.models.load_model`` calls it)."""
        self.compile(d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
                     g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]))


# --- sampling and the image-grid callback ---------------------------------------------------------

def generate_images(generator, n: int, seed: int = 0, latent_dim: int | None = None, batch_size: int = 512):
    """Generate ``n`` images with fixed noise and return them in [0, 1].

    Args:
        generator: model ``(batch, latent_dim) -> (batch, h, w, c)`` in [-1, 1] (or a :class:`DCGAN`).
        n: number of images.
        seed: seed of the noise (same seed, same images).
        latent_dim: default ``generator.input_shape[-1]``.
        batch_size: images generated per call.

    Returns:
        float32 NumPy array ``(n, h, w, c)`` in [0, 1] (rescaled with :func:`to_unit_range`).
    """
    if isinstance(generator, DCGAN):
        generator = generator.generator
    latent_dim = int(latent_dim or generator.input_shape[-1])
    z = keras.random.normal((n, latent_dim), seed=keras.random.SeedGenerator(seed))
    chunks = [generator(z[i:i + batch_size], training=False) for i in range(0, n, batch_size)]
    return to_unit_range(ops.concatenate(chunks, axis=0))


class SampleGrid(keras.callbacks.Callback):
    """Keep a grid of generated samples (fixed noise) after chosen epochs of a :class:`DCGAN`'s ``fit``.

    The same noise is used at every epoch, so the grids show how the generator's map from noise to images
    evolves. Before the first epoch the untrained generator's grid is stored as epoch 0. Optionally, a score
    function (for example :meth:`course_lib.evaluation.generative.FrechetEvaluator.score`) is applied to a larger sample at the
    same epochs.

    Args:
        n_images: images per grid.
        every: keep a grid after every ``every``-th epoch (the last epoch is always kept).
        seed: seed of the fixed noise (the scored sample uses ``seed + 1``).
        score_fn: optional callable ``images (n, h, w, c) in [0, 1] -> {name: float}``.
        n_score: number of generated images passed to ``score_fn``.

    Attributes:
        grids: ``{epoch: float32 array (n_images, h, w, c) in [0, 1]}``, epochs counted from 1 (0 = before
            training; a second ``fit`` call continues the numbering only if given ``initial_epoch``).
        scores: ``{epoch: score_fn(samples)}`` for the same epochs (empty without ``score_fn``).

    Raises:
        ValueError: ``n_images``, ``every`` or ``n_score`` < 1 (``n_score`` < 2 with a ``score_fn``).
    """

    def __init__(self, n_images: int = 20, every: int = 1, seed: int = 0, score_fn=None, n_score: int = 500):
        super().__init__()
        if n_images < 1 or every < 1 or (score_fn is not None and n_score < 2):
            raise ValueError(f"need n_images >= 1, every >= 1 and n_score >= 2, got {n_images}, {every}, {n_score}")
        self.n_images, self.every, self.seed = int(n_images), int(every), int(seed)
        self.score_fn, self.n_score = score_fn, int(n_score)
        self.grids: dict[int, np.ndarray] = {}
        self.scores: dict[int, dict] = {}
        self._noise = None

    def _record(self, epoch: int) -> None:
        generator = self.model.generator
        if self._noise is None:
            self._noise = keras.random.normal((self.n_images, generator.input_shape[-1]),
                                              seed=keras.random.SeedGenerator(self.seed))
        self.grids[epoch] = to_unit_range(generator(self._noise, training=False))
        if self.score_fn is not None:
            self.scores[epoch] = dict(self.score_fn(generate_images(generator, self.n_score, seed=self.seed + 1)))

    def on_train_begin(self, logs=None):
        """Store the untrained generator's grid (and score) as epoch 0, unless already stored."""
        if 0 not in self.grids:
            self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        """Store the grid (and score) as epoch ``epoch + 1`` every ``every`` epochs and after the last one."""
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every == 0 or epoch + 1 == last:
            self._record(epoch + 1)

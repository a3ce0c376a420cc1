"""Unit tests for course_lib.checks.day06: each self-check passes the reference answer, fails known wrong
answers (with a message that names the mistake), says "todo" for an unwritten answer and "reference" for an
answer that calls course_lib's implementation."""

import keras
import numpy as np
from keras import layers, ops

from course_lib import autodiff, losses
from course_lib.checks import day06 as checks
from course_lib.models import gan as gan_lib


def todo(*args, **kwargs):
    raise NotImplementedError()


# --- Exercise 6.1: the generator ------------------------------------------------------------------

def solution_generator(latent_dim, image_shape):
    height, width, channels = image_shape
    noise = keras.Input((latent_dim,))
    x = layers.Dense((height // 4) * (width // 4) * 16, use_bias=False)(noise)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Reshape((height // 4, width // 4, 16))(x)
    x = layers.Conv2DTranspose(8, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(noise, images)


def sigmoid_generator(latent_dim, image_shape):  # outputs in [0, 1]: the data were rescaled to [-1, 1]
    height, width, channels = image_shape
    noise = keras.Input((latent_dim,))
    x = layers.Dense((height // 4) * (width // 4) * 8)(noise)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Reshape((height // 4, width // 4, 8))(x)
    x = layers.Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu")(x)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="sigmoid")(x)
    return keras.Model(noise, images)


def normalised_output_generator(latent_dim, image_shape):  # batch norm after the output layer
    height, width, channels = image_shape
    noise = keras.Input((latent_dim,))
    x = layers.Reshape((height // 4, width // 4, 8))(layers.Dense((height // 4) * (width // 4) * 8)(noise))
    x = layers.Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same")(x)
    images = layers.Activation("tanh")(layers.BatchNormalization()(x))
    return keras.Model(noise, images)


def test_generator_check():
    assert checks.check_generator(solution_generator).passed
    assert checks.check_generator(sigmoid_generator).status == "fail"
    result = checks.check_generator(normalised_output_generator)
    assert result.status == "fail" and "output" in result.message
    assert checks.check_generator(todo).status == "todo"
    calls_library = lambda latent_dim, shape: gan_lib.build_generator(latent_dim, shape, filters=8)  # noqa: E731
    assert checks.check_generator(calls_library).status == "reference"


# --- Exercise 6.2: the losses ---------------------------------------------------------------------

def test_losses_check():
    def d_loss(real_logits, fake_logits):
        return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))

    def g_loss(fake_logits):
        return ops.mean(ops.softplus(-fake_logits))

    assert checks.check_losses(d_loss, g_loss).passed

    def saturating(fake_logits):
        return -ops.mean(ops.softplus(fake_logits))

    result = checks.check_losses(d_loss, saturating)
    assert result.status == "fail" and "saturating" in result.message

    def unstable_d_loss(real_logits, fake_logits):
        return -ops.mean(ops.log(ops.sigmoid(real_logits))) - ops.mean(ops.log(1 - ops.sigmoid(fake_logits)))

    assert checks.check_losses(unstable_d_loss, g_loss).status == "fail"
    assert checks.check_losses(todo, todo).status == "todo"
    assert checks.check_losses(losses.discriminator_loss, losses.generator_loss).status == "reference"


# --- Exercise 6.3: the alternating step -----------------------------------------------------------

def solution_step(gan, real_images):
    generator, discriminator = gan.generator, gan.discriminator
    n = ops.shape(real_images)[0]
    fake_images = ops.stop_gradient(generator(gan.sample_noise(n), training=True))

    def d_loss_fn():
        real_logits = discriminator(real_images, training=True)
        fake_logits = discriminator(fake_images, training=True)
        return losses.discriminator_loss(real_logits, fake_logits), (real_logits, fake_logits)

    d_weights = discriminator.trainable_variables
    (d_loss, (real_logits, fake_logits)), grads = autodiff.gradients(d_loss_fn, d_weights, has_aux=True)
    gan.d_optimizer.apply(grads, d_weights)
    z = gan.sample_noise(n)
    g_weights = generator.trainable_variables
    g_loss, grads = autodiff.gradients(
        lambda: losses.generator_loss(discriminator(generator(z, training=True), training=False)), g_weights)
    gan.g_optimizer.apply(grads, g_weights)
    return {"d_loss": d_loss, "g_loss": g_loss, "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits))}


def step_that_also_trains_d(gan, real_images, fresh_optimizer=True):
    n = ops.shape(real_images)[0]
    d_loss, real_logits, fake_logits = _d_update(gan, real_images, n)
    z = gan.sample_noise(n)
    both = gan.generator.trainable_variables + gan.discriminator.trainable_variables
    g_loss, grads = autodiff.gradients(
        lambda: losses.generator_loss(gan.discriminator(gan.generator(z, training=True), training=False)), both)
    optimizer = keras.optimizers.SGD(0.1) if fresh_optimizer else gan.g_optimizer
    optimizer.apply(grads, both)    # the mistake: the generator's step also moves D
    return {"d_loss": d_loss, "g_loss": g_loss, "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits))}


def _d_update(gan, real_images, n, z=None):
    """One discriminator update on real images and generated ones (from ``z``, else fresh noise)."""
    z = gan.sample_noise(n) if z is None else z
    fake_images = ops.stop_gradient(gan.generator(z, training=True))

    def d_loss_fn():
        real_logits = gan.discriminator(real_images, training=True)
        fake_logits = gan.discriminator(fake_images, training=True)
        return losses.discriminator_loss(real_logits, fake_logits), (real_logits, fake_logits)

    d_weights = gan.discriminator.trainable_variables
    (d_loss, (real_logits, fake_logits)), grads = autodiff.gradients(d_loss_fn, d_weights, has_aux=True)
    gan.d_optimizer.apply(grads, d_weights)
    return d_loss, real_logits, fake_logits


def step_reusing_noise(gan, real_images):
    n = ops.shape(real_images)[0]
    z = gan.sample_noise(n)
    d_loss, real_logits, fake_logits = _d_update(gan, real_images, n, z)  # the mistake: G then reuses this z
    g_weights = gan.generator.trainable_variables
    g_loss, grads = autodiff.gradients(
        lambda: losses.generator_loss(gan.discriminator(gan.generator(z, training=True), training=False)),
        g_weights)
    gan.g_optimizer.apply(grads, g_weights)
    return {"d_loss": d_loss, "g_loss": g_loss, "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits))}


def test_train_step_check():
    assert checks.check_train_step(solution_step).passed
    result = checks.check_train_step(step_that_also_trains_d)
    assert result.status == "fail" and "generator's trainable variables only" in result.message
    result = checks.check_train_step(lambda gan, real: step_that_also_trains_d(gan, real, fresh_optimizer=False))
    assert result.status == "fail" and "its own network" in result.message
    result = checks.check_train_step(step_reusing_noise)
    assert result.status == "fail" and "noise" in result.message
    assert checks.check_train_step(todo).status == "todo"
    assert checks.check_train_step(gan_lib.alternating_step).status == "reference"


# --- Exercise 6.4: gradient norms (investigate) ---------------------------------------------------

def solution_norms(generator, discriminator, z):
    def logits():
        return discriminator(generator(z, training=False), training=False)

    weights = generator.trainable_variables
    _, grads_ns = autodiff.gradients(lambda: ops.mean(ops.softplus(-logits())), weights)
    _, grads_sat = autodiff.gradients(lambda: -ops.mean(ops.softplus(logits())), weights)
    norm = lambda grads: float(np.sqrt(sum(float(ops.convert_to_numpy(ops.sum(g * g))) for g in grads)))  # noqa: E731
    return {"d_fake": float(ops.convert_to_numpy(ops.mean(ops.sigmoid(logits())))),
            "non_saturating": norm(grads_ns), "saturating": norm(grads_sat)}


def test_gradient_norms_check():
    assert checks.check_gradient_norms(solution_norms).passed

    def mean_logit(generator, discriminator, z):  # d_fake as the mean logit, not the probability
        out = solution_norms(generator, discriminator, z)
        out["d_fake"] = float(ops.convert_to_numpy(ops.mean(discriminator(generator(z, training=False),
                                                                          training=False))))
        return out

    result = checks.check_gradient_norms(mean_logit)
    assert result.status == "fail" and "probability" in result.message

    def swapped(generator, discriminator, z):
        out = solution_norms(generator, discriminator, z)
        return {**out, "non_saturating": out["saturating"], "saturating": out["non_saturating"]}

    assert checks.check_gradient_norms(swapped).status == "fail"
    assert checks.check_gradient_norms(todo).status == "todo"
    assert checks.check_gradient_norms(gan_lib.generator_gradient_norms).status == "reference"


def test_hints_are_tiered_and_revealed_one_at_a_time():
    assert set(checks.HINTS) == {"day06.generator", "day06.losses", "day06.train_step", "day06.saturation"}
    assert all(2 <= len(h.tiers) <= 3 for h in checks.HINTS.values())

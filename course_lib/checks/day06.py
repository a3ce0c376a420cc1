"""Self-checks for Day 06 (GANs): generator and discriminator, the two losses, one alternating train step.

The references are :mod:`course_lib.models.gan`'s builders, losses and steps.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day06.generator": Hints(
        todo="Implement the generator described above the exercise cell.",
        tiers=("Input((latent_dim,)) -> Dense((h//4)*(w//4)*C) -> Reshape((h//4, w//4, C)) -> two "
                          "Conv2DTranspose(..., strides=2, padding='same'), the last with image_shape[-1] channels "
                          "and activation='tanh'",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day06.discriminator": Hints(
        todo="Implement the discriminator described above the exercise cell.",
        tiers=("Input(image_shape) -> Conv2D(32, 4, strides=2, padding='same') -> LeakyReLU(0.2) -> "
                          "Conv2D(64, 4, strides=2, padding='same') -> LeakyReLU(0.2) -> Flatten -> Dense(1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day06.losses": Hints(
        todo="Implement the GAN losses described above the exercise cell.",
        tiers=("-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l): "
                          "L_D = mean(softplus(-real)) + mean(softplus(fake)); L_G = mean(softplus(-fake))",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day06.train_step": Hints(
        todo="Implement the one alternating train step described above the exercise cell.",
        tiers=("d_loss, grads = gradients(lambda: discriminator_loss(D(real), D(G(z))), "
                          "D.trainable_weights); d_optimizer.apply_gradients(zip(grads, D.trainable_weights)); then "
                          "the same with generator_loss(D(G(z))) and G.trainable_weights",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _noise(n, latent_dim, seed=0):
    return np.random.default_rng(seed).normal(size=(n, latent_dim)).astype(np.float32)


def check_generator(make_generator):
    """Check ``make_generator(latent_dim, image_shape) -> keras.Model`` (Exercise 6.1, generator)."""
    def test():
        import keras

        for latent_dim, shape in ((16, (8, 8, 1)), (10, (28, 28, 1))):
            keras.utils.set_random_seed(0)
            generator = make_generator(latent_dim, shape)
            expect(isinstance(generator, keras.Model),
                   f"make_generator should return a keras.Model, got {type(generator)}")
            expect(tuple(generator.input_shape) == (None, latent_dim),
                   f"the generator's input should be noise of shape (None, {latent_dim}), got {generator.input_shape}")
            images = np.asarray(generator(_noise(6, latent_dim), training=False))
            expect(images.shape == (6, *shape),
                   f"for image_shape {shape}: expected output (6, *{shape}), got {images.shape}")
            expect(images.min() >= -1.0 and images.max() <= 1.0,
                   f"outputs should lie in [-1, 1] (a tanh output), got [{images.min():.2f}, {images.max():.2f}]")
            expect(images.min() < 0.0, "no output is negative: the data were rescaled to [-1, 1], so end with a tanh "
                                       "(a sigmoid only covers [0, 1])")
            expect(np.abs(images[0] - images[1]).max() > 1e-4, "different noise vectors should give different images")
        return "noise (None, latent_dim) -> images (n, h, w, c) in [-1, 1], for 8x8 and 28x28"

    return run_check("day06.generator", "Exercise 6.1a - generator", test)


def check_discriminator(make_discriminator):
    """Check ``make_discriminator(image_shape) -> keras.Model`` giving logits (Exercise 6.1, discriminator)."""
    def test():
        import keras

        rng = np.random.default_rng(0)
        for shape in ((8, 8, 1), (28, 28, 1)):
            keras.utils.set_random_seed(0)
            discriminator = make_discriminator(shape)
            expect(isinstance(discriminator, keras.Model), f"should return a keras.Model, got {type(discriminator)}")
            expect(tuple(discriminator.input_shape) == (None, *shape),
                   f"the input should be images (None, *{shape}), got {discriminator.input_shape}")
            images = rng.uniform(-1, 1, size=(6, *shape)).astype(np.float32)
            logits = np.asarray(discriminator(images, training=False))
            expect(logits.shape == (6, 1), f"expected one logit per image, shape (6, 1), got {logits.shape}")
            large = np.asarray(discriminator(1000.0 * images, training=False))
            expect(np.abs(large).max() > 1.0,
                   "the output looks squashed into [0, 1]: return logits (a Dense(1) without sigmoid); the losses "
                   "apply the sigmoid themselves")
        return "images -> one unbounded logit per image, for 8x8 and 28x28"

    return run_check("day06.discriminator", "Exercise 6.1b - discriminator", test)


def check_losses(discriminator_loss, generator_loss):
    """Check ``discriminator_loss(real_logits, fake_logits)`` and the non-saturating ``generator_loss(fake_logits)``."""
    def test():
        from course_lib.models import gan as reference

        rng = np.random.default_rng(0)
        for _ in range(3):
            real = rng.normal(scale=3, size=(16, 1)).astype(np.float32)
            fake = rng.normal(scale=3, size=(16, 1)).astype(np.float32)
            got, want = float(discriminator_loss(real, fake)), float(reference.discriminator_loss(real, fake))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5),
                   f"discriminator_loss = {got:.5f}, expected {want:.5f} (real labelled 1, generated 0, mean over "
                   "each batch, the two halves added)")
            got, want = float(generator_loss(fake)), float(reference.generator_loss(fake))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5), f"generator_loss = {got:.5f}, expected {want:.5f}")
        confident = np.full((4, 1), -10.0, np.float32)  # D is sure the samples are fake
        value = float(generator_loss(confident))
        expect(value > 5.0, f"generator_loss at logit -10 is {value:.4g}: that is the saturating loss log(1 - D); the "
                            "non-saturating loss -log D(G(z)) is about 10 there")
        extreme = np.array([[200.0], [-200.0]], np.float32)
        expect(np.isfinite(float(discriminator_loss(extreme, extreme))) and np.isfinite(float(generator_loss(extreme))),
               "the losses overflow for logits of +-200: compute them from logits (softplus), not log(sigmoid(.))")
        return "both losses match the reference, are non-saturating and stable for large logits"

    return run_check("day06.losses", "Exercise 6.2 - GAN losses", test)


def _check_models(seed=0):
    """A small generator without batch norm and a discriminator without dropout: training flags do not matter."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    z = keras.Input((6,))
    x = layers.Dense(2 * 2 * 8)(z)
    x = layers.Reshape((2, 2, 8))(layers.LeakyReLU(0.2)(x))
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    generator = keras.Model(z, layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh")(x))
    images = keras.Input((8, 8, 1))
    y = layers.Conv2D(4, 3, strides=2, padding="same")(images)
    y = layers.Flatten()(layers.LeakyReLU(0.2)(y))
    discriminator = keras.Model(images, layers.Dense(1)(y))
    return generator, discriminator


def _snapshot(model):
    import keras

    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def _same(a, b, atol=1e-5):
    return all(np.allclose(x, y, atol=atol) for x, y in zip(a, b))


def _reference_variants(real, z):
    """Final (generator, discriminator) weights of the correct step and of two common mistakes."""
    import keras

    from course_lib.models import gan as reference

    sgd = lambda: keras.optimizers.SGD(0.1)  # noqa: E731
    out = {}
    g, d = _check_models()
    d_loss, _, _ = reference.discriminator_step(g, d, sgd(), real, z)
    g_loss = reference.generator_step(g, d, sgd(), z)
    out["correct"] = (_snapshot(g), _snapshot(d), float(d_loss), float(g_loss))
    g, d = _check_models()   # mistake: the generator step also updates the discriminator
    reference.discriminator_step(g, d, sgd(), real, z)
    both = g.trainable_weights + d.trainable_weights
    _, grads = reference.gradients(lambda: reference.generator_loss(d(g(z, training=True))), both)
    sgd().apply_gradients(zip(grads, both))
    out["generator step also trains D"] = (_snapshot(g), _snapshot(d))
    g, d = _check_models()   # mistake: generator step first
    reference.generator_step(g, d, sgd(), z)
    reference.discriminator_step(g, d, sgd(), real, z)
    out["generator step first"] = (_snapshot(g), _snapshot(d))
    g, d = _check_models()   # mistake: the saturating generator loss
    reference.discriminator_step(g, d, sgd(), real, z)
    reference.generator_step(g, d, sgd(), z, non_saturating=False)
    out["saturating loss"] = (_snapshot(g), _snapshot(d))
    return out


def check_train_step(train_step):
    """Check ``train_step(generator, discriminator, d_optimizer, g_optimizer, real_images, z) -> (d_loss, g_loss)``.

    The student's step is compared with :func:`course_lib.models.gan.discriminator_step` followed by
    :func:`course_lib.models.gan.generator_step` (same noise ``z`` for both) on identical copies of two small
    models, with plain SGD so that every weight can be compared exactly; two common mistakes are recognised.
    """
    def test():
        import keras

        rng = np.random.default_rng(1)
        real = rng.uniform(-1, 1, size=(12, 8, 8, 1)).astype(np.float32)
        z = _noise(12, 6, seed=2)
        variants = _reference_variants(real, z)
        g_ref, d_ref, d_loss_ref, g_loss_ref = variants["correct"]
        g_new, d_new = _check_models()
        d_start, g_start = _snapshot(d_new), _snapshot(g_new)
        out = train_step(g_new, d_new, keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), real, z)
        expect(isinstance(out, (tuple, list)) and len(out) == 2, "train_step should return (d_loss, g_loss)")
        d_loss, g_loss = (float(np.asarray(v)) for v in out)
        g_got, d_got = _snapshot(g_new), _snapshot(d_new)
        expect(not _same(d_got, d_start, atol=1e-8), "the discriminator's weights did not change: apply "
                                                     "d_optimizer to its gradients")
        expect(not _same(g_got, g_start, atol=1e-8), "the generator's weights did not change: apply "
                                                     "g_optimizer to its gradients")
        if not (_same(g_got, g_ref) and _same(d_got, d_ref)):
            explanations = {
                "generator step also trains D": "your generator step also updated the discriminator (it learned "
                                                "that generated images are real): differentiate and update "
                                                "generator.trainable_weights only",
                "generator step first": "you ran the generator step before the discriminator step: update D "
                                        "first, then G against the updated D",
                "saturating loss": "your generator step minimises the saturating loss log(1 - D(G(z))): use the "
                                   "non-saturating generator_loss, -log D(G(z))",
            }
            for name, (g_bad, d_bad) in ((k, v) for k, v in variants.items() if k != "correct"):
                expect(not (_same(g_got, g_bad) and _same(d_got, d_bad)), explanations[name])
            expect(_same(d_got, d_ref), "the discriminator's weights differ from the reference: train D on real "
                                        "images (target 1) and generator(z) (target 0) with discriminator_loss")
            expect(False, "the generator's weights differ from the reference: after the discriminator step, "
                          "minimise the non-saturating generator_loss of discriminator(generator(z)) with respect "
                          "to generator.trainable_weights")
        expect(np.isclose(d_loss, d_loss_ref, rtol=1e-4), f"d_loss {d_loss:.5f}, expected {d_loss_ref:.5f}")
        expect(np.isclose(g_loss, g_loss_ref, rtol=1e-4), f"g_loss {g_loss:.5f}, expected {g_loss_ref:.5f}")
        return "discriminator step then generator step, each updating only its own network, as the reference"

    return run_check("day06.train_step", "Exercise 6.3 - one alternating train step", test)

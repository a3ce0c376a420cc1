"""Self-checks for Day 06 (GANs): the generator, the two losses, the alternating train step, and the
investigation of the saturating generator loss.

The references are :mod:`course_lib.models.gan`'s builder and steps and :mod:`course_lib.losses`' GAN losses;
an answer that calls them gets the status ``"reference"``. The checks build their small models with seeded
initialisers and never reset Keras's global seed (the notebook's own seeding stays in force).
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (CheckFailed, Hints, ReferenceSpy, assert_all_passed, expect, hint,  # noqa: F401
                               register_hints, run_check, summary, use_or_reference)

HINTS = register_hints({
    "day06.generator": Hints(
        todo="Write make_generator(latent_dim, image_shape): a Keras model from noise vectors to images in [-1, 1] "
             "with the image's shape, following the DCGAN rules stated above the exercise.",
        tiers=("Start from a small feature map a quarter of the image's height and width, made by a dense layer "
               "from the noise and reshaped; two transposed convolutions with stride 2 then double its sides "
               "twice, and the last one has as many channels as the image.",
               "DCGAN's rules: batch normalisation then ReLU after every hidden layer, and a tanh activation on "
               "the output layer, which is not batch-normalised. Keras: the Functional API with keras.Input, "
               "layers.Dense, layers.Reshape, layers.Conv2DTranspose with padding 'same', layers.BatchNormalization.",
               "The usual slips: a sigmoid output (the images were rescaled to [-1, 1], so the output needs tanh), "
               "a Reshape whose target does not hold exactly as many values as the dense layer produces, and "
               "padding 'valid', which does not double the sides exactly.")),
    "day06.losses": Hints(
        todo="Write discriminator_loss(real_logits, fake_logits) and the non-saturating "
             "generator_loss(fake_logits) with keras.ops, from the discriminator's logits.",
        tiers=("Both are binary cross-entropies computed from logits: real images have target 1 and generated "
               "images target 0 for the discriminator; the generator wants its images to get target 1.",
               "In words: minus log sigmoid(l) equals softplus(-l), and minus log(1 - sigmoid(l)) equals "
               "softplus(l). The discriminator's loss is the batch mean of the first on the real logits plus the "
               "batch mean of the second on the generated logits; the generator's is the batch mean of the first "
               "on the generated logits.",
               "Compute from logits, never log(sigmoid(l)): for a logit of -200 the sigmoid rounds to 0 and its "
               "log is minus infinity. And the generator's loss must be large where D rejects its images (logit "
               "very negative): that is the non-saturating form, not log(1 - D).")),
    "day06.train_step": Hints(
        todo="Write gan_train_step(gan, real_images): one discriminator update, then one generator update with "
             "fresh noise, each changing only its own network; return the dictionary described above the cell.",
        tiers=("Two updates in order. First the discriminator: real images are labelled real, images generated "
               "from gan.sample_noise are labelled fake, and only the discriminator learns. Then the generator: "
               "new noise, generated images pushed through the (just updated) discriminator towards 'real', and "
               "only the generator learns.",
               "Each update is: a function without arguments that computes the loss, autodiff.gradients of it "
               "with respect to one network's trainable_variables (has_aux=True lets the discriminator's loss "
               "function also hand back its logits), then that network's optimizer's apply with the gradients "
               "and the same variables. d_real and d_fake are the batch means of the sigmoid of the "
               "discriminator's logits on the real and on the generated images of the first update.",
               "The usual slips: differentiating the generator's loss with respect to both networks (the "
               "discriminator then learns that generated images are real), updating the generator first, reusing "
               "the first noise batch for the generator update, and the saturating loss log(1 - D(G(z))).")),
    "day06.saturation": Hints(
        todo="Write generator_gradient_norms(generator, discriminator, z): the mean D(G(z)) and the global norm "
             "of the gradient of each generator loss (non-saturating and saturating) with respect to the "
             "generator's trainable variables, without updating anything.",
        tiers=("Two gradients of two losses computed on the same generated images: nothing is applied, only "
               "measured. The global norm is the square root of the sum of the squared entries of all the "
               "gradient tensors together.",
               "autodiff.gradients with the generator's trainable_variables gives a list of tensors; the "
               "non-saturating loss is the batch mean of softplus(-l) and the saturating one the batch mean of "
               "log(1 - sigmoid(l)), that is minus the batch mean of softplus(l). Run both networks in inference "
               "mode (training=False), so that nothing else changes between the two measurements.",
               "Return Python floats, and the mean probability D(G(z)), not the mean logit.")),
})


def _num(x) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _noise(n, latent_dim, seed=0):
    return np.random.default_rng(seed).normal(size=(n, latent_dim)).astype(np.float32)


def check_generator(make_generator):
    """Check ``make_generator(latent_dim, image_shape) -> keras.Model`` (Exercise 6.1)."""
    from course_lib.models import gan as reference

    spy = ReferenceSpy(reference.build_generator)
    make_generator = spy.wrap(make_generator)

    def test():
        import keras
        from keras import layers

        for latent_dim, shape in ((16, (8, 8, 1)), (10, (28, 28, 1))):
            generator = make_generator(latent_dim, shape)
            expect(isinstance(generator, keras.Model),
                   f"make_generator should return a keras.Model, got {type(generator).__name__}")
            expect(tuple(generator.input_shape) == (None, latent_dim),
                   f"the generator's input should be noise of shape (None, {latent_dim}), got {generator.input_shape}")
            images = _num(generator(_noise(6, latent_dim), training=False))
            expect(images.shape == (6, *shape),
                   f"for image_shape {shape}: expected output (6, *{shape}), got {images.shape}")
            expect(images.min() >= -1.0 and images.max() <= 1.0,
                   f"outputs should lie in [-1, 1] (a tanh output), got [{images.min():.2f}, {images.max():.2f}]")
            expect(images.min() < 0.0, "no output is negative: the data were rescaled to [-1, 1], so end with a tanh "
                                       "(a sigmoid only covers [0, 1])")
            expect(np.abs(images[0] - images[1]).max() > 1e-4, "different noise vectors should give different images")
            flat = list(generator._flatten_layers(include_self=False))  # nested blocks included
            kinds = [layer for layer in flat if layer.weights or isinstance(layer, layers.BatchNormalization)]
            norms = [i for i, layer in enumerate(kinds) if isinstance(layer, layers.BatchNormalization)]
            expect(norms, "DCGAN's generator batch-normalises its hidden layers: no BatchNormalization layer found")
            last_weighted = max(i for i, layer in enumerate(kinds) if not isinstance(layer, layers.BatchNormalization))
            expect(max(norms) < last_weighted, "the output layer is batch-normalised: DCGAN normalises every layer "
                                               "of the generator except its output")
        return "noise (None, latent_dim) -> images in [-1, 1] of the image's shape (8x8 and 28x28), batch norm " \
               "in hidden layers only"

    return run_check("day06.generator", "Exercise 6.1 - DCGAN generator", test, spy=spy)


def check_losses(discriminator_loss, generator_loss):
    """Check ``discriminator_loss(real_logits, fake_logits)`` and the non-saturating ``generator_loss(fake_logits)``
    (Exercise 6.2)."""
    from course_lib import losses as reference

    spy = ReferenceSpy(reference.discriminator_loss, reference.generator_loss)
    discriminator_loss, generator_loss = spy.wrap(discriminator_loss), spy.wrap(generator_loss)

    def test():
        rng = np.random.default_rng(0)
        for _ in range(3):
            real = rng.normal(scale=3, size=(16, 1)).astype(np.float32)
            fake = rng.normal(scale=3, size=(16, 1)).astype(np.float32)
            got, want = float(_num(discriminator_loss(real, fake))), float(_num(reference.discriminator_loss(real, fake)))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5),
                   f"discriminator_loss = {got:.5f}, expected {want:.5f} (real labelled 1, generated 0, mean over "
                   "each batch, the two halves added)")
            got, want = float(_num(generator_loss(fake))), float(_num(reference.generator_loss(fake)))
            saturating = float(_num(reference.generator_loss(fake, non_saturating=False)))
            expect(not np.isclose(got, saturating, rtol=1e-4, atol=1e-5),
                   f"generator_loss = {got:.5f}: that is the saturating loss log(1 - D(G(z))), which is flat where D "
                   "rejects the generated images; use the non-saturating loss -log D(G(z))")
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-5), f"generator_loss = {got:.5f}, expected {want:.5f}")
        confident = np.full((4, 1), -10.0, np.float32)  # D is sure the samples are fake
        value = float(_num(generator_loss(confident)))
        expect(value > 5.0, f"generator_loss at logit -10 is {value:.4g}: that is the saturating loss log(1 - D); the "
                            "non-saturating loss -log D(G(z)) is about 10 there")
        extreme = np.array([[200.0], [-200.0]], np.float32)
        expect(np.isfinite(_num(discriminator_loss(extreme, extreme))) and np.isfinite(_num(generator_loss(extreme))),
               "the losses overflow for logits of +-200: compute them from logits (softplus), not log(sigmoid(.))")
        return "both losses match the reference, are non-saturating and stable for large logits"

    return run_check("day06.losses", "Exercise 6.2 - GAN losses", test, spy=spy)


# --- the alternating step --------------------------------------------------------------------------

LATENT = 6


def _check_gan(seed=0, step_fn=None):
    """A small DCGAN (generator without batch norm, discriminator without dropout) with seeded initialisers and
    SGD(0.1) for both networks: training flags do not matter and every weight can be compared exactly."""
    import keras
    from keras import layers

    from course_lib.models.gan import DCGAN

    init = lambda k: keras.initializers.GlorotUniform(seed=seed * 10 + k)  # noqa: E731
    z = keras.Input((LATENT,))
    x = layers.Dense(2 * 2 * 8, kernel_initializer=init(0))(z)
    x = layers.Reshape((2, 2, 8))(layers.LeakyReLU(0.2)(x))
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", kernel_initializer=init(1))(x)
    out = layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh", kernel_initializer=init(2))(x)
    generator = keras.Model(z, out, name="check_generator")
    images = keras.Input((8, 8, 1))
    y = layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, kernel_initializer=init(3))(images)
    y = layers.Flatten()(layers.LeakyReLU(0.2)(y))
    discriminator = keras.Model(images, layers.Dense(1, kernel_initializer=init(4))(y), name="check_discriminator")
    gan = DCGAN(generator, discriminator, seed=seed + 7, step_fn=step_fn)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    return gan


def _weights(model):
    import keras

    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def _same(a, b, atol=1e-5):
    return len(a) == len(b) and all(np.allclose(x, y, atol=atol) for x, y in zip(a, b))


def _variants(real):
    """Final (generator, discriminator) weights after the correct step and after each known mistake."""
    import keras

    from course_lib import autodiff
    from course_lib.models import gan as reference

    sgd = lambda: keras.optimizers.SGD(0.1)  # noqa: E731
    out = {}
    with autodiff.no_grad():
        gan = _check_gan()
        logs = reference.alternating_step(gan, real)
        out["correct"] = (_weights(gan.generator), _weights(gan.discriminator),
                          {k: float(_num(v)) for k, v in logs.items()})

        gan = _check_gan()   # the generator's update also changes the discriminator
        g, d, n = gan.generator, gan.discriminator, len(real)
        reference.discriminator_step(g, d, sgd(), real, gan.sample_noise(n))
        z = gan.sample_noise(n)
        both = g.trainable_variables + d.trainable_variables
        _, grads = autodiff.gradients(lambda: reference.generator_loss(d(g(z, training=True), training=False)), both)
        sgd().apply(grads, both)
        out["generator step also trains D"] = (_weights(g), _weights(d))

        gan = _check_gan()   # generator update first
        g, d = gan.generator, gan.discriminator
        z_d, z_g = gan.sample_noise(n), gan.sample_noise(n)
        reference.generator_step(g, d, sgd(), z_g)
        reference.discriminator_step(g, d, sgd(), real, z_d)
        out["generator step first"] = (_weights(g), _weights(d))

        gan = _check_gan()   # the same noise for both updates
        g, d = gan.generator, gan.discriminator
        z = gan.sample_noise(n)
        reference.discriminator_step(g, d, sgd(), real, z)
        reference.generator_step(g, d, sgd(), z)
        out["same noise"] = (_weights(g), _weights(d))

        gan = _check_gan()   # the saturating generator loss
        g, d = gan.generator, gan.discriminator
        reference.discriminator_step(g, d, sgd(), real, gan.sample_noise(n))
        reference.generator_step(g, d, sgd(), gan.sample_noise(n), non_saturating=False)
        out["saturating loss"] = (_weights(g), _weights(d))
    return out


_EXPLANATIONS = {
    "generator step also trains D": "your generator update also changed the discriminator (it learned that "
                                    "generated images are real): differentiate and update the generator's "
                                    "trainable variables only",
    "generator step first": "you updated the generator before the discriminator: update D first, then G against "
                            "the updated D",
    "same noise": "your generator update reused the noise of the discriminator update: draw a fresh batch with "
                  "gan.sample_noise for it",
    "saturating loss": "your generator update minimises the saturating loss log(1 - D(G(z))): use the "
                       "non-saturating generator loss, -log D(G(z))",
}


def check_train_step(gan_train_step):
    """Check ``gan_train_step(gan, real_images) -> {"d_loss", "g_loss", "d_real", "d_fake"}`` (Exercise 6.3).

    The step runs on a small :class:`~course_lib.models.gan.DCGAN` with SGD and is compared, weight by weight,
    with :func:`course_lib.models.gan.alternating_step` on an identical copy; four common mistakes are
    recognised. Then it trains a copy inside ``fit`` (compiled on this backend) for two steps, which must end
    where two eager reference steps end.
    """
    from course_lib.models import gan as reference

    spy = ReferenceSpy(reference.alternating_step, reference.discriminator_step, reference.generator_step,
                       reference.DCGAN.train_step)
    student = spy.wrap(gan_train_step)

    def run(gan, real):
        from course_lib import autodiff

        try:
            with autodiff.no_grad():
                return student(gan, real)
        except ValueError as error:
            if "Unknown variable" in str(error):
                raise CheckFailed("an optimizer was asked to update variables of the other network: each "
                                  "optimizer updates only its own network's trainable variables") from None
            raise

    def test():
        import keras

        real = np.random.default_rng(1).uniform(-1, 1, size=(12, 8, 8, 1)).astype(np.float32)
        variants = _variants(real)
        g_ref, d_ref, logs_ref = variants["correct"]
        gan = _check_gan()
        g_start, d_start = _weights(gan.generator), _weights(gan.discriminator)
        logs = run(gan, real)
        expect(isinstance(logs, dict), f"gan_train_step should return a dict, got {type(logs).__name__}")
        missing = sorted(set(logs_ref) - set(logs))
        expect(not missing, f"the returned dict lacks {missing}")
        g_got, d_got = _weights(gan.generator), _weights(gan.discriminator)
        expect(not _same(d_got, d_start, atol=1e-8), "the discriminator's weights did not change: apply "
                                                     "gan.d_optimizer to its gradients")
        expect(not _same(g_got, g_start, atol=1e-8), "the generator's weights did not change: apply "
                                                     "gan.g_optimizer to its gradients")
        if not (_same(g_got, g_ref) and _same(d_got, d_ref)):
            for name, (g_bad, d_bad) in ((k, v) for k, v in variants.items() if k != "correct"):
                expect(not (_same(g_got, g_bad) and _same(d_got, d_bad)), _EXPLANATIONS[name])
            expect(_same(d_got, d_ref), "the discriminator's weights differ from the reference: train D on the "
                                        "real images (target 1) and on images generated from gan.sample_noise "
                                        "(target 0) with the discriminator loss")
            expect(False, "the generator's weights differ from the reference: after the discriminator update, "
                          "draw new noise and minimise the non-saturating generator loss of D(G(z)) with respect "
                          "to the generator's trainable variables")
        for name, want in logs_ref.items():
            got = float(_num(logs[name]))
            expect(np.isclose(got, want, rtol=1e-4, atol=1e-6), f"{name} = {got:.5f}, expected {want:.5f}")

        # the same step inside fit (a compiled function on every backend) for two batches
        trained = _check_gan(step_fn=student)
        trained.fit(real, epochs=1, batch_size=6, shuffle=False, verbose=0)
        eager = _check_gan()
        from course_lib import autodiff

        with autodiff.no_grad():
            for start in (0, 6):
                reference.alternating_step(eager, real[start:start + 6])
        steps = int(keras.ops.convert_to_numpy(trained.g_optimizer.iterations))
        expect(steps == 2, f"inside fit, the generator's optimizer made {steps} updates in two steps instead of 2")
        expect(_same(_weights(trained), _weights(eager), atol=1e-4),
               "inside fit the step ends elsewhere than the same step run eagerly: avoid Python-side state "
               "(use gan.sample_noise for noise, and return tensors)")
        return "discriminator update then generator update, each on its own network, as the reference; it " \
               f"also trains inside fit on the {keras.backend.backend()} backend"

    return run_check("day06.train_step", "Exercise 6.3 - the alternating train step", test, spy=spy)


# --- investigate: the saturating loss -----------------------------------------------------------------

def check_gradient_norms(generator_gradient_norms):
    """Check ``generator_gradient_norms(generator, discriminator, z) -> {"d_fake", "non_saturating", "saturating"}``
    (Exercise 6.4) against :func:`course_lib.models.gan.generator_gradient_norms` on a small GAN whose
    discriminator rejects the generated images, and that nothing was updated."""
    from course_lib.models import gan as reference

    spy = ReferenceSpy(reference.generator_gradient_norms)
    student = spy.wrap(generator_gradient_norms)

    def test():
        from course_lib import autodiff

        gan = _check_gan(seed=3)
        last = gan.discriminator.layers[-1]
        last.bias.assign(last.bias - 4.0)  # D(G(z)) well below 1/2: where the two losses differ most
        z = _noise(16, LATENT, seed=4)
        want = reference.generator_gradient_norms(gan.generator, gan.discriminator, z)
        before = _weights(gan)
        with autodiff.no_grad():
            got = student(gan.generator, gan.discriminator, z)
        expect(isinstance(got, dict) and set(want) <= set(got), f"return a dict with the keys {sorted(want)}")
        expect(_same(_weights(gan), before, atol=0.0), "the networks' weights changed: measure the gradients, "
                                                       "do not apply them")
        for name, value in want.items():
            value_got = float(_num(got[name]))
            expect(np.isclose(value_got, value, rtol=1e-3, atol=1e-7),
                   f"{name} = {value_got:.5g}, expected {value:.5g}"
                   + (" (the mean probability, not the mean logit)" if name == "d_fake" else ""))
        return f"at mean D(G(z)) = {want['d_fake']:.3f} the two gradient norms match the reference"

    return run_check("day06.saturation", "Exercise 6.4 - gradients of the two generator losses", test, spy=spy)

"""Self-checks for Day 04 (autoencoders): the autoencoder the day trains (built and fitted by the student), the
denoiser's noise, and the code-size investigation.

A check never changes the notebook's random state: the models it builds and trains run inside
:func:`preserved_global_rng`, which puts back the Python, NumPy and Keras global generators afterwards (a check
that reseeded them would make every run of the notebook train the same networks, whatever its ``SEED``).
"""

from __future__ import annotations

import contextlib
import math
import random

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)  # (re-exported for the notebook)

HINTS = register_hints({
    "day04.build_autoencoder": Hints(
        todo="Write build_autoencoder: an encoder from an image to a code of latent_dim numbers through the hidden "
             "widths, and a decoder from a code back to an image with pixel values in [0, 1]; return the two models.",
        tiers=("Two Functional models, each starting from its own keras.Input: the encoder's input is an image, the "
               "decoder's input is a code. The autoencoder is then simply the decoder applied to the encoder's "
               "output, one connected graph.",
               "Dense layers act on the last axis only, so flatten the image first; the code layer has no activation "
               "(a code is any real vector); the decoder mirrors the hidden widths, ends with one unit per pixel and a "
               "sigmoid, then reshapes to the image shape.",
               "Common slips: a Dense layer applied to the (h, w, 1) image without flattening (the image axes "
               "survive); a ReLU on the code layer (codes can no longer be negative); no sigmoid at the end (pixels "
               "outside [0, 1]); a decoder that reuses the encoder's Input instead of its own.")),
    "day04.train_autoencoder": Hints(
        todo="Write train_autoencoder: compile the model with Adam, a learning rate that decays along a cosine to 0 "
             "over all training steps and the per-pixel binary cross-entropy, then fit it to reconstruct x; return "
             "the History.",
        tiers=("The targets are the inputs: the model learns to output what it is given, so no labels appear "
               "anywhere. The rest is an ordinary compile and fit.",
               "The number of training steps is the number of epochs times the number of batches per epoch (rounded "
               "up). keras.optimizers.schedules has a cosine decay that Adam accepts in place of a fixed learning "
               "rate; the loss for sigmoid outputs and pixels in [0, 1] is the binary cross-entropy.",
               "Common slips: a decay length counted in epochs instead of steps (the rate reaches 0 after a few "
               "batches); not passing batch_size to fit; the squared error as the loss (it trains, but more slowly, "
               "and the check asks for the cross-entropy); forgetting to return what fit returns.")),
    "day04.add_noise": Hints(
        todo="Write add_gaussian_noise with keras.random and keras.ops: the images plus Gaussian noise of standard "
             "deviation std drawn with the given seed, clipped to [0, 1].",
        tiers=("The corrupted image is the clean one plus independent noise at every pixel; pixels live in [0, 1], "
               "so the sum is clipped back into that range.",
               "keras.random.normal takes a shape, a standard deviation and a seed: pass the seed argument through (a "
               "SeedGenerator gives new noise at every call, the same sequence for the same initial seed). "
               "keras.ops has shape and clip.",
               "Common slips: NumPy's random numbers (this function runs inside the compiled training step, on "
               "symbolic tensors: NumPy either fails there or draws one fixed noise image for the whole training); "
               "the variance instead of the standard deviation; forgetting the clip; ignoring the seed argument.")),
    "day04.code_size": Hints(
        todo="Write code_size_experiment: for each code size, the PCA test error, the test error of an autoencoder "
             "built and trained with your two functions, and their ratio; then largest_gain: the code size with the "
             "smallest ratio.",
        tiers=("One run per code size, everything else equal: same hidden widths, epochs and data; PCA with as many "
               "components as the code has numbers is the linear model to beat. Errors are measured on the test "
               "split.",
               "The helper pca_test_error of course_lib.models.autoencoders gives PCA's number; the course's "
               "Autoencoder class chains your encoder and decoder and has a reconstruct method; the error is the mean "
               "of the squared pixel differences. Seed every run (keras.utils.set_random_seed) so that a rerun gives "
               "the same table.",
               "Common slips: measuring the error on the training images; PCA with a different number of components "
               "than the code size; reusing one trained model for every size; returning the size with the largest "
               "ratio instead of the smallest.")),
})


@contextlib.contextmanager
def preserved_global_rng():
    """Run a block without changing the global random state of the notebook.

    Saves and restores Python's ``random`` state, NumPy's global state and Keras's global seed generator (and
    the seed given to ``keras.utils.set_random_seed``), so that models built or trained inside the block (their
    initialisers draw from the global generator) leave the notebook's later draws as they were.
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    import keras

    python_state, numpy_state = random.getstate(), np.random.get_state()
    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    generator_state = None if generator is None else keras.ops.convert_to_numpy(generator.state.value).copy()
    seed_value = global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, generator)
        if generator is not None:
            generator.state.assign(generator_state)
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed_value)


def _digits(n: int = 256) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n] / 16.0).astype("float32")[..., None]


def _numpy(tensor) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _builders():
    from course_lib.models import autoencoders as ae

    return (ae.build_dense_encoder, ae.build_dense_decoder, ae.build_dense_autoencoder, ae.build_conv_autoencoder,
            ae.build_linear_autoencoder, ae.build_denoising_autoencoder)


def check_build_autoencoder(build_autoencoder):
    """Check ``build_autoencoder(input_shape, latent_dim, hidden) -> (encoder, decoder)`` (Exercise 4.1).

    Expected: two ``keras.Model`` objects; the encoder maps ``(n, *input_shape)`` images to ``(n, latent_dim)``
    real-valued codes through Dense layers of the ``hidden`` widths, the decoder maps codes back to
    ``(n, *input_shape)`` images in [0, 1]; chained they form one connected model owning both sets of weights.
    """
    spy = ReferenceSpy(*_builders())
    build = spy.wrap(build_autoencoder)

    def test():
        import keras

        with preserved_global_rng():
            for shape, latent, hidden in (((8, 8, 1), 3, (32,)), ((28, 28, 1), 5, (64, 24))):
                built = build(shape, latent, hidden)
                expect(isinstance(built, (tuple, list)) and len(built) == 2,
                       f"return the pair (encoder, decoder), got {type(built).__name__}")
                encoder, decoder = built
                expect(isinstance(encoder, keras.Model) and isinstance(decoder, keras.Model),
                       f"both must be keras.Model objects, got {type(encoder).__name__} and {type(decoder).__name__}")
                images = np.random.default_rng(0).random((4, *shape)).astype("float32")
                codes = _numpy(encoder(images))
                expect(codes.shape == (4, latent), f"encoder on images {images.shape}: expected codes of shape "
                                                   f"(4, {latent}), got {codes.shape}")
                out = _numpy(decoder(codes))
                expect(out.shape == (4, *shape), f"decoder on codes {codes.shape}: expected images of shape "
                                                 f"{(4, *shape)}, got {out.shape}")
                expect(out.min() >= 0.0 and out.max() <= 1.0,
                       f"decoder outputs must lie in [0, 1], got [{out.min():.2f}, {out.max():.2f}]")
                wide = _numpy(encoder(np.random.default_rng(1).random((64, *shape)).astype("float32") * 4.0))
                expect(wide.min() < 0.0 < wide.max(),
                       "the codes of 64 random images are all of one sign: the code layer should have no activation")
                units = sorted(int(layer.units) for layer in encoder.layers if hasattr(layer, "units"))
                expect(all(h in units for h in hidden),
                       f"the encoder should have hidden Dense layers of widths {list(hidden)}; its Dense layers have "
                       f"{units} units")
                inputs = keras.Input(shape)
                chained = keras.Model(inputs, decoder(encoder(inputs)))
                expect(len(chained.trainable_weights) == len(encoder.trainable_weights)
                       + len(decoder.trainable_weights) and len(encoder.trainable_weights) > 0,
                       "the chained autoencoder should own exactly the encoder's and the decoder's weights")
        return "two models, right shapes for 8x8 and 28x28, real-valued codes, outputs in [0, 1], one connected chain"

    return run_check("day04.build_autoencoder", "Exercise 4.1a - build the autoencoder", test, spy=spy)


def check_train_autoencoder(train_autoencoder):
    """Check ``train_autoencoder(model, x, epochs, batch_size, learning_rate) -> History`` (Exercise 4.1).

    Trains course_lib's small dense autoencoder on 256 digits for 20 epochs with the student's function and
    expects: a ``History`` with one loss per epoch that falls by 30 % or more, the final training loss equal to
    the per-pixel binary cross-entropy of the reconstructions (not their squared error), ``epochs * ceil(n /
    batch_size)`` optimizer steps, and a learning rate decayed to (almost) 0 by the end.
    """
    from course_lib.models import autoencoders as ae

    spy = ReferenceSpy(ae.fit_autoencoder)
    train = spy.wrap(train_autoencoder)

    def test():
        import keras

        with preserved_global_rng():
            keras.utils.set_random_seed(0)
            x = _digits(256)
            model = ae.build_dense_autoencoder((8, 8, 1), 4, hidden=(32,))
            history = train(model, x, 20, batch_size=64, learning_rate=5e-3)
            expect(isinstance(history, keras.callbacks.History),
                   f"return the History that fit returns, got {type(history).__name__}")
            losses = history.history.get("loss", [])
            expect(len(losses) == 20, f"20 epochs asked, the History has {len(losses)} losses")
            expect(losses[-1] < 0.7 * losses[0],
                   f"training should cut the loss by 30 % on these digits, it went from {losses[0]:.4f} to "
                   f"{losses[-1]:.4f}: are the targets the inputs?")
            out = np.clip(model.reconstruct(x).astype(np.float64), 1e-7, 1 - 1e-7)
            bce = float(np.mean(-(x * np.log(out) + (1 - x) * np.log(1 - out))))
            mse = float(np.mean((x - out) ** 2))
            if abs(losses[-1] - mse) < abs(losses[-1] - bce):
                raise AssertionError(f"the training loss {losses[-1]:.4f} is the squared error ({mse:.4f}); train "
                                     f"with the per-pixel binary cross-entropy ({bce:.4f} on these images)")
            expect(abs(losses[-1] - bce) <= 0.15 * bce + 0.01,
                   f"the last training loss {losses[-1]:.4f} should be close to the per-pixel binary cross-entropy "
                   f"of the reconstructions, {bce:.4f}")
            steps = int(_numpy(model.optimizer.iterations))
            expect(steps == 20 * 4, f"256 images in batches of 64 for 20 epochs make 80 steps, the optimizer made "
                                    f"{steps}: pass batch_size to fit")
            lr = float(_numpy(model.optimizer.learning_rate))
            expect(lr < 0.05 * 5e-3, f"after the last step the learning rate should have decayed to about 0, it is "
                                     f"{lr:.2e} (initial 5e-3): a cosine decay over all the steps")
        return (f"loss {losses[0]:.4f} -> {losses[-1]:.4f} (binary cross-entropy), {steps} steps, learning rate "
                f"decayed to {lr:.1e}")

    return run_check("day04.train_autoencoder", "Exercise 4.1b - train the autoencoder", test, spy=spy)


def check_add_noise(add_gaussian_noise):
    """Check ``add_gaussian_noise(x, std, seed) -> noisy copy`` (Exercise 4.2), written with ``keras.random``.

    Expected: same shape; noise of standard deviation ``std`` and mean 0 (measured where no clipping happens);
    values clipped to [0, 1]; a ``keras.random.SeedGenerator`` gives new noise at each call and the same
    sequence from the same seed; ``std = 0`` changes nothing; and it works inside a compiled training step (a
    small denoising autoencoder trains one epoch with it).
    """
    from course_lib.data import augment
    from course_lib.models import autoencoders as ae

    spy = ReferenceSpy(augment.gaussian_noise, augment.add_noise, ae.DenoisingAutoencoder.corrupt)
    noise = spy.wrap(add_gaussian_noise)

    def test():
        import keras

        with preserved_global_rng():
            x = keras.ops.full((400, 8, 8, 1), 0.5, dtype="float32")
            generator = keras.random.SeedGenerator(0)
            first = _numpy(noise(x, 0.1, generator))
            expect(first.shape == (400, 8, 8, 1), f"expected shape (400, 8, 8, 1), got {first.shape}")
            delta = first - 0.5
            expect(abs(delta.std() - 0.1) < 0.005, f"noise std should be 0.1, measured {delta.std():.4f} "
                                                   "(the argument is a standard deviation, not a variance)")
            expect(abs(delta.mean()) < 0.005, f"the noise should have mean 0, measured {delta.mean():.4f}")
            second = _numpy(noise(x, 0.1, generator))
            expect(not np.allclose(first, second), "two calls with the same SeedGenerator must draw new noise: pass "
                                                   "the seed argument to keras.random")
            again = _numpy(noise(x, 0.1, keras.random.SeedGenerator(0)))
            expect(np.allclose(first, again), "a new SeedGenerator with the same seed must give the same noise")
            big = _numpy(noise(x, 2.0, keras.random.SeedGenerator(1)))
            expect(big.min() >= 0.0 and big.max() <= 1.0,
                   f"values must be clipped to [0, 1], got [{big.min():.2f}, {big.max():.2f}]")
            expect(np.mean(big == 0.0) > 0.3 and np.mean(big == 1.0) > 0.3,
                   "with std 2 most pixels should be clipped to exactly 0 or 1")
            expect(np.allclose(_numpy(noise(x, 0.0, keras.random.SeedGenerator(2))), 0.5),
                   "std 0 must return the images unchanged")
            keras.utils.set_random_seed(0)
            base = ae.build_dense_autoencoder((8, 8, 1), 4, hidden=(16,))
            denoiser = ae.DenoisingAutoencoder(base.encoder, base.decoder, noise_level=0.3, seed=0, noise_fn=noise)
            denoiser.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", jit_compile=False)
            images = _digits(64)
            denoiser.fit(images, images, epochs=1, batch_size=32, verbose=0)
            corrupted = [_numpy(denoiser.corrupt(images)) for _ in range(2)]
            expect(not np.allclose(corrupted[0], corrupted[1]),
                   "inside the denoiser, two corruptions of the same images should differ")
        return "zero-mean noise of the right std, clipped to [0, 1], seeded, new at every call, runs in a training step"

    return run_check("day04.add_noise", "Exercise 4.2 - Gaussian noise for the denoiser", test, spy=spy)


_EXPERIMENT: dict = {}


def code_size_results():
    """The results of the last passing :func:`check_code_size_experiment` (the experiment is not run twice)."""
    return _EXPERIMENT["results"]


def check_code_size_experiment(run_experiment, sizes, x_train, x_test, largest_gain_fn=None):
    """Check the code-size investigation (Exercise 4.3) by running it once.

    Args:
        run_experiment: a zero-argument callable that runs the student's experiment and returns
            ``{k: {"pca_mse": float, "ae_mse": float, "ratio": float}}`` (the notebook passes a closure).
        sizes: the code sizes asked for.
        x_train, x_test: the images, to recompute PCA's test error at each size (exact).
        largest_gain_fn: the student's ``largest_gain(results) -> k``, checked against the results.

    Returns:
        The :class:`course_lib.checks.CheckResult`. When it passes, :func:`code_size_results` returns the results.
    """
    from course_lib.models import autoencoders as ae

    spy = ReferenceSpy(ae.code_size_study)
    run = spy.wrap(run_experiment)
    _EXPERIMENT.pop("results", None)

    train_flat = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    test_flat = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    mean_image_mse = float(np.mean((test_flat - train_flat.mean(axis=0)) ** 2))

    def test():
        results = run()
        expect(isinstance(results, dict), f"return a dict {{k: {{'pca_mse': ..., 'ae_mse': ..., 'ratio': ...}}}}, "
                                          f"got {type(results).__name__}")
        expect(sorted(int(k) for k in results) == sorted(int(k) for k in sizes),
               f"one entry per code size {list(sizes)}, got {list(results)}")
        for k, row in results.items():
            expect(isinstance(row, dict) and {"pca_mse", "ae_mse", "ratio"} <= set(row),
                   f"results[{k}] must be a dict with 'pca_mse', 'ae_mse' and 'ratio'")
            pca, ae_mse, ratio = float(row["pca_mse"]), float(row["ae_mse"]), float(row["ratio"])
            want = ae.pca_test_error(x_train, x_test, int(k))
            expect(math.isclose(pca, want, rel_tol=1e-3),
                   f"code size {k}: PCA test MSE {pca:.5f}, but PCA with {k} components fitted on the training "
                   f"images reconstructs the test images with MSE {want:.5f}")
            expect(math.isfinite(ae_mse) and 0.0 < ae_mse < mean_image_mse,
                   f"code size {k}: autoencoder test MSE {ae_mse:.5f} is not below {mean_image_mse:.5f}, the error of "
                   "drawing the mean training image for every test image: was it trained, and measured on the test "
                   "images?")
            expect(math.isclose(ratio, ae_mse / pca, rel_tol=1e-6), f"code size {k}: the ratio should be "
                                                                    f"ae_mse / pca_mse = {ae_mse / pca:.4f}")
        ordered = sorted(results, key=int)
        expect(float(results[ordered[-1]]["ae_mse"]) < float(results[ordered[0]]["ae_mse"]),
               f"the autoencoder with {ordered[-1]} numbers per image should reconstruct better than the one with "
               f"{ordered[0]}: one model per size?")
        message = "AE / PCA " + ", ".join(f"k={int(k)}: {float(results[k]['ratio']):.2f}" for k in ordered)
        if largest_gain_fn is not None:
            best = int(largest_gain_fn(results))
            want = int(min(results, key=lambda k: float(results[k]["ratio"])))
            expect(best == want, f"largest_gain returned {best}, but your results have the smallest ratio at {want}")
            message += f"; largest gain at k={best}"
        _EXPERIMENT["results"] = results
        return message

    return run_check("day04.code_size", "Exercise 4.3 - investigate: code size against PCA", test, spy=spy)

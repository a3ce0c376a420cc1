"""Self-checks for Day 04 (autoencoders): encoder / decoder, the noise function, anomaly AUROC."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day04.encoder_decoder": Hints(
        todo="Implement the encoder and decoder described above the exercise cell.",
        tiers=("encoder: keras.Input(input_shape) -> layers.Flatten() -> layers.Dense(64, 'relu') -> "
                          "layers.Dense(latent_dim); decoder: keras.Input((latent_dim,)) -> Dense(64, 'relu') -> "
                          "Dense(prod(output_shape), 'sigmoid') -> layers.Reshape(output_shape)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day04.add_noise": Hints(
        todo="Implement the Gaussian noise described above the exercise cell.",
        tiers=("return np.clip(x + std * rng.standard_normal(x.shape), 0.0, 1.0).astype(np.float32)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day04.auroc": Hints(
        todo="Implement the anomaly AUROC described above the exercise cell.",
        tiers=("compare every anomaly score with every normal score: "
                          "diff = s[anomaly][:, None] - s[normal][None, :]; "
                          "auroc = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _digits(n: int = 256) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:n] / 16.0).astype("float32")[..., None]


def check_encoder_decoder(build_encoder, build_decoder):
    """Check ``build_encoder(input_shape, latent_dim)`` and ``build_decoder(latent_dim, output_shape)`` (Exercise 4.1).

    Expected: two ``keras.Model`` objects; the encoder maps ``(n, *input_shape)`` images to ``(n, latent_dim)``
    codes, the decoder maps codes back to ``(n, *output_shape)`` images in [0, 1]; chained they form one
    connected model that learns to reconstruct real digits (its loss drops with a few epochs of ``fit(x, x)``).
    """
    def test():
        import keras

        for shape, latent in (((8, 8, 1), 3), ((28, 28, 1), 5)):
            encoder, decoder = build_encoder(shape, latent), build_decoder(latent, shape)
            expect(isinstance(encoder, keras.Model) and isinstance(decoder, keras.Model),
                   f"both builders must return keras.Model objects, got {type(encoder).__name__} and "
                   f"{type(decoder).__name__}")
            images = np.random.default_rng(0).random((4, *shape)).astype("float32")
            codes = keras.ops.convert_to_numpy(encoder(images))
            expect(codes.shape == (4, latent), f"encoder on images {images.shape}: expected codes of shape "
                                               f"(4, {latent}), got {codes.shape} (did you Flatten before Dense?)")
            out = keras.ops.convert_to_numpy(decoder(codes))
            expect(out.shape == (4, *shape), f"decoder: expected images of shape {(4, *shape)}, got {out.shape} "
                                             "(Reshape the last Dense layer's output)")
            expect(out.min() >= 0.0 and out.max() <= 1.0, "decoder outputs must lie in [0, 1] (sigmoid output)")
        keras.utils.set_random_seed(0)
        encoder, decoder = build_encoder((8, 8, 1), 4), build_decoder(4, (8, 8, 1))
        inputs = keras.Input((8, 8, 1))
        autoencoder = keras.Model(inputs, decoder(encoder(inputs)))
        expect(len(autoencoder.trainable_weights) == len(encoder.trainable_weights) + len(decoder.trainable_weights),
               "the chained autoencoder should own exactly the encoder's and the decoder's weights")
        x = _digits()
        autoencoder.compile(keras.optimizers.Adam(3e-3), "mse", jit_compile=False)
        history = autoencoder.fit(x, x, epochs=15, batch_size=32, verbose=0).history["loss"]
        expect(history[-1] < 0.7 * history[0], f"training on 256 digits for 15 epochs should cut the loss by 30 %, "
                                               f"went from {history[0]:.4f} to {history[-1]:.4f}")
        return (f"shapes right for 8x8 and 28x28, outputs in [0, 1], one connected model, loss "
                f"{history[0]:.4f} -> {history[-1]:.4f}")

    return run_check("day04.encoder_decoder", "Exercise 4.1 - encoder and decoder", test)


def check_add_noise(add_gaussian_noise):
    """Check ``add_gaussian_noise(x, std, rng) -> noisy copy`` (Exercise 4.2).

    Expected: same shape, values clipped to [0, 1], the input left unchanged, noise of standard deviation
    ``std`` (measured where no clipping happens), zero-mean, reproducible with the same generator seed.
    """
    def test():
        x = np.full((200, 8, 8, 1), 0.5, dtype=np.float32)
        before = x.copy()
        noisy = np.asarray(add_gaussian_noise(x, 0.1, np.random.default_rng(0)))
        expect(noisy.shape == x.shape, f"expected shape {x.shape}, got {noisy.shape}")
        expect(np.array_equal(x, before), "the input array was modified in place: return a new array")
        noise = noisy - x
        expect(abs(noise.std() - 0.1) < 0.005, f"noise std should be 0.1, measured {noise.std():.4f}")
        expect(abs(noise.mean()) < 0.005, f"noise should have mean 0, measured {noise.mean():.4f}")
        big = np.asarray(add_gaussian_noise(x, 2.0, np.random.default_rng(1)))
        expect(big.min() >= 0.0 and big.max() <= 1.0, f"values must be clipped to [0, 1], got [{big.min():.2f}, "
                                                       f"{big.max():.2f}]")
        expect(np.mean(big == 0.0) > 0.3 and np.mean(big == 1.0) > 0.3, "with std 2 most pixels should be clipped "
                                                                          "to exactly 0 or 1")
        again = np.asarray(add_gaussian_noise(x, 0.1, np.random.default_rng(0)))
        expect(np.array_equal(noisy, again), "the same generator seed must give the same noise (use the rng passed in)")
        other = np.asarray(add_gaussian_noise(x, 0.1, np.random.default_rng(5)))
        expect(not np.array_equal(noisy, other), "different generator seeds should give different noise")
        expect(np.allclose(np.asarray(add_gaussian_noise(x, 0.0, np.random.default_rng(0))), x),
               "std 0 must return the images unchanged")
        return "shape kept, input untouched, zero-mean noise of the right std, clipped to [0, 1], reproducible"

    return run_check("day04.add_noise", "Exercise 4.2 - Gaussian noise", test)


def check_auroc(auroc):
    """Check ``auroc(scores, is_anomaly) -> float`` (Exercise 4.3) against ``sklearn.metrics.roc_auc_score``."""
    def test():
        from sklearn.metrics import roc_auc_score

        labels = np.array([0, 0, 0, 1, 1])
        expect(np.isclose(auroc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), labels), 1.0),
               "anomalies scoring above every normal example must give 1.0")
        expect(np.isclose(auroc(np.array([0.9, 0.8, 0.7, 0.1, 0.2]), labels), 0.0),
               "anomalies scoring below every normal example must give 0.0")
        expect(np.isclose(auroc(np.array([0.5, 0.5, 0.5, 0.5, 0.5]), labels), 0.5),
               "all-equal scores must give 0.5: a tie counts one half")
        rng = np.random.default_rng(0)
        for trial in range(5):
            y = rng.random(120) < 0.3
            scores = np.round(rng.normal(size=120) + y, 1)  # rounded: many ties
            got, want = float(auroc(scores, y)), roc_auc_score(y, scores)
            expect(np.isclose(got, want), f"trial {trial}: got {got:.4f}, sklearn's roc_auc_score gives {want:.4f}")
        return "matches sklearn.metrics.roc_auc_score, ties included"

    return run_check("day04.auroc", "Exercise 4.3 - anomaly AUROC", test)

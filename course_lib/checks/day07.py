"""Self-checks for Day 07 (SimCLR): the augmentation pipeline and the NT-Xent loss."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day07.augmenter": Hints(
        todo="Implement the augmentation pipeline described above the exercise cell.",
        tiers=("keras.Sequential([keras.Input(image_shape), layers.RandomTranslation(0.125, 0.125, "
                          "fill_mode='constant', seed=seed), layers.RandomRotation(10 / 360, fill_mode='constant', "
                          "seed=seed + 1), layers.GaussianNoise(0.1, seed=seed + 2), <clip to [0, 1]>])",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day07.nt_xent": Hints(
        todo="Implement the NT-Xent loss described above the exercise cell.",
        tiers=("u = l2-normalize(concat([z1, z2])); logits = u @ u.T / temperature; set the diagonal to "
                          "-1e9; the positive of row i is i + N (mod 2N); loss = mean sparse cross-entropy "
                          "(from_logits=True) over the 2N rows",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _numpy(x):
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x))


def check_augmenter(build_view_augmenter):
    """Check ``build_view_augmenter(image_shape, seed) -> layer`` (Exercise 7.1)."""
    def test():
        from course_lib.data.datasets import load_dataset

        x = load_dataset("digits").x_train[:64]
        aug = build_view_augmenter((8, 8, 1), seed=0)
        v1, v2 = _numpy(aug(x, training=True)), _numpy(aug(x, training=True))
        expect(v1.shape == x.shape, f"a view must keep the image shape {x.shape}, got {v1.shape}")
        expect(v1.min() >= -1e-6 and v1.max() <= 1 + 1e-6,
               f"views must stay in [0, 1] (got [{v1.min():.2f}, {v1.max():.2f}]): clip after adding noise")
        expect(np.allclose(_numpy(aug(x, training=False)), x),
               "with training=False the pipeline must return the images unchanged (augment only while training)")
        changed = np.mean(np.abs(v1 - x).reshape(len(x), -1).max(axis=1) > 1e-3)
        expect(changed > 0.9, f"only {changed:.0%} of the images changed: is every layer random per image? "
                              "(a random crop to the full image size, for example, is no crop at all)")
        expect(not np.allclose(v1, v2), "two calls must give two different, independent views")
        flat, f1 = x.reshape(64, -1), v1.reshape(64, -1)
        distances = ((f1[:, None] - flat[None]) ** 2).sum(-1)
        own, others = np.diag(distances), np.median(distances + np.eye(64) * 1e9, axis=1)
        expect(np.mean(own < others) > 0.9, "views look too little like their own image: the augmentations are "
                                            "too strong for 8x8 digits (about 1 pixel of shift, ~10 degrees)")
        a = _numpy(build_view_augmenter((8, 8, 1), seed=3)(x, training=True))
        b = _numpy(build_view_augmenter((8, 8, 1), seed=3)(x, training=True))
        expect(np.allclose(a, b), "the same seed must give the same views: pass seed to every random layer")
        big = _numpy(build_view_augmenter((28, 28, 1), seed=0)(np.zeros((2, 28, 28, 1), "float32"), training=True))
        expect(big.shape == (2, 28, 28, 1), "the pipeline must also work for 28x28 images")
        return "shape kept, values in [0, 1], identity at inference, independent views close to their image, seeded"

    return run_check("day07.augmenter", "Exercise 7.1 - augmentation pipeline", test)


def check_nt_xent(nt_xent):
    """Check ``nt_xent(z1, z2, temperature) -> scalar`` (Exercise 7.2) against course_lib's NT-Xent."""
    def test():
        from course_lib.losses import nt_xent_loss

        rng = np.random.default_rng(0)
        for n, d, tau in [(4, 3, 0.5), (10, 8, 0.1), (3, 16, 1.0)]:
            z1, z2 = rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, d)).astype("float32")
            got = float(_numpy(nt_xent(z1, z2, tau)).squeeze())
            want = float(nt_xent_loss(z1, z2, tau))
            expect(np.isclose(got, want, rtol=1e-3, atol=1e-4),
                   f"N={n}, d={d}, temperature={tau}: got {got:.4f}, expected {want:.4f}")
            swapped = float(_numpy(nt_xent(z2, z1, tau)).squeeze())
            expect(np.isclose(swapped, got, rtol=1e-4), "the loss must be symmetric: nt_xent(z1, z2) == nt_xent(z2, z1)")
        e = np.eye(4, dtype="float32")
        expected = -np.log(np.exp(2.0) / (np.exp(2.0) + 6.0))
        got = float(_numpy(nt_xent(e, e, 0.5)).squeeze())
        expect(np.isclose(got, expected, rtol=1e-4),
               f"4 orthogonal images, identical views, temperature 0.5: expected {expected:.4f}, got {got:.4f} "
               "(is the self-similarity excluded from the denominator? are the vectors L2-normalized?)")
        return "matches the reference on random inputs, symmetric, self-similarity masked"

    return run_check("day07.nt_xent", "Exercise 7.2 - NT-Xent loss", test)

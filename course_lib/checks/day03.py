"""Self-checks for Day 03 (dimensionality reduction): PCA by SVD and reconstruction."""

from __future__ import annotations

import numpy as np

from course_lib.checks import Hints, assert_all_passed, expect, hint, register_hints, run_check, summary, use_or_reference  # noqa: F401 (re-exported for the notebook)


HINTS = register_hints({
    "day03.pca_svd": Hints(
        todo="Implement the PCA by SVD described above the exercise cell.",
        tiers=("mean = X.mean(0); U, S, Vt = np.linalg.svd(X - mean, full_matrices=False); "
                          "components = Vt[:k]; explained_variance = S[:k] ** 2 / (n - 1)",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
    "day03.reconstruct": Hints(
        todo="Implement the reconstruction from k components described above the exercise cell.",
        tiers=("codes = (X - mean) @ components.T; return codes @ components + mean",
               "Compare each intermediate result with the equation of the exercise, one step at a time.")),
})


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(120, 3)) * np.array([5.0, 2.0, 1.0])
    return latent @ rng.normal(size=(3, 8)) + rng.normal(scale=0.1, size=(120, 8)) + 3.0


def check_pca_svd(pca_svd):
    """Check ``pca_svd(X, k) -> (components (k, d), explained_variance (k,), mean (d,))`` (Exercise 3.1)."""
    def test():
        from sklearn.decomposition import PCA

        x = _data()
        components, variance, mean = (np.asarray(a, dtype=float) for a in pca_svd(x, 3))
        expect(components.shape == (3, 8), f"components should be (k, d) = (3, 8), got {components.shape}")
        expect(variance.shape == (3,), f"explained_variance should be (3,), got {variance.shape}")
        expect(np.allclose(mean, x.mean(0)), "mean should be the per-feature mean of X")
        ref = PCA(3, svd_solver="full").fit(x)
        expect(np.allclose(variance, ref.explained_variance_, rtol=1e-6),
               f"explained variance {np.round(variance, 4).tolist()} differs from sklearn's "
               f"{np.round(ref.explained_variance_, 4).tolist()} (did you center X, and divide S**2 by n - 1?)")
        cosines = np.abs(np.sum(components * ref.components_, axis=1))
        expect(np.allclose(cosines, 1.0, atol=1e-6), "components differ from sklearn's (up to sign)")
        expect(np.allclose(components @ components.T, np.eye(3), atol=1e-6), "components must be orthonormal rows")
        return "components (up to sign), explained variance and mean match sklearn.decomposition.PCA"

    return run_check("day03.pca_svd", "Exercise 3.1 - PCA by SVD", test)


def check_reconstruct(reconstruct):
    """Check ``reconstruct(X, components, mean) -> X_hat`` (Exercise 3.2), against sklearn's inverse_transform."""
    def test():
        from sklearn.decomposition import PCA

        x = _data(1)
        ref = PCA(2, svd_solver="full").fit(x)
        x_hat = np.asarray(reconstruct(x, ref.components_, ref.mean_), dtype=float)
        expect(x_hat.shape == x.shape, f"reconstruction should have the input's shape {x.shape}, got {x_hat.shape}")
        expected = ref.inverse_transform(ref.transform(x))
        expect(np.allclose(x_hat, expected, atol=1e-8), "reconstruction differs from sklearn's "
               "inverse_transform(transform(X)) (did you add the mean back?)")
        return "matches sklearn's inverse_transform(transform(X))"

    return run_check("day03.reconstruct", "Exercise 3.2 - reconstruction from k components", test)

"""Self-checks for Day 03 (dimensionality reduction): PCA by SVD, reconstruction, and the variance budget.

Exercise 3.1 ``pca_svd(X, k)``, Exercise 3.2 ``reconstruct(X, components, mean)`` and the investigate
Exercise 3.3 ``variance_budget(X_train, X_test, fraction)``. The PCA the Day 03 notebook evaluates (its
reconstruction errors, the 2-D map, the PCA codes it clusters) is the student's.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks import (Hints, ReferenceSpy, assert_all_passed, expect, hint, register_hints,  # noqa: F401
                               run_check, summary, use_or_reference)


HINTS = register_hints({
    "day03.pca_svd": Hints(
        todo="Write pca_svd(X, k) -> (components, explained_variance, mean) with the singular value decomposition "
             "of the centered data.",
        tiers=("Center the data first (subtract the per-feature mean); the principal directions are then the "
               "right singular vectors of the centered matrix, in order of decreasing singular value.",
               "np.linalg.svd with full_matrices=False returns U, the singular values s and V transposed; the "
               "rows of V transposed are the directions, and the variance along direction j is s_j squared "
               "divided by n - 1 (the sample covariance, as scikit-learn reports it).",
               "Keep only the first k rows and values, return the mean you subtracted, and divide by n - 1, not "
               "n. The directions are the rows of the third SVD output, not the columns of the first.")),
    "day03.reconstruct": Hints(
        todo="Write reconstruct(X, components, mean): project the centered X on the components, then map the "
             "codes back to the input space.",
        tiers=("A code is the list of coordinates of a centered point along the k directions; the reconstruction "
               "is the sum of the directions weighted by the code, moved back by the mean.",
               "With the components as the rows of W (k, d): codes are the centered X times W transposed, "
               "(n, k); the reconstruction is the codes times W, (n, d), plus the mean.",
               "Subtract the mean before projecting and add it back at the end: forgetting either shifts "
               "every reconstruction by the mean image.")),
    "day03.variance_budget": Hints(
        todo="Write variance_budget(X_train, X_test, fraction) -> (k, test_unexplained): the number of training "
             "components that explain `fraction` of the training variance, and the share of the TEST variance "
             "those k components leave unexplained.",
        tiers=("Fit PCA on the training split with ALL components, so that the total variance is known. The "
               "explained ratio of the first k components is their variance divided by the total; find the "
               "smallest k whose cumulative ratio reaches the fraction. Then reconstruct the test images from k "
               "components and compare the error with that of the mean image alone.",
               "np.cumsum gives the cumulative ratios; np.searchsorted (or the first index where the cumulative "
               "ratio is at least the fraction) gives a 0-based position, so k is that position plus one. The "
               "unexplained share is the test squared error at k divided by the test squared error of "
               "predicting every image by the training mean.",
               "Dividing by the sum of only the top-k variances makes every k look like 100 %. And use the "
               "training mean and components for the test images: refitting on the test split would hide the "
               "generalisation gap you are asked about.")),
})


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(120, 3)) * np.array([5.0, 2.0, 1.0])
    return latent @ rng.normal(size=(3, 8)) + rng.normal(scale=0.1, size=(120, 8)) + 3.0


def check_pca_svd(pca_svd):
    """Check ``pca_svd(X, k) -> (components (k, d), explained_variance (k,), mean (d,))`` (Exercise 3.1).

    Compared with ``sklearn.decomposition.PCA``; the reference is ``course_lib.models.classical.pca_svd``.
    """
    from course_lib.models import classical

    spy = ReferenceSpy(classical.pca_svd)
    pca = spy.wrap(pca_svd)

    def test():
        from sklearn.decomposition import PCA

        x = _data()
        components, variance, mean = (np.asarray(a, dtype=float) for a in pca(x, 3))
        expect(components.shape == (3, 8), f"components should be (k, d) = (3, 8), got {components.shape}")
        expect(variance.shape == (3,), f"explained_variance should be (3,), got {variance.shape}")
        expect(np.allclose(mean, x.mean(0)), "mean should be the per-feature mean of X")
        ref = PCA(3, svd_solver="full").fit(x)
        if np.allclose(variance, ref.explained_variance_ * (len(x) - 1) / len(x), rtol=1e-6):
            raise AssertionError("the variances are a factor (n - 1) / n too small: divide by n - 1")
        expect(np.allclose(variance, ref.explained_variance_, rtol=1e-6),
               f"explained variance {np.round(variance, 4).tolist()} differs from sklearn's "
               f"{np.round(ref.explained_variance_, 4).tolist()} (did you center X?)")
        cosines = np.abs(np.sum(components * ref.components_, axis=1))
        expect(np.allclose(cosines, 1.0, atol=1e-6), "components differ from sklearn's (up to sign): are they the "
                                                     "rows of the right singular vectors?")
        expect(np.allclose(components @ components.T, np.eye(3), atol=1e-6), "components must be orthonormal rows")
        components1, variance1, _ = (np.asarray(a, dtype=float) for a in pca(x, 1))
        expect(components1.shape == (1, 8) and np.allclose(variance1, variance[:1]), "k = 1 should keep only the "
                                                                                     "first direction")
        return "components (up to sign), explained variance and mean match sklearn.decomposition.PCA"

    return run_check("day03.pca_svd", "Exercise 3.1 - PCA by SVD", test, spy=spy)


def check_reconstruct(reconstruct):
    """Check ``reconstruct(X, components, mean) -> X_hat`` (Exercise 3.2), against sklearn's inverse_transform.

    The reference is ``course_lib.models.classical.pca_reconstruct``.
    """
    from course_lib.models import classical

    spy = ReferenceSpy(classical.pca_reconstruct)
    rebuild = spy.wrap(reconstruct)

    def test():
        from sklearn.decomposition import PCA

        x = _data(1)
        ref = PCA(2, svd_solver="full").fit(x)
        x_hat = np.asarray(rebuild(x, ref.components_, ref.mean_), dtype=float)
        expect(x_hat.shape == x.shape, f"reconstruction should have the input's shape {x.shape}, got {x_hat.shape}")
        expected = ref.inverse_transform(ref.transform(x))
        expect(np.allclose(x_hat, expected, atol=1e-8), "reconstruction differs from sklearn's "
               "inverse_transform(transform(X)) (is the mean subtracted before projecting and added back after?)")
        full = PCA(8, svd_solver="full").fit(x)
        expect(np.allclose(np.asarray(rebuild(x, full.components_, full.mean_), dtype=float), x, atol=1e-8),
               "with all d components the reconstruction must give X back exactly")
        return "matches sklearn's inverse_transform(transform(X)); all components give X back"

    return run_check("day03.reconstruct", "Exercise 3.2 - reconstruction from k components", test, spy=spy)


_SPECTRUM = np.array([8.0, 4.0, 2.0, 1.0, 0.5, 0.25])   # cumulative fractions 0.51, 0.76, 0.89, 0.95, 0.98, 1


def _spectrum_data(seed: int = 0, n: int = 400, exact: bool = True):
    """Data whose sample variances along 6 rotated axes are exactly :data:`_SPECTRUM` (``exact``) or close to it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    if exact:  # centered, orthogonal columns of squared norm n - 1: sample covariance = identity
        z = np.linalg.qr(z - z.mean(axis=0))[0] * np.sqrt(n - 1)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    return (z * np.sqrt(_SPECTRUM)) @ rotation + 1.0


def reference_variance_budget(x_train, x_test, fraction: float = 0.9) -> tuple[int, float]:
    """The reference answer of Exercise 3.3, with course_lib's PCA: ``(k, test_unexplained)``.

    Args:
        x_train: float array ``(n_train, d)``, ``n_train >= 2``: the PCA is fitted on it.
        x_test: float array ``(n_test, d)``.
        fraction: the share of the training variance to explain, in (0, 1].

    Returns:
        ``(k, test_unexplained)``: the int number of components that explain ``fraction`` of the training
        variance, and the float share of the test images' squared deviation from the training mean that the
        reconstruction from those ``k`` components leaves out.

    Raises:
        ValueError: arrays that are not non-empty and 2-D, fewer than 2 training rows, numbers of features
            that differ, or ``fraction`` outside (0, 1] (from :mod:`course_lib.models.classical`).
    """
    from course_lib.models import classical

    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    components, variance, mean = classical.pca_svd(x_train, min(x_train.shape))
    k = classical.components_for_variance(variance, fraction)
    error = np.sum((x_test - classical.pca_reconstruct(x_test, components[:k], mean)) ** 2)
    return k, float(error / np.sum((x_test - mean) ** 2))


def check_variance_budget(variance_budget, x_train=None, x_test=None, fraction: float = 0.9):
    """Check ``variance_budget(X_train, X_test, fraction) -> (k, test_unexplained)`` (Exercise 3.3, investigate).

    On data with a known spectrum, then (when given) on the notebook's own training and test images, against
    :func:`reference_variance_budget`: ``k`` exactly, ``test_unexplained`` within 1e-4. The references are
    ``course_lib.models.classical.components_for_variance``, ``pca_svd`` and ``pca_reconstruct``.
    """
    from course_lib.models import classical

    spy = ReferenceSpy(classical.components_for_variance, classical.pca_svd, classical.pca_reconstruct,
                       reference_variance_budget)
    budget = spy.wrap(variance_budget)

    def compare(train, test, wanted_fraction, where):
        got = budget(train, test, wanted_fraction)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, "return a pair (k, test_unexplained)")
        k, unexplained = int(got[0]), float(got[1])
        want_k, want_unexplained = reference_variance_budget(train, test, wanted_fraction)
        expect(k != want_k - 1, f"{where}: k = {k} is one short: the cumulative ratio of the first {k} components "
                                f"is still below {wanted_fraction} (k counts components, positions start at 0)")
        expect(k == want_k, f"{where}: k = {k}, but {want_k} components are the fewest that explain "
                            f"{wanted_fraction:.0%} of the training variance")
        expect(abs(unexplained - want_unexplained) < 1e-4,
               f"{where}: the test share left unexplained by {k} components is {want_unexplained:.4f}, you "
               f"computed {unexplained:.4f}")
        return k, unexplained

    def test():
        train, test_split = _spectrum_data(0), _spectrum_data(1, n=200, exact=False)
        for wanted, k_exact in ((0.45, 1), (0.7, 2), (0.85, 3), (0.9, 4), (0.97, 5)):
            k, _ = compare(train, test_split, wanted, f"on data with variances 8, 4, 2, 1, 0.5, 0.25 (fraction "
                                                      f"{wanted})")
            expect(k == k_exact, f"fraction {wanted}: expected k = {k_exact}")
        message = "k and the test share match the reference on data with a known spectrum"
        if x_train is not None and x_test is not None:
            train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
            test_split = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
            k, unexplained = compare(train, test_split, fraction, "on the course's images")
            message += f" and on the course's images (k = {k}, test share unexplained {unexplained:.4f})"
        return message

    return run_check("day03.variance_budget", "Exercise 3.3 - investigate: the 90 % variance budget", test, spy=spy)

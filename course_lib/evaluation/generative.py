"""Evaluating generated images: a Fréchet distance in a classifier's feature space, and class coverage.

**Fréchet distance.** Fit a Gaussian to the features of each set of images; the *squared* Fréchet
(2-Wasserstein) distance between :math:`\\mathcal{N}(\\mu_1, \\Sigma_1)` and :math:`\\mathcal{N}(\\mu_2, \\Sigma_2)`
has the closed form (Dowson & Landau, 1982)

.. math:: W_2^2 = \\lVert \\mu_1 - \\mu_2 \\rVert_2^2 + \\operatorname{Tr}\\big(\\Sigma_1 + \\Sigma_2
          - 2 (\\Sigma_1 \\Sigma_2)^{1/2}\\big),

and "the Fréchet distance" of the GAN literature (FD, FID) is this square, in squared feature units, not
:math:`W_2` itself. With Inception-v3 features it is the Fréchet Inception Distance, FID (Heusel et al., "GANs
Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017). An ImageNet
network means little for small grayscale digits, so the course uses the penultimate ("features") layer of its
own Day-01 classifier (:mod:`course_lib.models.classifier`). Numbers are only comparable within one feature
space and for equal sample sizes: the estimate from :math:`n` samples is biased upwards, roughly linearly in
:math:`1/n` (Chong & Forsyth, "Effectively Unbiased FID and Inception Score and Where to Find Them", CVPR
2020). That is why every report shows the **real-vs-real floor** (the distance between the training and the
test images' features) and scores as many generated images as there are training images.

**Class coverage.** A generator can produce sharp images of a single digit (mode collapse) and still look
fine sample by sample. Classify the generated images with the same classifier and count the classes that
receive at least a minimum share of them (default :math:`1/(2K)`, half of a uniform share).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["gaussian_stats", "frechet_distance", "frechet_distance_features", "class_histogram", "class_coverage",
           "class_entropy", "FrechetEvaluator"]


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of feature vectors.

    Args:
        features: array ``(n, d)`` with ``n >= 2``.

    Returns:
        ``(mu, sigma)``: float64 arrays ``(d,)`` and ``(d, d)`` (unbiased covariance, ``n - 1`` denominator).

    Raises:
        ValueError: not a 2-D array, fewer than 2 rows, or non-finite values.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must have shape (n, d) with n >= 2, got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians as FID reports it: the squared 2-Wasserstein distance :math:`W_2^2`.

    :math:`\\lVert\\mu_1-\\mu_2\\rVert^2 + \\operatorname{Tr}(\\Sigma_1 + \\Sigma_2 - 2(\\Sigma_1\\Sigma_2)^{1/2})`,
    with the matrix square root from ``scipy.linalg.sqrtm``. For positive semi-definite covariances
    :math:`\\Sigma_1\\Sigma_2` has real non-negative eigenvalues, so its square root is real; round-off leaves tiny
    imaginary parts, which are dropped (its real part is kept). A singular product (e.g. fewer samples than
    dimensions) can make ``sqrtm`` fail; then ``eps`` is added to both diagonals and the root recomputed.

    Args:
        mu1, mu2: mean vectors ``(d,)``.
        sigma1, sigma2: covariance matrices ``(d, d)``, symmetric positive semi-definite.
        eps: diagonal offset used only when the square root is not finite.

    Returns:
        :math:`W_2^2` as a Python float, in squared feature units, >= 0 (clipped at 0 against round-off); its
        square root is the 2-Wasserstein distance itself.

    Raises:
        ValueError: mismatched shapes, or an imaginary part too large to be round-off (relative to the trace,
            > 1e-3), which means a covariance was not positive semi-definite.

    Reference: Heusel et al., NeurIPS 2017 (the FID); the closed form of the squared 2-Wasserstein distance
    between Gaussians: Dowson & Landau, "The Fréchet distance between multivariate normal distributions",
    Journal of Multivariate Analysis, 1982.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    with warnings.catch_warnings():  # a singular product (dead ReLU units) is expected; checked below instead
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            offset = eps * np.eye(d)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        scale = max(1.0, abs(np.trace(sigma1)) + abs(np.trace(sigma2)))
        if np.abs(np.trace(covmean.imag)) > 1e-3 * scale or np.max(np.abs(covmean.imag)) > 1e-3 * scale:
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has a large imaginary part "
                             f"({np.max(np.abs(covmean.imag)):.3g}): are both covariances positive semi-definite?")
        covmean = covmean.real
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def frechet_distance_features(features1, features2, eps: float = 1e-6) -> float:
    """Fréchet distance (squared 2-Wasserstein, :func:`frechet_distance`) between the Gaussians fitted to two
    feature sets ``(n1, d)`` and ``(n2, d)``.

    See :func:`gaussian_stats` and :func:`frechet_distance` (same errors).
    """
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2), eps=eps)


def class_histogram(labels, n_classes: int) -> np.ndarray:
    """Share of samples per class.

    Args:
        labels: int array ``(n,)`` of predicted classes in ``[0, n_classes)``, or probabilities ``(n, n_classes)``
            (their arg-max is used).
        n_classes: number of classes K.

    Returns:
        float64 array ``(K,)`` summing to 1.

    Raises:
        ValueError: no samples, or a label outside ``[0, n_classes)``.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    labels = labels.astype(np.int64).ravel()
    if labels.size == 0:
        raise ValueError("no samples")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    return np.bincount(labels, minlength=n_classes) / labels.size


def class_coverage(labels, n_classes: int, min_share: float | None = None) -> float:
    """Fraction of the K classes that receive at least ``min_share`` of the samples.

    ``coverage = |{k : share_k >= min_share}| / K`` with ``min_share`` = 1/(2K) by default (half of a uniform
    share). A generator that covers every class about equally scores 1.0; one that has collapsed onto a single
    class scores 1/K.

    Args:
        labels: predicted classes ``(n,)`` or class probabilities ``(n, K)`` of the generated samples.
        n_classes: K.
        min_share: the threshold share in (0, 1]; default ``1 / (2 K)``.

    Returns:
        A float in [0, 1] (a multiple of 1/K).

    Raises:
        ValueError: a ``min_share`` outside (0, 1], or as :func:`class_histogram`.
    """
    min_share = 1.0 / (2 * n_classes) if min_share is None else float(min_share)
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share}")
    return float(np.mean(class_histogram(labels, n_classes) >= min_share))


def class_entropy(labels, n_classes: int) -> float:
    """Entropy of the predicted-class histogram divided by log K: 1 for uniform classes, 0 for a single class.

    Args and errors as :func:`class_histogram`. Returns a float in [0, 1].
    """
    shares = class_histogram(labels, n_classes)
    nonzero = shares[shares > 0]
    return float(max(0.0, -(nonzero * np.log(nonzero)).sum() / np.log(n_classes)))


@dataclass
class FrechetEvaluator:
    """Scores sets of images against reference images in a classifier's feature space.

    Build it with :meth:`from_classifier` (a :func:`course_lib.models.classifier.build_classifier` model trained
    on the training split) and the reference images (usually the test split); :meth:`score` then gives the
    Fréchet distance, class coverage and class entropy of any image set with the same shape and range [0, 1].

    Attributes:
        classifier: ``keras.Model`` images ``(n, h, w, c)`` in [0, 1] -> class probabilities ``(n, K)``.
        features: the sub-model images -> penultimate features ``(n, d)``.
        reference_mu, reference_sigma: Gaussian statistics of the reference images' features.
        n_classes: K.
        batch_size: images per forward pass.
    """

    classifier: object
    features: object
    reference_mu: np.ndarray
    reference_sigma: np.ndarray
    n_classes: int
    batch_size: int = 512

    @classmethod
    def from_classifier(cls, classifier, reference_images, batch_size: int = 512) -> "FrechetEvaluator":
        """Build an evaluator from a trained classifier and reference images ``(n, h, w, c)`` in [0, 1].

        Args:
            classifier: a trained :func:`course_lib.models.classifier.build_classifier` model (it must have a
                layer named ``"features"``), mapping float32 images to class probabilities ``(n, K)``.
            reference_images: float images ``(n, h, w, c)`` in [0, 1], ``n >= 2`` (usually the test split).
            batch_size: images per forward pass.

        Returns:
            The evaluator, with the float64 Gaussian statistics ``(d,)`` and ``(d, d)`` of the reference features.

        Raises:
            ValueError: ``classifier`` has no ``"features"`` layer, or the reference features have fewer than
                2 rows or non-finite values (see :func:`gaussian_stats`).
        """
        from course_lib.models.classifier import feature_extractor

        features = feature_extractor(classifier)
        evaluator = cls(classifier, features, np.zeros(1), np.zeros((1, 1)), int(classifier.output_shape[-1]),
                        batch_size)
        evaluator.reference_mu, evaluator.reference_sigma = gaussian_stats(evaluator.embed(reference_images))
        return evaluator

    def embed(self, images) -> np.ndarray:
        """Penultimate-layer features ``(n, d)`` float32 of images ``(n, h, w, c)`` in [0, 1]."""
        return np.asarray(self.features.predict(np.asarray(images, dtype=np.float32), batch_size=self.batch_size,
                                                verbose=0))

    def predict(self, images) -> np.ndarray:
        """Predicted classes ``(n,)`` int64 of images ``(n, h, w, c)`` in [0, 1]."""
        probabilities = self.classifier.predict(np.asarray(images, dtype=np.float32), batch_size=self.batch_size,
                                                verbose=0)
        return np.asarray(probabilities).argmax(axis=1).astype(np.int64)

    def distance(self, images) -> float:
        """Fréchet distance (squared 2-Wasserstein, :func:`frechet_distance`) between ``images``' features and the
        reference features; biased upwards for few images, so compare only equal sample sizes.

        Args:
            images: float images ``(n, h, w, c)`` in [0, 1] (not checked here; :meth:`score` checks), ``n >= 2``.

        Returns:
            :math:`W_2^2` as a Python float >= 0, in squared feature units.

        Raises:
            ValueError: fewer than 2 images, non-finite features, or a covariance product whose square root
                has a large imaginary part (see :func:`gaussian_stats`, :func:`frechet_distance`).
        """
        return frechet_distance(*gaussian_stats(self.embed(images)), self.reference_mu, self.reference_sigma)

    def score(self, images) -> dict[str, float]:
        """``{"fd": ..., "coverage": ..., "class_entropy": ...}`` of images ``(n, h, w, c)`` in [0, 1].

        Raises:
            ValueError: images outside [0, 1] (a common slip: scoring ``tanh`` outputs in [-1, 1]), or fewer
                than 2 images.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
            raise ValueError(f"images must lie in [0, 1], got [{images.min():.3f}, {images.max():.3f}] "
                             "(rescale tanh outputs with (x + 1) / 2)")
        labels = self.predict(images)
        return {"fd": self.distance(images), "coverage": class_coverage(labels, self.n_classes),
                "class_entropy": class_entropy(labels, self.n_classes)}

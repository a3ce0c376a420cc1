"""Evaluating reconstructions: per-example error, PSNR, anomaly AUROC.

- :func:`reconstruction_error`: mean squared (or absolute) error per example.
- :func:`psnr`: peak signal-to-noise ratio per example, in decibels.
- :func:`anomaly_auroc`: area under the ROC curve of an anomaly score (scikit-learn's ``roc_auc_score``).
"""

from __future__ import annotations

import numpy as np


def _pair(x_true, x_pred) -> tuple[np.ndarray, np.ndarray]:
    x_true = np.asarray(x_true, dtype=np.float64)
    x_pred = np.asarray(x_pred, dtype=np.float64)
    if x_true.shape != x_pred.shape:
        raise ValueError(f"x_true and x_pred must have the same shape, got {x_true.shape} and {x_pred.shape}")
    if x_true.ndim < 2 or len(x_true) == 0:
        raise ValueError(f"expected a non-empty batch (n_samples, ...), got shape {x_true.shape}")
    return x_true.reshape(len(x_true), -1), x_pred.reshape(len(x_pred), -1)


def reconstruction_error(x_true, x_pred, kind: str = "mse") -> np.ndarray:
    """Per-example reconstruction error, averaged over every pixel (and channel) of the example.

    Args:
        x_true: array ``(n, ...)``, e.g. images ``(n, h, w, c)`` in [0, 1].
        x_pred: reconstructions, same shape.
        kind: ``"mse"`` (mean squared error, squared pixel units) or ``"mae"`` (mean absolute error).

    Returns:
        float64 array ``(n,)``. Its mean equals the mean squared error over the whole set.

    Raises:
        ValueError: shapes differ, the batch is empty or 1-D, or ``kind`` is unknown.
    """
    x_true, x_pred = _pair(x_true, x_pred)
    if kind == "mse":
        return np.mean((x_true - x_pred) ** 2, axis=1)
    if kind == "mae":
        return np.mean(np.abs(x_true - x_pred), axis=1)
    raise ValueError(f"kind must be 'mse' or 'mae', got {kind!r}")


def psnr(x_true, x_pred, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio of each example, in decibels.

    :math:`\\mathrm{PSNR} = 10 \\log_{10}(R^2 / \\mathrm{MSE})` with :math:`R` the data range (1 for images in
    [0, 1], 255 for 8-bit images) and MSE the mean squared error over the example's pixels. Higher is better;
    report the mean over a test set.

    Args:
        x_true: reference images ``(n, ...)``.
        x_pred: reconstructed / denoised images, same shape.
        data_range: :math:`R`, the difference between the largest and smallest possible pixel value (> 0).

    Returns:
        float64 array ``(n,)`` in dB; ``inf`` where an example is reproduced exactly.

    Raises:
        ValueError: shapes differ, the batch is empty, or ``data_range`` <= 0.
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    mse = reconstruction_error(x_true, x_pred, "mse")
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(data_range) ** 2 / mse)


def anomaly_auroc(scores, is_anomaly) -> float:
    """Area under the ROC curve of an anomaly score (higher score = more anomalous).

    Equals the probability that a randomly drawn anomaly scores higher than a randomly drawn normal
    example (ties count one half): 1.0 is a perfect ranking, 0.5 is chance. Computed with
    ``sklearn.metrics.roc_auc_score``.

    Args:
        scores: float array ``(n,)``, e.g. per-example reconstruction errors.
        is_anomaly: array ``(n,)`` of booleans or 0/1 (1 = anomaly).

    Returns:
        AUROC in [0, 1].

    Raises:
        ValueError: arrays of different lengths or not 1-D, non-finite scores, or only one class present.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    is_anomaly = np.asarray(is_anomaly)
    if scores.ndim != 1 or is_anomaly.shape != scores.shape:
        raise ValueError(f"scores and is_anomaly must be 1-D of equal length, "
                         f"got {scores.shape} and {is_anomaly.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    labels = is_anomaly.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("AUROC needs both anomalies and normal examples")
    return float(roc_auc_score(labels, scores))

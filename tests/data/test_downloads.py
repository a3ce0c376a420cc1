"""Unit tests for course_lib.data.downloads: fetching into the cache with hash checks, the offline errors,
and the MNIST / Fashion-MNIST parsers end to end through load_dataset (on small files made here, served from
file:// URLs)."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from course_lib import paths
from course_lib.data import datasets, downloads
from course_lib.data.downloads import CorruptDataFile, DatasetUnavailable, RemoteFile


IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


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


# --- fetching (real keras.utils.get_file from file:// URLs) ---------------------------------------

def test_fetch_downloads_into_cache(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    paths_ = downloads.fetch("mnist", data_dir=cache, offline=False, files=(mnist,))
    target = cache / "mnist" / "mnist.npz"
    assert paths_ == [target]
    assert target.read_bytes() == (server / "mnist.npz").read_bytes()
    assert staging_leftovers(cache) == []
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == ["mnist.npz"]
    # cached now: fetching again works offline and returns the same path
    assert downloads.fetch("mnist", data_dir=cache, offline=True, files=(mnist,)) == [target]


def test_fetch_file_md5_files(remote):
    server, cache = remote
    remotes, _ = make_fashion(server)
    result = downloads.fetch("fashion_mnist", data_dir=cache, offline=False, files=remotes)
    assert result == [cache / "fashion_mnist" / name for name in IDX_NAMES]
    for path in result:
        assert path.read_bytes() == (server / path.name).read_bytes()
    assert staging_leftovers(cache) == []


def test_cache_path_layout(tmp_path):
    r = RemoteFile("a.bin", "file:///nowhere", "0" * 32)
    assert downloads.cache_path("mnist", r, tmp_path) == tmp_path / "mnist" / "a.bin"


def test_course_data_dir_env_is_honoured(remote, monkeypatch):
    server, cache = remote
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    assert paths.data_dir() == cache.resolve()
    mnist, _ = make_mnist(server)
    assert downloads.cache_path("mnist", mnist) == cache.resolve() / "mnist" / "mnist.npz"
    (target,) = downloads.fetch("mnist", offline=False, files=(mnist,))
    assert target == cache.resolve() / "mnist" / "mnist.npz" and target.is_file()


def test_offline_missing_file_says_what_to_put_where(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    target = cache / "mnist" / "mnist.npz"
    with pytest.raises(DatasetUnavailable) as info:
        downloads.fetch("mnist", data_dir=cache, offline=True, files=(mnist,))
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
        downloads.fetch("mnist", data_dir=cache, files=(mnist,))
    assert not (cache / "mnist" / "mnist.npz").exists()


def test_course_offline_zero_allows_download(remote, monkeypatch):
    server, cache = remote
    mnist, _ = make_mnist(server)
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    (target,) = downloads.fetch("mnist", data_dir=cache, files=(mnist,))
    assert target.is_file()


def test_wrong_hash_in_cache_is_reported_and_kept(remote):
    server, cache = remote
    mnist, _ = make_mnist(server)
    target = cache / "mnist" / "mnist.npz"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the real file")
    with pytest.raises(CorruptDataFile) as info:
        downloads.fetch_file(mnist, target, offline=False, dataset="mnist")
    assert str(target) in str(info.value)
    assert mnist.origin in str(info.value)
    assert target.read_bytes() == b"not the real file"  # never deleted behind the user's back


def test_download_of_missing_url_leaves_nothing(remote):
    server, cache = remote
    missing = RemoteFile("mnist.npz", (server / "absent.npz").as_uri(), "0" * 64)
    target = cache / "mnist" / "mnist.npz"
    with pytest.raises(DatasetUnavailable) as info:
        downloads.fetch_file(missing, target, offline=False, dataset="mnist")
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
        downloads.fetch_file(bad, target, offline=False, dataset="mnist")
    assert "offline" not in str(caught.value)
    assert not target.exists()
    assert staging_leftovers(cache) == []


def test_missing_files_and_ensure_available(remote, monkeypatch):
    server, cache = remote
    mnist, _ = make_mnist(server)
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"mnist": (mnist,)})
    assert downloads.missing_files("digits", data_dir=cache) == []
    assert downloads.missing_files("mnist", data_dir=cache) == [cache / "mnist" / "mnist.npz"]
    downloads.ensure_available("digits", data_dir=cache, offline=True)  # no-op, no error
    with pytest.raises(DatasetUnavailable):
        downloads.ensure_available("mnist", data_dir=cache, offline=True)
    downloads.ensure_available("mnist", data_dir=cache, offline=False)
    assert downloads.missing_files("mnist", data_dir=cache) == []


# --- parsing, end to end through load_dataset ---------------------------------------------------------

def test_load_mnist_end_to_end(remote, monkeypatch):
    server, cache = remote
    mnist, (x_train, y_train, x_test, y_test) = make_mnist(server)
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"mnist": (mnist,)})
    ds = datasets.load_dataset("mnist", data_dir=cache, offline=False)
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
    again = datasets.load_dataset("mnist", data_dir=cache, offline=True)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    # quick-mode subsample on the 28x28 set
    small = datasets.load_dataset("mnist", data_dir=cache, offline=True, max_train=20, max_test=10)
    assert small.x_train.shape == (20, 28, 28, 1) and small.x_test.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(small.y_train, minlength=10), np.full(10, 2))


def test_load_fashion_mnist_end_to_end(remote, monkeypatch):
    server, cache = remote
    remotes, (x_train, y_train, x_test, y_test) = make_fashion(server)
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"fashion_mnist": remotes})
    ds = datasets.load_dataset("fashion-mnist", data_dir=cache, offline=False)
    for name in IDX_NAMES:
        assert (cache / "fashion_mnist" / name).is_file()
    assert ds.name == "fashion_mnist"
    assert ds.x_train.shape == (40, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_allclose(ds.x_train[..., 0], x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, y_train.astype(np.int64))
    np.testing.assert_array_equal(ds.y_test, y_test.astype(np.int64))
    assert ds.class_names == datasets.FASHION_MNIST_CLASSES
    assert ds.class_names[9] == "Ankle boot"
    assert ds.x_train.max() <= 1.0 and ds.x_train.min() >= 0.0


def test_load_mnist_with_bad_npz_content(remote, monkeypatch):
    server, cache = remote
    path = server / "mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8))  # keys missing
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"mnist": (RemoteFile("mnist.npz", path.as_uri(), sha256(path)),)})
    with pytest.raises(CorruptDataFile, match="y_train"):
        datasets.load_dataset("mnist", data_dir=cache, offline=False)


def test_load_mnist_with_mismatched_pairs(remote, monkeypatch):
    server, cache = remote
    path = server / "mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"mnist": (RemoteFile("mnist.npz", path.as_uri(), sha256(path)),)})
    with pytest.raises(CorruptDataFile, match="do not match"):
        datasets.load_dataset("mnist", data_dir=cache, offline=False)


def test_load_mnist_offline_not_cached(tmp_path):
    with pytest.raises(DatasetUnavailable) as info:
        datasets.load_dataset("mnist", data_dir=tmp_path, offline=True)
    assert str(tmp_path / "mnist" / "mnist.npz") in str(info.value)
    assert "https://" in str(info.value)


# --- read_idx -----------------------------------------------------------------------------------

def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    result = downloads.read_idx(write_idx(tmp_path / "a.gz", array))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)
    labels = downloads.read_idx(write_idx(tmp_path / "b.gz", np.array([3, 1, 4], np.uint8)))
    np.testing.assert_array_equal(labels, [3, 1, 4])


def test_read_idx_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(CorruptDataFile, match="gzip"):
        downloads.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "a.gz", np.arange(1000, dtype=np.uint32).astype(np.uint8).reshape(10, 100))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CorruptDataFile):
        downloads.read_idx(path)


@pytest.mark.parametrize("magic", [bytes([0, 0, 0x0D, 1]), bytes([1, 0, 0x08, 1]), bytes([0, 0])])
def test_read_idx_bad_magic(tmp_path, magic):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(magic + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(CorruptDataFile, match="magic"):
        downloads.read_idx(path)


def test_read_idx_truncated_data(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 3, 4) + bytes(10))  # 12 promised
    with pytest.raises(CorruptDataFile, match=r"\(3, 4\)"):
        downloads.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "header.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 3))
    with pytest.raises(CorruptDataFile, match="header"):
        downloads.read_idx(path)


def test_load_fashion_with_corrupt_idx_content(remote, monkeypatch):
    server, cache = remote
    remotes, arrays = make_fashion(server)
    # replace the test labels with a file whose header lies about its size (and publish its hash)
    bad = server / IDX_NAMES[3]
    with gzip.open(bad, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 50) + bytes(20))
    remotes = remotes[:3] + (RemoteFile(IDX_NAMES[3], bad.as_uri(), md5(bad)),)
    monkeypatch.setattr(downloads, "REMOTE_FILES", {"fashion_mnist": remotes})
    with pytest.raises(CorruptDataFile, match="t10k-labels"):
        datasets.load_dataset("fashion_mnist", data_dir=cache, offline=False)


def test_file_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert downloads.file_digest(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert downloads.file_digest(path, "sha256") == hashlib.sha256(b"abc").hexdigest()

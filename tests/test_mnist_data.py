"""The real MNIST files (facts from their README) and the embedded sample cut from them."""

import functools
import shutil

import numpy
import pytest

from fastnet.datasets import idx, load_dataset, load_mnist
from fastnet.datasets.catalog import MNIST
from fastnet.datasets.download import md5_of_file
from fastnet.datasets.sample import load_sample_arrays
from fastnet.errors import DataError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@functools.cache
def full_mnist(directory, **options):
    """Loaded once per option set: decompressing 47 MB takes about a second."""
    return load_mnist(data_dir=directory, download=False, progress=False, **options)


@pytest.mark.data
def test_full_mnist_facts(mnist_dir):
    (x_train, t_train), (x_test, t_test) = full_mnist(mnist_dir)
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == numpy.float32 and t_train.dtype == numpy.int64
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert t_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert numpy.bincount(t_train, minlength=10).tolist() == TRAIN_COUNTS
    assert 0.0 == x_train.min() and x_train.max() == 1.0
    assert abs(float(x_train.mean(dtype=numpy.float64)) - 0.1307) < 1e-4
    assert abs(float(x_train.std(dtype=numpy.float64)) - 0.3081) < 1e-4


@pytest.mark.data
def test_full_mnist_unflattened_raw_and_one_hot(mnist_dir):
    (x_flat, t_train), _ = full_mnist(mnist_dir)
    (x_raw, t_hot), (x_test_raw, _) = full_mnist(mnist_dir, normalize=False, flatten=False, one_hot_label=True)
    assert x_raw.shape == (60000, 1, 28, 28) and x_test_raw.shape == (10000, 1, 28, 28)
    assert x_raw.dtype == numpy.uint8
    numpy.testing.assert_array_equal(x_raw.reshape(60000, 784).astype(numpy.float32) / numpy.float32(255), x_flat)
    assert t_hot.shape == (60000, 10) and t_hot.dtype == numpy.float32
    assert (t_hot.sum(axis=1) == 1).all() and (t_hot.argmax(axis=1) == t_train).all()


@pytest.mark.data
def test_recompressed_shared_files_pass_the_content_check(mnist_dir):
    # The image files were re-compressed: their .gz MD5 differs, their content is the official one.
    images = mnist_dir / MNIST.test_images.gz_name
    labels = mnist_dir / MNIST.test_labels.gz_name
    assert md5_of_file(images) != MNIST.test_images.gz_md5
    assert md5_of_file(labels) == MNIST.test_labels.gz_md5
    assert idx.content_md5(idx.read_images(images), idx.IMAGES_MAGIC) == MNIST.test_images.content_md5
    assert idx.content_md5(idx.read_labels(labels), idx.LABELS_MAGIC) == MNIST.test_labels.content_md5


@pytest.mark.data
def test_a_file_with_other_content_is_refused(mnist_dir, tmp_path):
    for f in MNIST.files:
        (tmp_path / f.gz_name).symlink_to(mnist_dir / f.gz_name)
    (tmp_path / MNIST.train_images.gz_name).unlink()
    shutil.copy(mnist_dir / MNIST.test_images.gz_name, tmp_path / MNIST.train_images.gz_name)
    with pytest.raises(DataError, match="not the official MNIST train-images-idx3-ubyte"):
        load_mnist(data_dir=tmp_path, download=False)


def test_sample_is_balanced_uint8():
    arrays = load_sample_arrays()
    for split, n, per_class, total in (("train", 10000, 1000, 60000), ("test", 2000, 200, 10000)):
        x, t, index = arrays[f"x_{split}"], arrays[f"t_{split}"], arrays[f"{split}_index"]
        assert x.shape == (n, 28, 28) and x.dtype == numpy.uint8
        assert t.shape == (n,) and t.dtype == numpy.uint8
        assert numpy.bincount(t, minlength=10).tolist() == [per_class] * 10
        assert (numpy.diff(index) > 0).all() and 0 <= index[0] and index[-1] < total


def test_sample_dataset_is_prepared_like_the_full_one():
    data = load_dataset("sample", flatten=False)
    assert data.is_sample and data.source == "embedded sample" and data.name == "mnist-sample"
    assert data.x_train.shape == (10000, 1, 28, 28) and data.x_train.dtype == numpy.float32
    assert data.t_test.shape == (2000,) and data.t_test.dtype == numpy.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


@pytest.mark.data
def test_sample_images_are_the_real_ones_at_the_recorded_indices(mnist_dir):
    arrays = load_sample_arrays()
    for split, images_file, labels_file in (
        ("train", MNIST.train_images, MNIST.train_labels),
        ("test", MNIST.test_images, MNIST.test_labels),
    ):
        images, labels = idx.read_pair(mnist_dir / images_file.gz_name, mnist_dir / labels_file.gz_name)
        index = arrays[f"{split}_index"]
        assert images[index].tobytes() == arrays[f"x_{split}"].tobytes()
        numpy.testing.assert_array_equal(labels[index], arrays[f"t_{split}"])


def test_full_fashion_mnist_loads_in_the_same_format(mnist_dir):
    folder = mnist_dir.parent / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found beside MNIST ({folder})")
    from fastnet.datasets import load_fashion_mnist

    (x_train, t_train), (x_test, t_test) = load_fashion_mnist(data_dir=folder, flatten=False)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == numpy.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert numpy.bincount(t_train).tolist() == [6000] * 10
    assert numpy.bincount(t_test).tolist() == [1000] * 10


def test_input_shapes_come_from_the_data_set_catalog():
    from fastnet.datasets.catalog import MNIST, image_shape, input_shape

    assert MNIST.image_shape == (1, 28, 28)
    assert input_shape("mnist", flatten=True) == (784,) and input_shape("fashion-mnist", False) == (1, 28, 28)
    assert image_shape("sample") == MNIST.image_shape


def test_images_take_the_shape_their_catalog_entry_declares():
    """A 3x32x32 data set needs only its reader and its entry: the preparation follows the shape."""
    from fastnet.datasets.mnist import _make

    rng = numpy.random.default_rng(0)
    raw = [
        rng.integers(0, 256, (5, 3, 32, 32), dtype=numpy.uint8),
        numpy.arange(5) % 10,
        rng.integers(0, 256, (2, 3, 32, 32), dtype=numpy.uint8),
        numpy.arange(2),
    ]
    images = _make("rgb", "here", raw, tuple("0123456789"), (3, 32, 32), normalize=True, flatten=False, one_hot=False)
    assert images.x_train.shape == (5, 3, 32, 32) and images.x_train.dtype == numpy.float32
    numpy.testing.assert_array_equal(images.x_train * 255, raw[0].astype(numpy.float32))
    rows = _make("rgb", "here", raw, tuple("0123456789"), (3, 32, 32), normalize=False, flatten=True, one_hot=False)
    assert rows.x_test.shape == (2, 3 * 32 * 32)

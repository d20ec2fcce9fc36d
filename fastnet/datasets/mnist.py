"""MNIST and Fashion-MNIST with the book's ``load_mnist`` interface, plus ``load_dataset``.

``load_dataset`` returns a ``Dataset`` that also says where the data came from; ``load_mnist``
returns the book's ``(x_train, t_train), (x_test, t_test)``.  Where and how files are found
and downloaded is described in ``fastnet.datasets.locate``.  When full MNIST cannot be had
(offline, no local copy) one line on stderr says so and the embedded sample stands in;
Fashion-MNIST has no sample and raises DataError instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy

from fastnet.datasets import locate, sample
from fastnet.datasets.catalog import DATASET_NAMES, MNIST, SPECS
from fastnet.datasets.download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from fastnet.errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Prepared arrays and where they came from (``source``: a folder or "embedded sample")."""

    name: str
    source: str
    x_train: numpy.ndarray
    t_train: numpy.ndarray
    x_test: numpy.ndarray
    t_test: numpy.ndarray
    classes: tuple[str, ...]

    @property
    def is_sample(self):
        return self.source == sample.SOURCE

    def as_tuples(self):
        return (self.x_train, self.t_train), (self.x_test, self.t_test)

    def describe(self):
        return f"{self.name}: {len(self.x_train):,} training and {len(self.x_test):,} test images from {self.source}"


def load_dataset(
    name="mnist",
    normalize=True,
    flatten=True,
    one_hot_label=False,
    data_dir=None,
    download=True,
    progress=True,
    verify=True,
    mirrors=None,
    timeout=DEFAULT_TIMEOUT,
    deadline=DEFAULT_DEADLINE,
) -> Dataset:
    """Load ``name`` ("mnist", "fashion-mnist" or "sample", the embedded MNIST sample).

    Images come as float32 in [0, 1] with ``normalize`` (uint8 0..255 without), shaped
    (N, C*H*W) with ``flatten`` or (N, C, H, W) without (MNIST: 784 or 1x28x28; the data
    set's ``image_shape`` in ``fastnet.datasets.catalog``); labels as int64 class indices, or
    float32 one-hot rows with ``one_hot_label``.  ``verify`` checks each file's content MD5
    against the official one (turn it off for your own IDX files); ``mirrors`` (base URLs),
    ``timeout`` (seconds of network silence per mirror) and ``deadline`` (seconds one mirror
    may take for one whole file) control downloads.
    """
    if name not in DATASET_NAMES:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    prepare = dict(normalize=normalize, flatten=flatten, one_hot=one_hot_label)
    if name == "sample":
        return _sample_dataset(prepare)
    spec = SPECS[name]
    try:
        *arrays, source = locate.load_arrays(spec, data_dir, download, progress, verify, mirrors, timeout, deadline)
    except locate.Unavailable as exc:
        if spec is not MNIST:
            raise
        # Nothing to be had in the default places: say so once, then work on the real subset.
        print(f"fastnet: full MNIST unavailable, using the embedded sample instead: {exc}", file=sys.stderr)
        return _sample_dataset(prepare)
    return _make(spec.name, source, arrays, spec.classes, spec.image_shape, **prepare)


def load_mnist(
    normalize=True, flatten=True, one_hot_label=False, data_dir=None, download=True, progress=True, **options
):
    """The book's loader: ``(x_train, t_train), (x_test, t_test)``; see ``load_dataset``."""
    return load_dataset("mnist", normalize, flatten, one_hot_label, data_dir, download, progress, **options).as_tuples()


def load_fashion_mnist(
    normalize=True, flatten=True, one_hot_label=False, data_dir=None, download=True, progress=True, **options
):
    """Fashion-MNIST, same interface and layout as ``load_mnist``."""
    return load_dataset(
        "fashion-mnist", normalize, flatten, one_hot_label, data_dir, download, progress, **options
    ).as_tuples()


def _sample_dataset(prepare):
    arrays = sample.load_sample_arrays()
    raw = [arrays[k] for k in ("x_train", "t_train", "x_test", "t_test")]
    return _make("mnist-sample", sample.SOURCE, raw, MNIST.classes, MNIST.image_shape, **prepare)


def _make(name, source, arrays, classes, image_shape, normalize, flatten, one_hot):
    x_train, t_train, x_test, t_test = arrays
    n_classes = len(classes)
    return Dataset(
        name,
        source,
        _images(x_train, image_shape, normalize, flatten),
        _labels(t_train, one_hot, n_classes),
        _images(x_test, image_shape, normalize, flatten),
        _labels(t_test, one_hot, n_classes),
        tuple(classes),
    )


def _images(images, image_shape, normalize, flatten):
    """(N, C*H*W) with ``flatten``, else (N, C, H, W) for the data set's ``image_shape``."""
    x = images
    if normalize:
        x = images.astype(numpy.float32)  # straight from uint8, no float64 step
        x /= numpy.float32(255)
    n = len(images)
    return x.reshape(n, -1) if flatten else x.reshape(n, *image_shape)


def _labels(labels, one_hot, num_classes):
    if not one_hot:
        return labels.astype(numpy.int64)
    rows = numpy.zeros((len(labels), num_classes), dtype=numpy.float32)
    rows[numpy.arange(len(labels)), labels] = 1.0
    return rows


__all__ = ["DATASET_NAMES", "Dataset", "load_dataset", "load_fashion_mnist", "load_mnist"]

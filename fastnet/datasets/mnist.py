"""MNIST and Fashion-MNIST with the book's ``load_mnist`` interface, plus ``load_dataset``.

``load_dataset`` returns a ``Dataset`` that also says where the data came from; ``load_mnist``
returns the book's ``(x_train, t_train), (x_test, t_test)``.  Where and how files are found
and downloaded is described in ``fastnet.datasets.locate``.  When full MNIST cannot be had
(offline, no local copy) one line on stderr says so and the embedded sample stands in;
Fashion-MNIST has no sample and raises DataError instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy

from fastnet.annotations import PathLike
from fastnet.datasets import locate, sample
from fastnet.datasets.catalog import DATASET_NAMES, MNIST, SPECS
from fastnet.datasets.download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from fastnet.errors import InputError


@dataclass(frozen=True)
class Dataset:
    """Prepared arrays and where they came from (``source``: a folder or "embedded sample").

    Made by :func:`load_dataset`.  ``classes`` names the classes by label index.
    """

    name: str
    source: str
    x_train: numpy.ndarray
    t_train: numpy.ndarray
    x_test: numpy.ndarray
    t_test: numpy.ndarray
    classes: tuple[str, ...]

    @property
    def is_sample(self) -> bool:
        """True when the data is the embedded MNIST sample rather than the full data set."""
        return self.source == sample.SOURCE

    def as_tuples(self) -> tuple[tuple[numpy.ndarray, numpy.ndarray], tuple[numpy.ndarray, numpy.ndarray]]:
        """The book's layout: ``(x_train, t_train), (x_test, t_test)``."""
        return (self.x_train, self.t_train), (self.x_test, self.t_test)

    def describe(self) -> str:
        """One line: the name, the numbers of images and where they came from."""
        return f"{self.name}: {len(self.x_train):,} training and {len(self.x_test):,} test images from {self.source}"


def load_dataset(
    name: str = "mnist",
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    data_dir: PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    verify: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> Dataset:
    """Load ``name`` ("mnist", "fashion-mnist" or "sample", the embedded MNIST sample).

    Images come as float32 in [0, 1] with ``normalize`` (uint8 0..255 without), shaped
    (N, C*H*W) with ``flatten`` or (N, C, H, W) without (MNIST: 784 or 1x28x28; the data
    set's ``image_shape`` in ``fastnet.datasets.catalog``); labels as int64 class indices, or
    float32 one-hot rows with ``one_hot_label``.  ``verify`` checks each file's content MD5
    against the official one (turn it off for your own IDX files); ``mirrors`` (base URLs),
    ``timeout`` (seconds of network silence per mirror) and ``deadline`` (seconds one mirror
    may take for one whole file) control downloads.

    Parameters
    ----------
    name : str
        One of ``DATASET_NAMES``.
    normalize, flatten, one_hot_label : bool
        How the arrays are prepared (above).
    data_dir : str, os.PathLike or None
        A folder holding the IDX files; None for the usual places (``fastnet.datasets.locate``).
    download : bool
        Download missing files (to the cache folder) when no local copy is found.
    progress : bool
        Show a progress bar while downloading.
    verify : bool
        Check the files' MD5 sums against the official ones.
    mirrors : sequence of str or None
        Base URLs to download from, in order; None for the built-in list.
    timeout, deadline : float
        Seconds, as above.

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        For an unknown ``name``.
    DataError
        When the files are damaged, or Fashion-MNIST cannot be found or downloaded.

    Examples
    --------
    >>> data = load_dataset("sample")
    >>> data.x_train.shape, data.x_train.dtype, data.t_train[:5]
    ((10000, 784), dtype('float32'), array([...]))
    >>> data.is_sample
    True
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
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    data_dir: PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    **options: Any,
) -> tuple[tuple[numpy.ndarray, numpy.ndarray], tuple[numpy.ndarray, numpy.ndarray]]:
    """The book's loader: ``(x_train, t_train), (x_test, t_test)``; see ``load_dataset``.

    ``options`` are ``load_dataset``'s other keywords (``verify``, ``mirrors``, ``timeout``,
    ``deadline``).  Without full MNIST (offline, no local copy) the embedded sample stands in,
    as one line on stderr says.
    """
    return load_dataset("mnist", normalize, flatten, one_hot_label, data_dir, download, progress, **options).as_tuples()


def load_fashion_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    data_dir: PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    **options: Any,
) -> tuple[tuple[numpy.ndarray, numpy.ndarray], tuple[numpy.ndarray, numpy.ndarray]]:
    """Fashion-MNIST, same interface and layout as ``load_mnist``.

    Raises
    ------
    DataError
        When the files cannot be found or downloaded (there is no embedded sample of it).
    """
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

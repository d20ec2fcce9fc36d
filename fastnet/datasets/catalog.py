"""What each downloadable dataset is: its four files, their checksums and where to get them."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy


@dataclass(frozen=True)
class IdxFile:
    """One file of a dataset.

    ``gz_md5`` is the MD5 of the official ``.gz`` download; ``content_md5`` that of the
    decompressed IDX bytes, which stays the same when a local copy was re-compressed.
    """

    name: str  # without ".gz"
    gz_md5: str
    content_md5: str

    @property
    def gz_name(self):
        return self.name + ".gz"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    mirrors: tuple[str, ...]
    mirrors_env: str  # comma-separated base URLs that replace ``mirrors``
    classes: tuple[str, ...]
    image_shape: tuple = (1, 28, 28)  # (channels, height, width) of one image

    @property
    def files(self):
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)

    def mirror_list(self, mirrors=None):
        """``mirrors`` if given, else the environment variable's list, else the defaults."""
        if mirrors is None:
            env = os.environ.get(self.mirrors_env, "")
            mirrors = [m for m in (p.strip() for p in env.split(",")) if m] or self.mirrors
        return tuple(m if m.endswith("/") else m + "/" for m in mirrors)


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    train_images=IdxFile(
        "train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"
    ),
    train_labels=IdxFile(
        "train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"
    ),
    test_images=IdxFile(
        "t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"
    ),
    test_labels=IdxFile(
        "t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    mirrors_env="FASTNET_MNIST_MIRRORS",
    classes=tuple(str(d) for d in range(10)),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    train_images=IdxFile(
        "train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"
    ),
    train_labels=IdxFile(
        "train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"
    ),
    test_images=IdxFile(
        "t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"
    ),
    test_labels=IdxFile(
        "t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    mirrors_env="FASTNET_FASHION_MNIST_MIRRORS",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)

SPECS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
SAMPLE_NAME = "sample"  # the embedded MNIST sample (fastnet.datasets.sample)
DATASET_NAMES = (*SPECS, SAMPLE_NAME)


def image_shape(dataset: str) -> tuple:
    """(C, H, W) of one image of ``dataset`` (the embedded sample is MNIST's)."""
    return SPECS.get(dataset, MNIST).image_shape


def input_shape(dataset: str, flatten: bool) -> tuple:
    """One sample as a net takes it: (C*H*W,) flattened, else (C, H, W)."""
    shape = image_shape(dataset)
    return (int(numpy.prod(shape)),) if flatten else tuple(shape)

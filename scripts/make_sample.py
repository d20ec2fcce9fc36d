"""Cut the embedded MNIST sample that fastnet uses when the full set cannot be had.

Provenance: from the official MNIST files (decompressed MD5s checked), for each digit 0..9 draw
1,000 training and 200 test images without replacement with ``numpy.random.default_rng(SEED)``
(classes in order 0..9, training set first), then keep the chosen images in their original
file order.  The chosen positions are stored in the file itself as ``train_index`` and
``test_index`` (0-based positions in train-images / t10k-images), so every sample image can be
traced back to, and compared with, the original.

    python scripts/make_sample.py [MNIST_DIR]      (default: ../shared/data/mnist)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy

from fastnet.atomic import atomic_write
from fastnet.datasets import idx
from fastnet.datasets.catalog import MNIST
from fastnet.datasets.sample import SAMPLE_PATH

SEED = 1998
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200


def balanced_indices(labels, per_class, rng):
    chosen = [rng.choice(numpy.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return numpy.sort(numpy.concatenate(chosen)).astype(numpy.int32)


def read_checked(directory, images_file, labels_file):
    images, labels = idx.read_pair(
        directory / images_file.gz_name, directory / labels_file.gz_name, num_classes=10, item_shape=(28, 28)
    )
    for array, spec, magic in ((images, images_file, idx.IMAGES_MAGIC), (labels, labels_file, idx.LABELS_MAGIC)):
        if idx.content_md5(array, magic) != spec.content_md5:
            sys.exit(f"{directory / spec.gz_name} is not the official MNIST file (MD5 mismatch)")
    return images, labels


def main(argv):
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    x_train, t_train = read_checked(directory, MNIST.train_images, MNIST.train_labels)
    x_test, t_test = read_checked(directory, MNIST.test_images, MNIST.test_labels)
    rng = numpy.random.default_rng(SEED)
    train_index = balanced_indices(t_train, TRAIN_PER_CLASS, rng)
    test_index = balanced_indices(t_test, TEST_PER_CLASS, rng)
    arrays = dict(
        x_train=x_train[train_index],
        t_train=t_train[train_index],
        x_test=x_test[test_index],
        t_test=t_test[test_index],
        train_index=train_index,
        test_index=test_index,
    )
    atomic_write(SAMPLE_PATH, lambda f: numpy.savez_compressed(f, **arrays))
    print(
        f"wrote {SAMPLE_PATH} ({SAMPLE_PATH.stat().st_size / 1e6:.2f} MB): "
        f"{len(train_index):,} train + {len(test_index):,} test images"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""Gzip bombs and lying IDX headers cost no more memory than the data really there, once.

Peak resident memory is measured in a fresh child process, as a user's run would meet it.
"""

import struct

import numpy
import pytest
from idx_factory import IMAGES_MAGIC, gz, gzip_of_zeros, write, write_idx
from peak_memory import MiB, python_peak

from fastnet.datasets.catalog import MNIST

BOMB_IMAGES = 1_360_000  # 1.07 GB of zeros in a 1 MB gzip: within the reader's size limits
HEADER = struct.pack(">4I", IMAGES_MAGIC, BOMB_IMAGES, 28, 28)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("bomb") / MNIST.train_images.gz_name, gzip_of_zeros(HEADER, BOMB_IMAGES * 784))
    assert path.stat().st_size < 1.1e6
    return path


def test_bomb_whose_labels_disagree_is_refused_before_reading_an_image(bomb, tmp_path, rng):
    labels = write_idx(bomb.parent / MNIST.train_labels.gz_name, rng.integers(0, 10, 60_000, dtype=numpy.uint8))
    printed, peak = python_peak(
        f"""
        from fastnet.datasets.idx import read_pair
        read_pair({str(bomb)!r}, {str(labels)!r}, item_shape=(28, 28))
    """,
        tmp_path,
    )
    assert f"{BOMB_IMAGES:,} images" in printed and "60,000 labels" in printed and "\n" not in printed
    assert peak < 200 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_a_data_folder_holding_the_bomb_is_refused_before_reading_it(bomb, tmp_path, rng):
    folder = bomb.parent
    write_idx(folder / MNIST.train_labels.gz_name, rng.integers(0, 10, 60_000, dtype=numpy.uint8))
    write_idx(folder / MNIST.test_images.gz_name, rng.integers(0, 256, (5, 28, 28), dtype=numpy.uint8))
    write_idx(folder / MNIST.test_labels.gz_name, rng.integers(0, 10, 5, dtype=numpy.uint8))
    printed, peak = python_peak(
        f"""
        from fastnet.datasets import load_dataset
        load_dataset("mnist", data_dir={str(folder)!r}, download=False, verify=False)
    """,
        tmp_path,
    )
    assert str(bomb) in printed and f"{BOMB_IMAGES:,} images" in printed
    assert peak < 200 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_images_are_held_once_while_read(tmp_path):
    count = 300_000  # 235 MB of pixels
    path = write(tmp_path / "images.gz", gzip_of_zeros(struct.pack(">4I", IMAGES_MAGIC, count, 28, 28), count * 784))
    printed, peak = python_peak(
        f"""
        from fastnet.datasets.idx import read_images
        print(read_images({str(path)!r}).shape)
    """,
        tmp_path,
    )
    assert printed == f"({count}, 28, 28)"
    payload = count * 784
    assert peak < payload + 100 * MiB, f"peak RSS {peak / MiB:.0f} MiB for {payload / MiB:.0f} MiB of pixels"


def test_declared_count_beyond_the_data_is_refused_as_soon_as_the_data_ends(tmp_path, rng):
    present = rng.integers(0, 256, 1_100_000, dtype=numpy.uint8).tobytes()  # incompressible
    path = write(tmp_path / "short.gz", gz(HEADER + present))
    printed, peak = python_peak(
        f"""
        from fastnet.datasets.idx import read_images
        read_images({str(path)!r})
    """,
        tmp_path,
    )
    assert "truncated" in printed and f"only {len(present):,} are there" in printed
    assert peak < 150 * MiB, f"peak RSS {peak / MiB:.0f} MiB"


def test_unverified_images_the_host_cannot_hold_are_refused_before_reading(bomb, tmp_path, rng):
    """verify=False on the bomb with labels that agree on its 1.36 M images: refused from the
    header, in one line, before the 1 GB of pixels (and their 4 GB float32 copy) is allocated."""
    folder = bomb.parent
    write_idx(folder / MNIST.train_labels.gz_name, numpy.zeros(BOMB_IMAGES, dtype=numpy.uint8))
    write_idx(folder / MNIST.test_images.gz_name, rng.integers(0, 256, (5, 28, 28), dtype=numpy.uint8))
    write_idx(folder / MNIST.test_labels.gz_name, rng.integers(0, 10, 5, dtype=numpy.uint8))
    printed, peak = python_peak(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a 4 GiB process, as under ulimit -v
        from fastnet.datasets import load_dataset
        load_dataset("mnist", data_dir={str(folder)!r}, download=False, verify=False)
    """,
        tmp_path,
    )
    assert f"holds {BOMB_IMAGES:,} images, which need about 4.97 GiB" in printed and "is available" in printed
    assert peak < 200 * MiB, f"peak RSS {peak / MiB:.0f} MiB"

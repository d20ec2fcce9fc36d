"""Builds IDX files for tests: the exact bytes the MNIST format prescribes, gzipped or not."""

import gzip
import struct
from pathlib import Path

import numpy

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def idx_bytes(array, magic=None):
    """Header (magic, big-endian sizes) followed by the uint8 values."""
    array = numpy.ascontiguousarray(array, dtype=numpy.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: same bytes on every run


def write(path, data):
    path = Path(path)
    path.write_bytes(data)
    return path


def write_idx(path, array, gzipped=True, magic=None):
    data = idx_bytes(array, magic)
    return write(path, gz(data) if gzipped else data)


def random_split(rng, n, rows=28, cols=28, num_classes=10):
    """Random uint8 images (n, rows, cols) and labels (n,)."""
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=numpy.uint8)
    labels = rng.integers(0, num_classes, size=n, dtype=numpy.uint8)
    return images, labels


def gzip_of_zeros(prefix, zero_bytes):
    """A valid gzip file of ``prefix`` and ``zero_bytes`` zeros, built in
    about a second for a gigabyte: the deflate stream repeats one segment (see npz_factory)."""
    import zlib

    from npz_factory import MiB, deflated_zeros

    crc, zeros = zlib.crc32(prefix), bytes(16 * MiB)
    for start in range(0, zero_bytes, len(zeros)):
        crc = zlib.crc32(zeros[: min(len(zeros), zero_bytes - start)], crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (len(prefix) + zero_bytes) & 0xFFFFFFFF
    return header + deflated_zeros(prefix, zero_bytes) + struct.pack("<II", crc, size)

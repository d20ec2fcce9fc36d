"""The IDX reader: exact round trips, and a one-line DataError naming the file for every defect."""

import gzip
import hashlib
import struct
import time
import tracemalloc

import numpy
import pytest
from idx_factory import IMAGES_MAGIC, LABELS_MAGIC, gz, idx_bytes, random_split, write, write_idx

from fastnet.datasets import idx
from fastnet.errors import DataError


@pytest.fixture
def split(rng):
    return random_split(rng, 7, rows=5, cols=4)


def assert_data_error(path, *words, **read_kwargs):
    with pytest.raises(DataError) as info:
        idx.read_idx(path, **read_kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("gzipped", [True, False])
def test_round_trip_images_and_labels(tmp_path, split, gzipped):
    images, labels = split
    ipath = write_idx(tmp_path / "images", images, gzipped)
    lpath = write_idx(tmp_path / "labels", labels, gzipped)
    got_images, got_labels = idx.read_pair(ipath, lpath, num_classes=10, item_shape=(5, 4))
    assert got_images.dtype == numpy.uint8 and got_labels.dtype == numpy.uint8
    numpy.testing.assert_array_equal(got_images, images)
    numpy.testing.assert_array_equal(got_labels, labels)
    got_images[0, 0, 0] ^= 1  # callers may modify what they were given
    assert got_images[0, 0, 0] != images[0, 0, 0]


def test_gzip_is_detected_by_content_not_by_name(tmp_path, split):
    images, _ = split
    plain_named_gz = write(tmp_path / "plain.gz", idx_bytes(images))
    gz_named_plain = write(tmp_path / "packed.idx", gz(idx_bytes(images)))
    numpy.testing.assert_array_equal(idx.read_images(plain_named_gz), images)
    numpy.testing.assert_array_equal(idx.read_images(gz_named_plain), images)


def test_content_md5_is_the_md5_of_the_decompressed_file(split):
    images, labels = split
    assert idx.content_md5(images, IMAGES_MAGIC) == hashlib.md5(idx_bytes(images)).hexdigest()
    assert idx.content_md5(labels, LABELS_MAGIC) == hashlib.md5(idx_bytes(labels)).hexdigest()


@pytest.mark.parametrize("gzipped", [True, False])
def test_labels_file_where_images_expected_names_the_magic(tmp_path, split, gzipped):
    path = write_idx(tmp_path / "labels", split[1], gzipped)
    assert_data_error(path, "magic number 2049", "2051", magic=IMAGES_MAGIC)


def test_not_an_idx_file(tmp_path):
    path = write(tmp_path / "page.html", b"<html>Not Found</html>")
    assert_data_error(path, "not an IDX uint8 file", "download it again")


def test_other_idx_value_types_are_refused(tmp_path):
    floats = struct.pack(">BBBBI", 0, 0, 0x0D, 1, 2) + struct.pack(">2f", 1.0, 2.0)
    assert_data_error(write(tmp_path / "floats", floats), "type 0x0d", "uint8")


def test_too_many_dimensions(tmp_path):
    header = bytes([0, 0, 8, 200]) + b"\0" * 800
    assert_data_error(write(tmp_path / "deep", header), "200 dimensions")


def test_wrong_item_shape(tmp_path, split):
    path = write_idx(tmp_path / "images.gz", split[0])
    assert_data_error(path, "(5, 4)", "(28, 28)", magic=IMAGES_MAGIC, item_shape=(28, 28))


@pytest.mark.parametrize("gzipped", [True, False])
def test_truncated_data(tmp_path, split, gzipped):
    data = idx_bytes(split[0])[:-10]
    path = write(tmp_path / "cut", gz(data) if gzipped else data)
    assert_data_error(path, "truncated", f"{split[0].size - 10:,} are there")


@pytest.mark.parametrize("gzipped", [True, False])
def test_truncated_header(tmp_path, split, gzipped):
    data = idx_bytes(split[0])[:9]
    path = write(tmp_path / "cut", gz(data) if gzipped else data)
    assert_data_error(path, "truncated inside its header")


@pytest.mark.parametrize("gzipped", [True, False])
def test_trailing_bytes(tmp_path, split, gzipped):
    data = idx_bytes(split[0]) + b"\x07" * 3
    path = write(tmp_path / "long", gz(data) if gzipped else data)
    assert_data_error(path, "beyond", "(7, 5, 4)")


def test_dims_that_do_not_match_the_data(tmp_path, split):
    images = split[0]
    data = struct.pack(">4I", IMAGES_MAGIC, 6, 5, 4) + images.tobytes()  # header says 6, data holds 7
    assert_data_error(write(tmp_path / "lying", data), "20 bytes beyond")


@pytest.mark.parametrize("gzipped", [True, False])
def test_huge_declared_dims_are_refused_before_allocating(tmp_path, gzipped):
    data = struct.pack(">4I", IMAGES_MAGIC, 2**31, 28, 28) + bytes(784)
    path = write(tmp_path / "huge", gz(data) if gzipped else data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        assert_data_error(path, "2147483648", magic=IMAGES_MAGIC)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5 and peak < 1 << 20


def test_header_larger_than_gzip_can_hold(tmp_path):
    # 784 MB declared, within the size limit, but no 1 kB gzip stream can inflate to that much.
    data = struct.pack(">4I", IMAGES_MAGIC, 1_000_000, 28, 28) + bytes(784)
    assert_data_error(write(tmp_path / "liar.gz", gz(data)), "more than a", "gzip file can hold")


def test_gzip_bomb_is_read_only_as_far_as_the_header_allows(tmp_path):
    # 40 MB of zeros compress to ~40 kB; the header claims 10 images, so reading stops early.
    bomb = gz(struct.pack(">4I", IMAGES_MAGIC, 10, 28, 28) + bytes(40_000_000))
    path = write(tmp_path / "bomb.gz", bomb)
    tracemalloc.start()
    try:
        assert_data_error(path, "more bytes beyond the 7,840")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_size_limit(tmp_path, split):
    path = write_idx(tmp_path / "images", split[0], gzipped=False)
    assert_data_error(path, "over the 100-byte limit", max_bytes=100)


@pytest.mark.parametrize("damage", ["flipped", "cut", "bad_crc", "garbage_after"])
def test_corrupt_gzip(tmp_path, rng, damage):
    images, _ = random_split(rng, 20)
    packed = bytearray(gz(idx_bytes(images)))
    if damage == "flipped":
        packed[len(packed) // 2] ^= 0xFF
    elif damage == "cut":
        packed = packed[: len(packed) // 2]
    elif damage == "bad_crc":
        packed[-8] ^= 0x01
    else:
        packed += b"not gzip"
    path = write(tmp_path / f"{damage}.gz", bytes(packed))
    with pytest.raises(DataError) as info:
        idx.read_idx(path)
    message = str(info.value)
    assert str(path) in message and "download it again" in message
    if damage != "flipped":  # a flipped byte may also surface as a wrong size
        assert "corrupt gzip" in message


def test_missing_file_and_directory(tmp_path):
    assert_data_error(tmp_path / "nothing.gz", "no such file")
    with pytest.raises(DataError, match="is a directory"):
        idx.read_idx(tmp_path)


def test_labels_out_of_range(tmp_path, split):
    images, labels = split
    labels = labels.copy()
    labels[3] = 10
    ipath = write_idx(tmp_path / "images", images)
    lpath = write_idx(tmp_path / "labels", labels)
    with pytest.raises(DataError) as info:
        idx.read_pair(ipath, lpath, num_classes=10)
    message = str(info.value)
    assert str(lpath) in message and "label 10 at index 3" in message and "0..9" in message


def test_count_mismatch_names_both_files(tmp_path, split):
    images, labels = split
    ipath = write_idx(tmp_path / "images", images)
    lpath = write_idx(tmp_path / "labels", labels[:-1])
    with pytest.raises(DataError) as info:
        idx.read_pair(ipath, lpath)
    message = str(info.value)
    assert str(ipath) in message and str(lpath) in message and "7 images" in message and "6 labels" in message


def test_empty_file(tmp_path):
    assert_data_error(write(tmp_path / "empty", b""), "too short")
    assert_data_error(write(tmp_path / "empty.gz", gzip.compress(b"")), "too short")


def test_a_set_with_no_images_is_refused_naming_it(tmp_path):
    ipath = write_idx(tmp_path / "images", numpy.zeros((0, 28, 28), numpy.uint8))
    lpath = write_idx(tmp_path / "labels", numpy.zeros(0, numpy.uint8))
    with pytest.raises(DataError) as info:
        idx.read_pair(ipath, lpath)
    message = str(info.value)
    assert str(ipath) in message and "holds no images" in message and "\n" not in message


def test_load_dataset_refuses_an_empty_training_set(tmp_path, rng):
    from fastnet.datasets import load_dataset
    from fastnet.datasets.catalog import MNIST

    arrays = [numpy.zeros((0, 28, 28), numpy.uint8), numpy.zeros(0, numpy.uint8), *random_split(rng, 5)]
    for spec_file, array in zip(MNIST.files, arrays, strict=True):
        write_idx(tmp_path / spec_file.gz_name, array)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False, verify=False)
    message = str(info.value)
    assert MNIST.train_images.gz_name in message and "holds no images" in message and "\n" not in message


def test_images_are_not_read_when_their_count_disagrees_with_the_labels(tmp_path, split):
    images, labels = split
    ipath = write(tmp_path / "images", idx_bytes(images)[:20])  # header, then only 4 of 140 pixels
    lpath = write_idx(tmp_path / "labels", labels[:3])
    with pytest.raises(DataError, match="7 images.*3 labels"):  # not "truncated": never read
        idx.read_pair(ipath, lpath)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_devices_and_fifos_are_refused_without_blocking(tmp_path, kind):
    import os

    if kind == "device":
        path, what = "/dev/zero", "character device"
    else:
        path, what = tmp_path / "pipe", "FIFO"
        os.mkfifo(path)
    assert_data_error(path, what, "not an IDX file")

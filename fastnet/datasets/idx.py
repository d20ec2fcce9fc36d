"""Reading IDX files (the MNIST format), gzipped or plain, without trusting the header.

An IDX file is a 4-byte magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, then
the values.  Everything the header claims is checked against the file before any array is
allocated, so a truncated download, a lying header or a gzip bomb ends in a one-line
``DataError`` naming the file, never in a MemoryError or a reshape traceback.  Values are read
in chunks into one preallocated array, so memory grows only with data that is really there
and never holds it twice; ``read_pair`` reads the small labels file first and refuses images
whose count disagrees before reading them.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib

import numpy

from fastnet.errors import DataError
from fastnet.files import NotRegularFile, open_regular

IMAGES_MAGIC = 2051  # 00 00 08 03: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # 00 00 08 01: unsigned bytes, 1 dimension (count)
UBYTE = 0x08
MAX_NDIM = 8
DEFAULT_MAX_BYTES = 1 << 30
# Deflate cannot expand data more than 1032-fold, so a header that declares more than that
# times the compressed size is lying and is refused before reading.
MAX_GZIP_RATIO = 1032
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20

FIX = "delete it and download it again (or replace it with an intact copy)"
WRONG_FILE = "check that it is the right file, or delete it and download it again"


def _fail(path, problem, fix=FIX):
    return DataError(f"{path}: {problem}; {fix}")


def read_idx(path, magic=None, item_shape=None, max_bytes=DEFAULT_MAX_BYTES, check_shape=None) -> numpy.ndarray:
    """The uint8 array stored in the IDX file at ``path``.

    ``magic`` (e.g. ``IMAGES_MAGIC``) and ``item_shape`` (the sizes after the count, e.g.
    ``(28, 28)``) are checked against the header when given; ``check_shape(shape)`` is called
    with the declared shape before any value is read and may raise DataError to refuse it.
    Raises DataError for any file that is not exactly what its header declares.
    """
    try:
        raw, stored_size = open_regular(path)
        with raw:
            is_gzip = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            header = dict(magic=magic, item_shape=item_shape, max_bytes=max_bytes, check_shape=check_shape)
            if is_gzip:
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read(f, path, stored_size, True, **header)
            return _read(raw, path, stored_size, False, **header)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path or let fastnet download the data") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not an IDX file; pass the file itself") from None
    except NotRegularFile as exc:
        raise DataError(f"{path} is {exc.kind}, not an IDX file; pass the file itself") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable") from None
    except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise _fail(path, f"corrupt gzip data ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check the disk and the path") from None


def _read(f, path, stored_size, is_gzip, magic, item_shape, max_bytes, check_shape):
    shape = _read_header(f, path, magic, item_shape)
    if check_shape is not None:
        check_shape(shape)
    header_size = 4 + 4 * len(shape)
    expected = math.prod(shape)  # Python int: no overflow however large the header claims
    if expected > max_bytes:
        raise _fail(
            path,
            f"header declares shape {shape} ({expected:,} bytes), over the "
            f"{max_bytes:,}-byte limit (a corrupt header?)",
        )
    if is_gzip and expected > MAX_GZIP_RATIO * stored_size:
        raise _fail(
            path,
            f"header declares shape {shape} ({expected:,} bytes), more than a "
            f"{stored_size:,}-byte gzip file can hold (truncated or corrupt)",
        )
    if not is_gzip and stored_size - header_size != expected:
        raise _fail(path, _size_problem(shape, expected, stored_size - header_size))
    # One array, filled in place: memory grows only with data that is really there, once.
    try:
        array = numpy.empty(shape, dtype=numpy.uint8)
    except ValueError:  # e.g. a zero beside dimensions whose product no array can index
        raise _fail(path, f"header declares shape {shape}, which no array can have (a corrupt header?)") from None
    filled = _read_into(f, array.reshape(-1).data)
    if filled < expected:
        raise _fail(path, _size_problem(shape, expected, filled))
    if is_gzip and f.read(1):  # also reaches the end of the stream, where gzip checks the CRC
        raise _fail(path, _size_problem(shape, expected, expected + 1, at_least=True))
    return array


def _read_header(f, path, magic, item_shape):
    head = f.read(4)
    if len(head) < 4:
        raise _fail(path, f"too short to be an IDX file ({len(head)} bytes)")
    zero, zero2, kind, ndim = head
    if zero or zero2 or kind != UBYTE:
        if magic is None and zero == zero2 == 0 and kind != UBYTE:
            raise _fail(
                path,
                f"holds IDX type 0x{kind:02x}; only unsigned bytes (0x08) are supported",
                "convert it to uint8 IDX",
            )
        raise _fail(path, f"is not an IDX uint8 file (magic bytes {head.hex()})")
    found_magic = int.from_bytes(head, "big")
    if magic is not None and found_magic != magic:
        raise _fail(
            path, f"has magic number {found_magic} but {magic} was expected ({_describe_magic(magic)})", WRONG_FILE
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise _fail(path, f"declares {ndim} dimensions (1 to {MAX_NDIM} supported)")
    dims_bytes = f.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise _fail(path, "is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", dims_bytes)
    if item_shape is not None and tuple(shape[1:]) != tuple(item_shape):
        raise _fail(path, f"holds items of shape {shape[1:]} but {tuple(item_shape)} was expected", WRONG_FILE)
    return shape


def _read_into(f, view):
    """Fill ``view`` in chunks (never a second copy of the data); returns how many bytes came."""
    filled = 0
    while filled < len(view):
        got = f.readinto(view[filled : filled + CHUNK])
        if not got:
            break
        filled += got
    return filled


def _size_problem(shape, expected, actual, at_least=False):
    if actual < expected:
        return f"is truncated: shape {shape} needs {expected:,} data bytes but only {actual:,} are there"
    more = "more" if at_least else f"{actual - expected:,}"
    return f"has {more} bytes beyond the {expected:,} its header declares for shape {shape}"


def _describe_magic(magic):
    return {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}.get(magic, "IDX")


def read_images(path, item_shape=None, max_bytes=DEFAULT_MAX_BYTES, check_shape=None):
    return read_idx(path, IMAGES_MAGIC, item_shape, max_bytes, check_shape)


def read_labels(path, max_bytes=DEFAULT_MAX_BYTES):
    return read_idx(path, LABELS_MAGIC, None, max_bytes)


def read_pair(images_path, labels_path, num_classes=10, item_shape=None):
    """Images and labels that belong together: same count (at least one), every label below
    ``num_classes``.  The labels (small) are read first, so images whose header disagrees with
    them are refused before a single image is read."""
    labels = read_labels(labels_path)
    check_labels(labels, labels_path, num_classes)
    images = read_images(images_path, item_shape, check_shape=same_count(labels, images_path, labels_path))
    return images, labels


def same_count(labels, images_path, labels_path):
    """A ``check_shape`` for ``read_images``: as many images as ``labels``, and not none."""

    def check(shape):
        if shape[0] != len(labels):
            raise DataError(
                f"{images_path} holds {shape[0]:,} images but {labels_path} holds "
                f"{len(labels):,} labels; the files do not belong together - "
                f"download both again"
            )
        if shape[0] == 0:
            raise DataError(
                f"{images_path} holds no images (and {labels_path} no labels); "
                f"a data set needs at least one image - use another data set"
            )

    return check


def check_labels(labels, labels_path, num_classes):
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(numpy.argmax(labels >= num_classes))
        raise _fail(labels_path, f"label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}")


def check_pair(images, labels, images_path, labels_path, num_classes):
    """The checks of ``read_pair`` on arrays already read."""
    same_count(labels, images_path, labels_path)(images.shape)
    check_labels(labels, labels_path, num_classes)


def content_md5(array: numpy.ndarray, magic: int) -> str:
    """MD5 of the decompressed IDX file holding ``array``: checks content, whatever the gzip bytes."""
    array = numpy.ascontiguousarray(array, dtype=numpy.uint8)
    ndim = magic & 0xFF
    if array.ndim != ndim:
        raise ValueError(f"magic {magic} needs a {ndim}-d array, got {array.ndim}-d")
    digest = hashlib.md5(struct.pack(f">I{ndim}I", magic, *array.shape))
    digest.update(array.data.cast("B"))
    return digest.hexdigest()

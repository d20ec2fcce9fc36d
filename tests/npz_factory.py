"""Builds hostile .npz files byte by byte: zip bombs, lying headers, members numpy would never write."""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy
from numpy.lib import format as npy_format

STORED, DEFLATED = 0, 8
MiB = 1 << 20


def npy_header(shape, descr="<f4"):
    """The .npy header of an array of ``shape`` (the data would follow it)."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def npy_bytes(array):
    buffer = io.BytesIO()
    npy_format.write_array(buffer, numpy.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def fastnet_header(meta=None):
    """The metadata member of a fastnet file (format 1)."""
    header = {"format": "fastnet-arrays", "version": 1, "meta": meta or {"kind": "checkpoint"}}
    return npy_bytes(numpy.array(json.dumps(header)))


def deflated_zeros(prefix, zero_bytes):
    """A raw deflate stream of ``prefix`` and ``zero_bytes`` zeros, built without compressing them all.

    After a full flush the compressor starts afresh, so every further MiB of zeros compresses
    to the same bytes: the stream repeats one segment.  About 1 KiB per MiB (deflate's ~1000:1).
    """
    assert zero_bytes >= 2 * MiB
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(prefix) + compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    rest = compressor.compress(bytes(zero_bytes % MiB)) + compressor.flush()
    return first + segment * (zero_bytes // MiB - 1) + rest


def write_zip(path, members, aliases=None):
    """``members``: (name, payload, method, declared_size, crc) each; the directory says what we say.

    A payload given as ``(data, n)`` is ``data`` then ``n`` zero bytes left as a hole (a sparse
    file: no disk used).  ``aliases`` maps extra names to the index of a member whose bytes their entries
    point at.
    """
    entries, position = [], 0
    with open(path, "wb") as f:
        for name, payload, method, size, crc in members:
            data, hole = payload if isinstance(payload, tuple) else (payload, 0)
            length = len(data) + hole
            entries.append((name, length, method, size, crc, position))
            f.write(
                struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, length, size, len(name), 0)
                + name.encode()
            )
            f.write(data)
            f.seek(hole, io.SEEK_CUR)
            position = f.tell()
        for alias, index in (aliases or {}).items():
            entries.append((alias,) + entries[index][1:])
        directory = bytearray()
        for name, length, method, size, crc, offset in entries:
            directory += (
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    method,
                    0,
                    0x21,
                    crc,
                    length,
                    size,
                    len(name),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + name.encode()
            )
        f.write(
            bytes(directory)
            + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), position, 0)
        )
    return Path(path)


def stored(name, data):
    return (name, data, STORED, len(data), zlib.crc32(data))


def zip_bomb(path, name="W1", declared_bytes=2384 * MiB, zero_bytes=None, meta=None, others=None):
    """A fastnet file whose array ``name`` declares ``declared_bytes`` of float32 zeros.

    The deflate stream really holds ``zero_bytes`` of zeros (default: all of them).  Its CRC is
    not computed (a reader that inflates everything meets it only at the very end).  ``others``:
    honest arrays stored beside it (name: array).
    """
    header = npy_header((declared_bytes // 4,))
    zero_bytes = declared_bytes if zero_bytes is None else zero_bytes
    stream = deflated_zeros(header, zero_bytes)
    return write_zip(
        path,
        [
            stored("__fastnet__.npy", fastnet_header(meta)),
            *_honest(others),
            (f"{name}.npy", stream, DEFLATED, len(header) + declared_bytes, 0),
        ],
    )


def sparse_giant(path, name="W1", declared_bytes=2384 * MiB, meta=None, others=None):
    """A fastnet file whose uncompressed array ``name`` really is ``declared_bytes`` of zeros,
    left as a hole: the file's size is honest, its disk use a few kB (CRC not computed)."""
    header = npy_header((declared_bytes // 4,))
    giant = (f"{name}.npy", (header, declared_bytes), STORED, len(header) + declared_bytes, 0)
    return write_zip(path, [stored("__fastnet__.npy", fastnet_header(meta)), *_honest(others), giant])


def _honest(others):
    return [stored(f"{key}.npy", npy_bytes(value)) for key, value in (others or {}).items()]

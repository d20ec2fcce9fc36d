"""Reading ``.npz`` archives without trusting them: every size is checked before data is read.

``numpy.load`` believes what an archive declares: a 2 MB zip whose member claims 2.5 GB is
allocated and inflated, a header claiming 10^12 elements ends in a MemoryError, and random
bytes are tried as a pickle.  Here the file must be a regular file; the zip directory must fit
in it (members inside the file, not overlapping, inflating at most as far as deflate can, or
as far as the caller allows); each
member's ``.npy`` header must declare exactly the bytes its directory entry holds, with a plain
numeric or string dtype (never objects: no pickle).  Only then is data read, in bounded chunks,
into one preallocated array per member, and its CRC checked.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass

import numpy
from numpy.lib import format as npy_format

from fastnet.files import open_regular

# Deflate cannot expand data more than 1032-fold (258 bytes from each 2-bit code at best).
MAX_DEFLATE_RATIO = 1032
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
PICKLE_PROTOCOLS = range(2, 6)
PLAIN_KINDS = "biufcUS"  # booleans, numbers and fixed-size strings
MAX_NPY_HEADER = 10_000
CHUNK = 1 << 20
# What zipfile, zlib and numpy's header parser raise on damaged bytes.
DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    SyntaxError,
    TypeError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
)


class ArchiveError(Exception):
    """Why the file is not a readable array archive (one phrase, without the path)."""


class NotAnArchive(ArchiveError):
    """The file is something else altogether (noise, text, a lone .npy, empty)."""


class PickleRefused(ArchiveError):
    """The file or one of its members holds pickled Python objects."""


@dataclass(frozen=True)
class Member:
    """One array as its ``.npy`` header declares it, checked against the zip directory."""

    name: str
    shape: tuple
    dtype: numpy.dtype
    fortran_order: bool
    info: zipfile.ZipInfo

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


class NpzArchive:
    """An open ``.npz`` whose directory and array headers passed every check; read arrays by name.

    ``max_ratio`` caps how far a member may inflate (declared over stored size), below what its
    compression method allows; ``beyond_ratio`` says why, for the message.
    """

    def __init__(self, path, max_ratio=MAX_DEFLATE_RATIO, beyond_ratio="more than its compression can give"):
        self.path, self.max_ratio, self.beyond_ratio = path, max_ratio, beyond_ratio
        self._file, self.file_size = open_regular(path)
        try:
            _check_magic(self._file.read(4))
            self._file.seek(0)
            try:
                self._zip = zipfile.ZipFile(self._file)
            except DAMAGE as exc:
                raise ArchiveError(f"its zip directory is damaged ({_first_line(exc)})") from None
            self.members = {}
            try:
                self._check_directory()
                for info in self._zip.infolist():
                    member = self._read_header(info)
                    self.members[member.name] = member
            except BaseException:
                self._zip.close()
                raise
        except BaseException:
            self._file.close()
            raise

    def close(self):
        self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_directory(self):
        infos = self._zip.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise ArchiveError("a member name appears twice")
        stored = 0
        for info in infos:
            label = info.filename
            if not label.endswith(".npy"):
                raise ArchiveError(f"member {label!r} is not a .npy array")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"member {label!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED:
                possible = allowed = info.file_size == info.compress_size
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                possible = info.file_size <= MAX_DEFLATE_RATIO * info.compress_size + 1024
                allowed = info.file_size <= max(self.max_ratio * info.compress_size, info.compress_size + 1024)
            else:
                raise ArchiveError(
                    f"member {label!r} uses zip compression method {info.compress_type}, which numpy never writes"
                )
            if not (possible and allowed):
                raise ArchiveError(
                    f"member {label!r} declares {info.file_size:,} bytes from "
                    f"{info.compress_size:,} stored, "
                    + ("more than its compression can give" if not possible else self.beyond_ratio)
                )
            if info.header_offset + info.compress_size > self.file_size:
                raise ArchiveError(f"member {label!r} extends past the end of the file (truncated?)")
            stored += info.compress_size
        if stored > self.file_size:  # overlapping members: the classic way to multiply a bomb
            raise ArchiveError("its members overlap")

    def _read_header(self, info):
        name = info.filename[: -len(".npy")]
        try:
            with self._zip.open(info) as f:
                version = npy_format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npy_format.read_array_header_1_0(f, MAX_NPY_HEADER)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = npy_format.read_array_header_2_0(f, MAX_NPY_HEADER)
                else:
                    raise ValueError(f"unknown .npy version {version}")
                header_size = f.tell()
        except DAMAGE as exc:
            raise ArchiveError(f"array {name!r} has a damaged header ({_first_line(exc)})") from None
        if dtype.hasobject:
            raise PickleRefused(f"array {name!r} holds pickled Python objects")
        if dtype.kind not in PLAIN_KINDS or dtype.fields is not None or dtype.itemsize == 0:
            raise ArchiveError(f"array {name!r} has dtype {dtype}, which fastnet does not store")
        member = Member(name, tuple(shape), dtype, fortran, info)
        if member.nbytes != info.file_size - header_size:
            raise ArchiveError(
                f"array {name!r} declares shape {member.shape} of {dtype} "
                f"({member.nbytes:,} bytes) but its member holds "
                f"{max(info.file_size - header_size, 0):,}; the file is corrupt"
            )
        return member

    def read(self, name) -> numpy.ndarray:
        """The array ``name``, read in chunks into one preallocated buffer; the CRC is checked."""
        member = self.members[name]
        buffer = numpy.empty(member.nbytes, dtype=numpy.uint8)
        view = buffer.data  # a memoryview of the buffer
        with self._zip.open(member.info) as f:
            f.read(member.info.file_size - member.nbytes)  # the header, checked when opened
            filled = 0
            while filled < member.nbytes:
                got = f.readinto(view[filled : filled + CHUNK])  # type: ignore[attr-defined]  # a ZipExtFile
                if not got:
                    raise ArchiveError(f"array {name!r} ends early (truncated)")
                filled += got
            if f.read(1):  # also reaches the end of the member, where zipfile checks the CRC
                raise ArchiveError(f"array {name!r} has more data than its header declares")
        order = "F" if member.fortran_order else "C"
        return buffer.view(member.dtype).reshape(member.shape, order=order)


def _check_magic(head):
    """Name what the file is when it is obviously not an archive (never 'pickled' for noise)."""
    if head.startswith(ZIP_MAGIC) or head.startswith(EMPTY_ZIP_MAGIC):
        return
    if len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS:
        raise PickleRefused("it is a Python pickle")
    if head.startswith(b"\x93NUM"):
        raise NotAnArchive("it is a single .npy array, not a zip archive")
    raise NotAnArchive("it is not a zip archive" if head else "it is empty")


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

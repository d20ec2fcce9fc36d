"""Random and mutated bytes: the IDX reader returns exactly what the file holds or raises DataError.

Any other exception, a wrong array or a hang (the deadline) fails the test.
"""

import gzip
import zlib

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idx_factory import gz, idx_bytes

from fastnet.datasets import idx
from fastnet.errors import DataError


def fuzz_settings(examples):
    return settings(max_examples=examples, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("idx-fuzz")


@st.composite
def valid_idx(draw):
    """A small, well-formed images or labels file."""
    n = draw(st.integers(0, 4))
    shape = (n,) if draw(st.booleans()) else (n, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    values = draw(st.binary(min_size=int(numpy.prod(shape)), max_size=int(numpy.prod(shape))))
    return idx_bytes(numpy.frombuffer(values, dtype=numpy.uint8).reshape(shape))


@st.composite
def mutation(draw):
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "overwrite"]))
    return kind, draw(st.integers(0, 1 << 16)), draw(st.integers(0, 255)), draw(st.integers(1, 8))


def mutate(data, mutations):
    data = bytearray(data)
    for kind, where, value, length in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif kind == "insert":
            data[at:at] = bytes([value]) * length
        elif kind == "delete":
            del data[at : at + length]
        elif kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            data[at : at + 4] = value.to_bytes(1, "big") * 4  # e.g. a header size set to 0x07070707
    return bytes(data)


@st.composite
def mutated_file(draw):
    """Mutated before or after gzip (or never gzipped), so both layers get damaged."""
    data = draw(valid_idx())
    where = draw(st.sampled_from(["plain", "before_gzip", "after_gzip"]))
    mutations = draw(st.lists(mutation(), min_size=1, max_size=4))
    if where == "plain":
        return mutate(data, mutations)
    if where == "before_gzip":
        return gz(mutate(data, mutations))
    return mutate(gz(data), mutations)


random_file = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"\x1f\x8b" + b),  # gzip magic, garbage after it
    st.binary(max_size=300).map(gz),
    st.binary(max_size=60).map(lambda b: b"\x00\x00\x08" + b),  # IDX magic, random rest
)


def decompressed(data):
    """What the file holds according to the standard library, or None when it cannot say."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return None


def check(workdir, data, magic=None):
    path = workdir / "fuzz.idx"
    path.write_bytes(data)
    try:
        array = idx.read_idx(path, magic=magic)
    except DataError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    # Loaded: the bytes must be a well-formed IDX file holding exactly this array.
    assert array.dtype == numpy.uint8
    assert idx_bytes(array) == decompressed(data)
    if magic is not None:
        assert 0x0800 | array.ndim == magic


@fuzz_settings(700)
@given(data=mutated_file())
def test_mutated_files(workdir, data):
    check(workdir, data)


@fuzz_settings(600)
@given(data=random_file, magic=st.sampled_from([None, idx.IMAGES_MAGIC, idx.LABELS_MAGIC]))
def test_random_files(workdir, data, magic):
    check(workdir, data, magic)


@fuzz_settings(150)
@given(data=valid_idx(), gzipped=st.booleans())
def test_valid_files_load(workdir, data, gzipped):
    path = workdir / "valid.idx"
    path.write_bytes(gz(data) if gzipped else data)
    assert idx_bytes(idx.read_idx(path)) == data

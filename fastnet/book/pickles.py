"""The book's weight files (``params.pkl``: a pickled dict of numpy arrays), read without the
danger of pickle.

Unpickling can call anything a file names.  This reader admits only what a dict of numpy arrays
needs (numpy's array and dtype reconstructors, plain containers); a file that names anything else
(``os.system``, a module, a class) is refused in one line before that name is ever looked up.
"""

from __future__ import annotations

import io
import pickle

import numpy

from fastnet.errors import CheckpointError

# (module, name) pairs a pickled dict of numpy arrays uses, across numpy 1.x and 2.x
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}
MAX_BYTES = 2 << 30


class RefusedPickle(CheckpointError):
    """A pickle naming something beyond numpy arrays and plain containers."""


def _latin1_bytes(text, encoding="latin1", errors="strict"):
    """Pickle protocol 2 stores bytes as ``_codecs.encode(text, "latin1")``; no other codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str) or errors != "strict":
        raise RefusedPickle(f"asks for the {encoding!r} codec, which is not part of a file of numpy arrays")
    return text.encode("latin1")


class ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise RefusedPickle(
            f"names {module}.{name}, which is not part of a file of numpy arrays; "
            f"it was not loaded (loading it could run code)"
        )


def load_pickled_arrays(path) -> dict:
    """``{name: numpy array}`` of a book-style ``params.pkl``."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a weight file") from None
    if len(data) > MAX_BYTES:
        raise CheckpointError(f"{path} is larger than {MAX_BYTES >> 30} GiB; not a weight file fastnet reads")
    try:
        params = ArraysOnlyUnpickler(io.BytesIO(data)).load()
    except RefusedPickle as exc:
        raise RefusedPickle(f"{path} {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise CheckpointError(
            f"{path} is not a readable pickle of arrays ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not isinstance(params, dict):
        raise CheckpointError(f"{path} holds a {type(params).__name__}, not a dict of arrays by name")
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, numpy.ndarray) or value.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: entry {key!r} is not a numeric numpy array")
    return params


def load_book_params(net, path):
    """Put a ``params.pkl``'s arrays into ``net`` (every parameter, matching shapes)."""
    from fastnet.serialization import check_layout

    params = load_pickled_arrays(path)
    check_layout(dict(net.params.items()), params, path, f"this {type(net).__name__}", complete=True)
    for key, value in params.items():
        if not numpy.isfinite(value).all():
            raise CheckpointError(f"{path}: parameter {key} is not finite")
        net.params[key][...] = net.backend.asarray(value, dtype=net.dtype)
    return net


def save_book_params(net, path):
    """The book's format: a pickled dict of host numpy arrays, parameters only (written atomically)."""
    from fastnet.atomic import atomic_write

    params = {key: net.backend.to_numpy(value).copy() for key, value in net.params.items()}
    data = pickle.dumps(params, protocol=4)
    return atomic_write(path, lambda f: f.write(data))

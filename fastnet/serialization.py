"""Saving and loading arrays without pickle: loading a file never executes code.

Files are ``.npz`` archives written atomically.  A JSON header (stored as a plain string array)
names the format, so a truncated, corrupt or foreign file is refused with a clear message.
Reading checks every declared size first (``fastnet.npz``): no member may inflate (fastnet
stores arrays uncompressed), so no file costs more memory than its own size; and against the
net the file must fit when the caller names it, so even a big file is refused before reading.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from typing import Any

import numpy

from fastnet.atomic import atomic_write
from fastnet.errors import CheckpointError
from fastnet.files import NotRegularFile
from fastnet.npz import ArchiveError, NotAnArchive, NpzArchive, PickleRefused

FORMAT = "fastnet-arrays"
VERSION = 1
HEADER_KEY = "__fastnet__"
MAX_HEADER_BYTES = 16 << 20  # the JSON metadata: config, history; far below this
NOT_NET_PREFIXES = ("optim.", "rng.")
# numpy.savez stores arrays as they are, so a fastnet file never inflates: a member that does
# is forged, and refusing it bounds what any file can cost by its own size.
# a checkpoint's other arrays, skipped by load_params
UNCOMPRESSED = "more than a fastnet file ever holds (it stores arrays uncompressed)"


def save_arrays(path, arrays: dict, meta: dict | None = None):
    """Write host copies of ``arrays`` and a JSON ``meta`` dict to ``path`` atomically."""
    header = {"format": FORMAT, "version": VERSION, "meta": meta or {}}
    payload: dict[str, Any] = {HEADER_KEY: numpy.array(json.dumps(header))}
    for key, value in arrays.items():
        payload[key] = numpy.asarray(value)

    def write(f):
        numpy.savez(f, **payload)

    return atomic_write(path, write)


def load_arrays(path, expected=None, skip=(), complete=False, owner="the net it must fit"):
    """Returns ``(arrays, meta)``; raises CheckpointError for anything that is not our file.

    Nothing is read before the zip directory and every array header passed their checks (see
    ``fastnet.npz``).  ``expected`` maps names to arrays (anything with ``shape``): every array
    in the file must be one of them, with its shape and a float dtype, before any data is read,
    so a file can never make this allocate more than the net it must fit.  ``expected`` may also
    be a function of the metadata returning that mapping.  With ``complete`` every expected name
    must be there too; ``owner`` names the net in messages.  Arrays whose names start with a
    prefix in ``skip`` are not read at all.
    """
    with _open_archive(path) as archive:
        meta = _read_meta(archive, path)
        members = {
            name: member
            for name, member in archive.members.items()
            if name != HEADER_KEY and not name.startswith(tuple(skip))
        }
        if callable(expected):
            expected = expected(meta)
        if expected is not None:
            check_layout(expected, members, path, owner, complete)
        arrays = {name: _read_array(archive, name, path) for name in members}
    return arrays, meta


def read_meta(path) -> dict:
    """Only the metadata of a fastnet file (no array is read): to build the net it must fit."""
    with _open_archive(path) as archive:
        return _read_meta(archive, path)


def _open_archive(path):
    try:
        return NpzArchive(path, max_ratio=1, beyond_ratio=UNCOMPRESSED)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a fastnet file") from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied; make the file readable") from None
    except NotRegularFile as exc:
        raise CheckpointError(f"{path} is {exc.kind}, not a fastnet file; pass a checkpoint file") from None
    except ArchiveError as exc:
        raise _archive_error(path, exc) from None
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror or exc})") from None


def _archive_error(path, exc):
    if isinstance(exc, PickleRefused):
        return CheckpointError(
            f"{path} is not a fastnet file: {exc}, which fastnet never loads "
            f"(loading it could run code); save arrays only"
        )
    if isinstance(exc, NotAnArchive):
        return CheckpointError(f"{path} is not a fastnet checkpoint or parameter file ({exc})")
    return CheckpointError(f"{path} is truncated or corrupt: {exc}; use an intact copy")


def _read_array(archive, name, path):
    try:
        return archive.read(name)
    except ArchiveError as exc:
        raise _archive_error(path, exc) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:  # e.g. a bad CRC
        reason = (str(exc) or type(exc).__name__).splitlines()[0]
        raise CheckpointError(
            f"{path} is truncated or corrupt: array {name!r} cannot be read ({reason}); use an intact copy"
        ) from None


def _read_meta(archive, path):
    member = archive.members.get(HEADER_KEY)
    if member is None:
        raise CheckpointError(f"{path} is not a fastnet file (no fastnet header)")
    if member.dtype.kind != "U" or member.shape != () or member.nbytes > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path} is not a fastnet file (unknown header)")
    try:
        header = json.loads(str(_read_array(archive, HEADER_KEY, path)))
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path} is not a fastnet file (unknown header)") from None
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or not isinstance(header.get("version", 0), int)
        or not isinstance(header.get("meta", {}), dict)
    ):
        raise CheckpointError(f"{path} is not a fastnet file (unknown header)")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer fastnet (format {header['version']}); upgrade fastnet")
    return header.get("meta", {})


def describe_net(net) -> dict:
    """The net's class, array shapes and, for nets of the built-in layers, the layer description
    that ``fastnet.load`` rebuilds it from."""
    from fastnet.interop.spec import UnsupportedLayer, describe_layers

    info = {
        "net": type(net).__name__,
        "dtype": str(net.dtype),
        "shapes": {k: list(v.shape) for k, v in net.state_arrays().items()},
    }
    try:
        info["layers"] = describe_layers(net)
    except UnsupportedLayer:
        pass  # a user's own layer: the file loads into a net the user builds
    return info


def check_net_arrays(net, arrays: dict, path) -> None:
    """Refuse arrays from a different net or shape, naming the first mismatch."""
    check_layout(net.state_arrays(), arrays, path, f"this {type(net).__name__}", complete=True)
    for key, value in arrays.items():
        if not numpy.isfinite(value).all():
            raise CheckpointError(f"{path}: parameter {key} is not finite floating-point data")


def check_layout(expected: dict, found: dict, path, owner, complete=True) -> None:
    """Names, shapes and float dtypes of ``found`` (arrays, or archive members not yet read)."""
    missing = [k for k in expected if k not in found] if complete else []
    extra = [k for k in found if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:5]))
        if extra:
            parts.append("unexpected " + ", ".join(extra[:5]))
        raise CheckpointError(f"{path} holds a different net than {owner}: " + "; ".join(parts))
    for key, value in found.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{path}: parameter {key} has shape {tuple(value.shape)} but {owner} needs {tuple(expected[key].shape)}"
            )
        if value.dtype.kind != "f" or value.dtype.itemsize > 8:
            raise CheckpointError(f"{path}: parameter {key} is not finite floating-point data")


def net_host_arrays(net) -> dict:
    return {k: net.backend.to_numpy(v) for k, v in net.state_arrays().items()}


def save_net_arrays(net, path, meta=None):
    info = describe_net(net)
    info.update(meta or {})
    return save_arrays(path, net_host_arrays(net), info)


def load_net_arrays(net, path):
    """Parameters (and layer state) from a parameter file or a training checkpoint."""
    arrays, meta = load_arrays(
        path, expected=net.state_arrays(), skip=NOT_NET_PREFIXES, complete=True, owner=f"this {type(net).__name__}"
    )
    check_net_arrays(net, arrays, path)
    net.set_state_arrays(arrays)
    return meta

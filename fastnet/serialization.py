"""Saving and loading arrays without pickle: loading a file never executes code.

Files are ``.npz`` archives written atomically.  A JSON header (stored as a plain string array)
names the format, so a truncated, corrupt or foreign file is refused with a clear message.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy

from fastnet.atomic import atomic_write
from fastnet.errors import CheckpointError

FORMAT = "fastnet-arrays"
VERSION = 1
HEADER_KEY = "__fastnet__"


def save_arrays(path, arrays: dict, meta: dict | None = None):
    """Write host copies of ``arrays`` and a JSON ``meta`` dict to ``path`` atomically."""
    header = {"format": FORMAT, "version": VERSION, "meta": meta or {}}
    payload = {HEADER_KEY: numpy.array(json.dumps(header))}
    for key, value in arrays.items():
        payload[key] = numpy.asarray(value)

    def write(f):
        numpy.savez(f, **payload)

    return atomic_write(path, write)


def load_arrays(path):
    """Returns ``(arrays, meta)``; raises CheckpointError for anything that is not our file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a fastnet file") from None
    try:
        with numpy.load(io.BytesIO(data), allow_pickle=False) as archive:
            if HEADER_KEY not in archive.files:
                raise CheckpointError(f"{path} is not a fastnet file (no fastnet header)")
            header = json.loads(str(archive[HEADER_KEY]))
            arrays = {k: archive[k] for k in archive.files if k != HEADER_KEY}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, json.JSONDecodeError,
            NotImplementedError, RuntimeError) as exc:  # zipfile's answers to damaged headers/flags
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            raise CheckpointError(f"{path} holds pickled Python objects, which fastnet never loads "
                                  f"(loading them could run code); save arrays only") from None
        raise CheckpointError(f"{path} is truncated or corrupt and cannot be read "
                              f"({type(exc).__name__}); use an intact copy") from None
    if (not isinstance(header, dict) or header.get("format") != FORMAT
            or not isinstance(header.get("version", 0), int) or not isinstance(header.get("meta", {}), dict)):
        raise CheckpointError(f"{path} is not a fastnet file (unknown header)")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer fastnet (format {header['version']}); upgrade fastnet")
    return arrays, header.get("meta", {})


def describe_net(net) -> dict:
    return {"net": type(net).__name__,
            "shapes": {k: list(v.shape) for k, v in net.state_arrays().items()}}


def check_net_arrays(net, arrays: dict, path) -> None:
    """Refuse arrays from a different net or shape, naming the first mismatch."""
    expected = net.state_arrays()
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:5]))
        if extra:
            parts.append("unexpected " + ", ".join(extra[:5]))
        raise CheckpointError(f"{path} holds a different net than this {type(net).__name__}: "
                              + "; ".join(parts))
    for key, value in expected.items():
        if tuple(arrays[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: parameter {key} has shape {tuple(arrays[key].shape)} "
                                  f"but this net needs {tuple(value.shape)}")
        if arrays[key].dtype.kind != "f" or not numpy.isfinite(arrays[key]).all():
            raise CheckpointError(f"{path}: parameter {key} is not finite floating-point data")


def net_host_arrays(net) -> dict:
    return {k: net.backend.to_numpy(v) for k, v in net.state_arrays().items()}


def save_net_arrays(net, path, meta=None):
    info = describe_net(net)
    info.update(meta or {})
    return save_arrays(path, net_host_arrays(net), info)


def load_net_arrays(net, path):
    arrays, meta = load_arrays(path)
    arrays = {k: v for k, v in arrays.items() if not k.startswith("optim.") and not k.startswith("rng.")}
    check_net_arrays(net, arrays, path)
    net.set_state_arrays(arrays)
    return meta

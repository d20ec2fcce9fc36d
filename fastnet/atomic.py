"""Atomic file writes: a crash or a full disk never leaves a half-written file behind."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from fastnet.errors import FastnetError


class WriteError(FastnetError):
    """An output file could not be written (disk full, permissions); the old file is intact."""


def atomic_write(path, write, binary=True):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place.

    The rename is atomic on POSIX, so readers see the old file or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise WriteError(f"cannot write {path}: {why}; the previous file, if any, is unchanged") from None
        raise
    return path

"""Atomic file writes: a crash or a full disk never leaves a half-written file behind.

The data goes to a temporary file beside the target (``.<name>.<pid>.<random>.tmp``), is
flushed to disk, then renamed over the target.  A writer killed mid-write (SIGKILL, power
loss) can leave its temporary file behind, never a damaged target; the next write to the same
target removes such leftovers once the process that made them is gone.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from fastnet.errors import FastnetError
from fastnet.portable import set_default_permissions

REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file size limit is reached",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
}


class WriteError(FastnetError):
    """An output file could not be written (disk full, permissions); the old file is intact."""


def atomic_write(path, write, binary=True):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it into place.

    The rename is atomic on POSIX, so readers see the old file or the new one, never a mix.
    Any OSError becomes a one-line WriteError; the previous file at ``path`` stays as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        set_default_permissions(fd, 0o666 & ~_umask())  # mkstemp's 0600 would surprise: use the usual mode
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _sync_directory(path.parent)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            why = REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
            raise WriteError(f"cannot write {path}: {why}; the previous file, if any, is unchanged") from None
        raise
    return path


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by writers that no longer run (killed mid-write)."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        pid = leftover.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                leftover.unlink()
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # our own: another thread may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _umask() -> int:
    try:  # Linux reports it without changing it (os.umask would, for every thread)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable; some systems cannot open directories, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""One run per output folder: a lock file naming its holder (pid, host, start time).

The lock is an exclusive ``flock`` on ``<folder>/.fastnet.lock``, held while the run lives.
The kernel drops it when the holder dies, however it dies, so a lock file left by a killed
run is stale by construction: the next run takes it over (and says whose it was).  A second
run while the first is alive is refused with ``InputError`` naming the holder.

Taking the lock again in the same process (the command, then its trainer) is a no-op.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from fastnet.errors import InputError

LOCK_NAME = ".fastnet.lock"
_held: dict[Path, int] = {}   # folder -> how many holders in this process


@contextmanager
def output_folder_lock(folder, say=None):
    """Hold ``folder``'s lock for the ``with`` block (``folder`` None: nothing to lock).

    Creates the folder.  ``say`` (a print-like function) hears about a stale lock taken over.
    """
    if folder is None:
        yield
        return
    key = Path(folder).resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = not key.exists()
    fd = _acquire(key, say)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        _release(key / LOCK_NAME, fd)
        if created:
            _remove_if_empty(key)  # a run refused before writing anything leaves nothing behind


def _acquire(folder: Path, say):
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {folder} ({exc.strerror or exc}); "
                         f"choose another --out") from None
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise InputError(f"{folder} is in use by another fastnet run ({holder}); wait for it to "
                             f"finish or choose another --out") from None
        # The holder may have removed the file between our open and flock: lock the live file.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read(fd)
    if previous and say is not None:
        say(f"took over the stale lock of {folder} ({previous}, no longer running)")
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return fd


def _read(fd) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 300).decode("utf-8", "replace").strip()


def _release(path: Path, fd):
    # Unlink while still holding it, so nobody can lock this file once it is gone.
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def _remove_if_empty(folder: Path):
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (the run wrote its files) or already gone


def is_locked_here(folder) -> bool:
    return folder is not None and Path(folder).resolve() in _held

"""One run per output folder, and a lock file naming its holder (pid, host, start time).

On POSIX the lock is an exclusive ``flock`` on the output folder itself, so removing the lock
file during a run does not free the folder for a second run; the file only says who holds it.
On Windows, which cannot open a folder, it is a byte-range lock in the lock file. Either way the
system drops the lock when the holder dies, however it dies, so a lock file left by a killed run
is stale by construction: the next run takes it over (and says whose it was). A second run
while the first is alive is refused with ``InputError`` naming the holder.

The lock file is never followed through a link, nor opened as a FIFO, socket, device or folder:
those are refused in one line, and nothing outside the folder is ever written.

Taking the lock again in the same process (the command, then its trainer) is a no-op.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path

from fastnet import portable
from fastnet.errors import InputError

LOCK_NAME = ".fastnet.lock"
_held: dict[Path, int] = {}  # folder -> how many holders in this process
# Windows: the locked byte lies far past the holder line, so others can still read the line.
_WINDOWS_LOCK_OFFSET = 1 << 30
_FIX = "remove it and run again, or choose another --out"


@contextmanager
def output_folder_lock(folder, say=None):
    """Hold ``folder``'s lock for the ``with`` block (``folder`` None: nothing to lock).

    Creates the folder.  ``say`` (a print-like function) hears about a stale lock taken over.
    """
    if folder is None:
        yield
        return
    try:
        key = Path(folder).resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise InputError(f"cannot use the output folder {folder} ({exc}); choose another --out") from None
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = [folder for folder in (key, *key.parents) if not folder.exists()]  # innermost first
    held = _acquire(key, say)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        _release(key / LOCK_NAME, *held)
        for folder in created:  # a run refused before writing anything leaves nothing behind,
            if not _remove_if_empty(folder):  # not even the runs/ folder made to hold it
                break


def _acquire(folder: Path, say):
    """``(lock file descriptor, folder descriptor or None)``, the lock taken and the holder written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the output folder {folder} ({exc.strerror or exc}); choose another --out"
        ) from None
    path = folder / LOCK_NAME
    if portable.ON_WINDOWS:
        folder_fd = None
        fd = _open_lock_file(path)
        if not _try_lock_range(fd):
            _refuse(folder, fd)
    else:
        folder_fd = _lock_folder(folder)
        if folder_fd is None:
            _refuse(folder, None, path)
        try:
            fd = _open_lock_file(path)  # opened once the folder is ours: nobody else touches it now
        except BaseException:
            os.close(folder_fd)
            raise
    previous = _read(fd)
    if previous and say is not None:
        say(f"took over the stale lock of {folder} ({previous}, no longer running)")
    os.ftruncate(fd, 0)
    # At offset 0: reading the previous holder moved the offset, and a write there would leave NULs.
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return fd, folder_fd


def _refuse(folder: Path, fd, path: Path | None = None):
    """Refuse the folder, naming its holder: read from ``fd``, or from the lock file at ``path``,
    which the holder writes just after it takes the folder (so it is waited for, briefly)."""
    holder = ""
    if fd is not None:
        holder = _read(fd)
        os.close(fd)
    elif path is not None:
        holder = _holder_once_written(path)
    raise InputError(
        f"{folder} is in use by another fastnet run ({holder or 'it has not named itself'}); "
        f"wait for it to finish or choose another --out"
    )


def _holder_once_written(path: Path, patience_s: float = 1.0) -> str:
    """The holder line of ``path``; a run that took the folder a moment ago writes it right after."""
    deadline = time.monotonic() + patience_s
    while True:
        fd = _open_lock_file(path, create=False)
        if fd is not None:
            try:
                holder = _read(fd)
            finally:
                os.close(fd)
            if holder:
                return holder
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.01)


def _lock_folder(folder: Path):
    """The folder's descriptor with an exclusive flock on it, or None while another run holds it."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _open_lock_file(path: Path, create=True):
    """The lock file itself, never what a link points to, and never a FIFO, device or folder.

    ``O_NOFOLLOW`` refuses a symbolic link (a planted link would make the run write its holder
    line into the linked file); ``O_NONBLOCK`` keeps a FIFO from blocking the open, and the check
    of the opened descriptor refuses whatever is not a regular file. With ``create`` false a
    missing file is None.
    """
    flags = (
        os.O_RDWR
        | (os.O_CREAT if create else 0)
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0)
    )
    if os.path.islink(path):  # also where O_NOFOLLOW does not exist (Windows)
        raise InputError(f"the lock file {path} is a symbolic link, not a file fastnet wrote; {_FIX}")
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        if create:
            raise
        return None
    except OSError as exc:
        kind = _kind(path) or exc.strerror or str(exc)
        raise InputError(f"cannot use the lock file {path} ({kind}); {_FIX}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"cannot use the lock file {path} ({_kind(path) or 'not a regular file'}); {_FIX}")
    return fd


def _kind(path: Path) -> str | None:
    """What stands at ``path`` where a lock file should, in words (None: a regular file or nothing)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return None


def _try_lock_range(fd) -> bool:
    import msvcrt

    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # msvcrt: Windows only
    except OSError:
        return False
    return True


def _read(fd) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 300).decode("utf-8", "replace").strip()


def _release(path: Path, fd, folder_fd):
    if folder_fd is None:
        # Windows cannot remove an open file: unlock and close first, then remove it.
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # msvcrt: Windows only
        os.close(fd)
        _unlink_quietly(path)
        return
    # The holder line goes first, while the folder is still ours; closing the folder unlocks it.
    _unlink_quietly(path)
    os.close(fd)
    os.close(folder_fd)


def _unlink_quietly(path: Path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:
        return False  # not empty (the run wrote its files) or already gone
    return True


def is_locked_here(folder) -> bool:
    return folder is not None and Path(folder).resolve() in _held

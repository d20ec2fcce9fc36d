"""Opening a file to read it without hanging and without reading forever.

``open("/dev/zero")`` reads without end, and opening a FIFO blocks until a writer appears.
``open_regular`` opens without blocking (``O_NONBLOCK``), then asks the opened descriptor
what it is, so a device, FIFO, socket or directory is refused at once and the size of what
is read is known in advance.
"""

from __future__ import annotations

import os
import stat

KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path names a device, pipe or socket; ``kind`` says which."""

    def __init__(self, path, kind):
        super().__init__(f"{path} is {kind}, not a regular file")
        self.filename, self.kind = str(path), kind


def open_regular(path):
    """A binary file object for the regular file at ``path``, and its size in bytes.

    Raises FileNotFoundError, PermissionError, IsADirectoryError or NotRegularFile.
    """
    # Windows has no O_NONBLOCK (nor FIFOs that block an open); O_BINARY keeps its reads raw.
    fd = os.open(
        path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        info = os.fstat(fd)  # the opened file itself: no race with a renamed path
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in KINDS if test(info.st_mode)), "not a regular file")
            raise NotRegularFile(path, kind)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise

"""Windows, as far as fastnet's portable code can tell, on a POSIX machine: no ``fcntl``, and an
``msvcrt`` whose ``locking`` behaves as Windows' does (exclusive, non-blocking, per byte range,
owned by the process, released when it ends), served by POSIX record locks.

``enter()`` switches the current process over. ``os.name`` itself stays "posix" (pathlib would
refuse to build paths otherwise): fastnet reads ``fastnet.portable.ON_WINDOWS``, which it sets.
"""

import fcntl as _posix_fcntl  # taken before enter() hides the module
import os
import sys
import types

LK_UNLCK, LK_NBLCK = 0, 2


def _locking(fd, mode, nbytes):
    start = os.lseek(fd, 0, os.SEEK_CUR)
    operation = (_posix_fcntl.LOCK_EX | _posix_fcntl.LOCK_NB) if mode == LK_NBLCK else _posix_fcntl.LOCK_UN
    try:
        _posix_fcntl.lockf(fd, operation, nbytes, start)
    except OSError:
        raise PermissionError(13, "Permission denied") from None  # what msvcrt raises when locked


msvcrt = types.SimpleNamespace(LK_UNLCK=LK_UNLCK, LK_NBLCK=LK_NBLCK, locking=_locking)


def enter(monkeypatch=None):
    """Windows from here on: in this process, or within a test through pytest's ``monkeypatch``."""
    import getpass  # noqa: F401  stdlib modules that take an importable msvcrt for Windows itself:
    import subprocess  # noqa: F401  imported first, they stay on this machine's own code

    import fastnet.portable

    if monkeypatch is None:
        sys.modules["msvcrt"], sys.modules["fcntl"] = msvcrt, None
        fastnet.portable.ON_WINDOWS = True
    else:
        monkeypatch.setitem(sys.modules, "msvcrt", msvcrt)
        monkeypatch.setitem(sys.modules, "fcntl", None)  # "import fcntl" fails, as on Windows
        monkeypatch.setattr(fastnet.portable, "ON_WINDOWS", True)

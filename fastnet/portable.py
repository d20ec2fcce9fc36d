"""What differs between POSIX and Windows, decided in one place.

``ON_WINDOWS`` is read at call time (``portable.ON_WINDOWS``), so the tests can take the Windows
branches on a POSIX machine.
"""

from __future__ import annotations

import os
from pathlib import Path

ON_WINDOWS = os.name == "nt"


def user_cache_root() -> Path:
    """Where downloads are cached: ``$XDG_CACHE_HOME`` where set (absolute, as the XDG spec
    requires), else the platform's own place (``~/.cache`` on Linux, ``%LOCALAPPDATA%`` on
    Windows, ``~/Library/Caches`` on macOS)."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(root):
        return Path(root)
    import platformdirs

    return Path(platformdirs.user_cache_dir(appauthor=False))


def set_default_permissions(fd: int, mode: int) -> None:
    """chmod an open file where the system has it; Windows has no fchmod and no such modes."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)

"""The type aliases of fastnet's public annotations, defined once.

An array lives where its backend says: a ``numpy.ndarray`` on the numpy and numba backends, a
``cupy.ndarray`` on the cupy backend.  fastnet never imports CuPy to annotate a signature, and the
numba backend shares numpy's arrays, so an array's type cannot name its backend anyway: ``Array``
is ``Any`` for the type checker and a name for the reader.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

import numpy.typing

if TYPE_CHECKING:
    from fastnet.backends.base import Backend

Array = Any
"""An array on a backend: ``numpy.ndarray`` (numpy, numba) or ``cupy.ndarray`` (cupy)."""

BackendLike = Union["Backend", str, None]
"""A backend object, its name (``"numpy"``, ``"numba"``, ``"cupy"``, ``"auto"``) or None for the
default backend: what every ``backend=`` parameter accepts."""

PathLike = Union[str, "os.PathLike[str]"]
"""A file's path, as text or a ``pathlib.Path``."""

DTypeLike = numpy.typing.DTypeLike
"""A floating dtype, as a numpy dtype or its name (``"float32"``, ``"float64"``)."""

__all__ = ["Array", "BackendLike", "DTypeLike", "PathLike"]

"""The numba backend: numpy arrays, with the hot loops compiled by numba.

Numba is imported only here, when the backend is first asked for, so ``import fastnet`` stays
light.  Compiled kernels are cached on disk (``FASTNET_NUMBA_CACHE=0`` turns that off).
"""

from fastnet.backends.base import Backend
from fastnet.errors import BackendUnavailable


class NumbaBackend(Backend):
    name = "numba"

    def __init__(self):
        import numpy

        from fastnet.backends.numba_kernels import NumbaKernels

        super().__init__(numpy, NumbaKernels())


def load() -> Backend:
    try:
        import numba  # noqa: F401
    except ImportError:
        raise BackendUnavailable("numba is not installed; pip install 'fastnet[numba]'") from None
    return NumbaBackend()

"""The reference backend: plain NumPy on the CPU, with the reference kernels."""

import numpy

from fastnet.backends.base import Backend
from fastnet.backends.numpy_kernels import NumpyKernels


class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self):
        super().__init__(numpy, NumpyKernels(numpy))


def load() -> Backend:
    return NumpyBackend()

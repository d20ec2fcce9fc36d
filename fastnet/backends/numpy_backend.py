"""The reference backend: plain NumPy on the CPU."""
from fastnet.backends.base import Backend


def load() -> Backend:
    return Backend()

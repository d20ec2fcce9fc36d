"""fastnet: the classic layer-based neural networks, on a swappable array backend.

Importing fastnet imports numpy only; numba and cupy load when their backend is first asked for.
"""

from fastnet.backends import availability, get_backend, get_default_backend, select_backend, set_default_backend
from fastnet.errors import BackendUnavailable, CheckpointError, DataError, DivergenceError, FastnetError, InputError
from fastnet.loading import load

__version__ = "0.2.0"

__all__ = [
    "BackendUnavailable",
    "CheckpointError",
    "DataError",
    "DivergenceError",
    "FastnetError",
    "InputError",
    "availability",
    "load",
    "get_backend",
    "get_default_backend",
    "select_backend",
    "set_default_backend",
    "__version__",
]

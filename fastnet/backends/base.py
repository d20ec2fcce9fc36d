"""The backend object: where arrays live and which kernels compute on them.

A backend is passed explicitly to layers, nets and optimizers.  ``xp`` is the array module
(numpy or cupy); ``kernels`` holds the hot-path operations.  Because the numba backend also
uses numpy arrays, a backend can never be inferred from an array's type alone.
"""

from __future__ import annotations

import numpy

from fastnet.errors import InputError


class Backend:
    """What every backend shares; a subclass names itself and picks its array module and kernels.

    The reference is :class:`fastnet.backends.numpy_backend.NumpyBackend`.
    """

    name = "backend"  # each subclass says its own
    device = "cpu"

    def __init__(self, xp, kernels):
        self.xp = xp
        self.kernels = kernels

    # --- host <-> device -------------------------------------------------------------------
    def asarray(self, a, dtype=None):
        """Host (or device) data -> an array of this backend, copying only when needed."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        """Backend array -> a numpy array on the host (no copy on CPU backends)."""
        return numpy.asarray(a)

    def is_array(self, a) -> bool:
        return isinstance(a, self.xp.ndarray)

    def check_array(self, a, what: str):
        """Refuse arrays that live elsewhere (a host array in a GPU net) at the layer's door."""
        if not self.is_array(a):
            module = type(a).__module__.split(".")[0]
            kind = f"{module}.{type(a).__name__}"
            # A device array must come back to the host explicitly; anything else converts.
            fix = f"cupy.asnumpy({what})" if module == "cupy" else f"backend.asarray({what})"
            raise InputError(
                f"{what} is a {kind}, but this net runs on the '{self.name}' backend; convert it first with {fix}"
            )
        return a

    # --- randomness and timing -------------------------------------------------------------
    def rng(self, seed=None):
        """A seeded generator with ``random(shape, dtype)`` and ``permutation(n)``."""
        return numpy.random.default_rng(seed)

    def synchronize(self) -> None:
        """Wait for queued device work; a no-op on the CPU."""

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<fastnet backend {self.name!r}>"

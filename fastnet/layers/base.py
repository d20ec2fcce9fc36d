"""What every layer shares: its backend, its parameters and moving them between backends."""
from __future__ import annotations

import numpy

from fastnet.backends import get_backend
from fastnet.validation import check_finite, check_float_input, check_same_dtype


class Layer:
    """A brick with ``forward`` and ``backward``.

    ``param_names`` are trained (each has the gradient named in ``grad_names``), ``state_names``
    persist without training (BatchNorm running statistics), ``decay_names`` get L2 weight decay.
    ``validate`` turns on checks that read values (NaN/inf); a net turns it off for inner layers.
    """

    param_names: tuple = ()
    grad_names: dict = {}
    state_names: tuple = ()
    decay_names: tuple = ()
    takes_train_flag = False

    def __init__(self, backend=None):
        self.backend = get_backend(backend)
        self.validate = True

    @property
    def xp(self):
        return self.backend.xp

    @property
    def kernels(self):
        return self.backend.kernels

    def _param(self, value, dtype=None):
        """Parameters arrive from the host (or the backend) and live on the backend.

        Without ``dtype`` a floating array keeps its own; integers and plain lists become float32.
        """
        if dtype is None:
            kind = getattr(getattr(value, "dtype", None), "kind", None)
            dtype = value.dtype if kind == "f" else numpy.float32
        if not self.backend.is_array(value):
            value = numpy.asarray(value)
        return self.backend.asarray(value, dtype=dtype)

    def _check_x(self, x, name="x", min_ndim=2, dtype=None):
        """Type and shape always; values (NaN/inf) when ``validate``; ``dtype`` when the layer has weights."""
        check_float_input(self.backend, x, name, min_ndim)
        if dtype is not None:
            check_same_dtype(x, dtype, name, f"this {type(self).__name__} layer")
        if self.validate:
            check_finite(self.backend, x, name)
        return x

    def to(self, backend):
        """Move parameters and persistent state to another backend; caches are dropped."""
        backend = get_backend(backend)
        for name in self.param_names + self.state_names:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, backend.asarray(self.backend.to_numpy(value)))
        for grad in self.grad_names.values():
            setattr(self, grad, None)
        self.backend = backend
        self._clear_cache()
        return self

    def _clear_cache(self):
        """Forget what the last forward saved for backward (it lives on the old backend)."""

    def __repr__(self):
        shapes = ", ".join(f"{n}={tuple(getattr(self, n).shape)}" for n in self.param_names)
        return f"{type(self).__name__}({shapes})"

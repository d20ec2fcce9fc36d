"""What every layer shares: its backend, its parameters, its state and moving them between backends."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import numpy

from fastnet.annotations import Array, BackendLike, DTypeLike
from fastnet.backends import get_backend
from fastnet.errors import InputError
from fastnet.validation import check_finite, check_float_input, check_same_dtype

NO_GRADS: Mapping[str, str] = MappingProxyType({})
_L = TypeVar("_L", bound="Layer")


def shape_of(array: Array | None) -> tuple[int, ...] | None:
    """``array.shape``, or None for no array (a forward that has not run)."""
    return None if array is None else array.shape


def check_dout(dout: Array, expected_shape: tuple[int, ...] | None, layer: str) -> None:
    """``expected_shape`` is the forward output's shape, or None when forward never ran."""
    if expected_shape is None:
        raise InputError(f"{layer}.backward called before forward")
    shape = getattr(dout, "shape", None)
    if shape is None:
        raise InputError(
            f"{layer}.backward needs dout as an array of the forward output's shape "
            f"{tuple(expected_shape)}; got {type(dout).__name__} {dout!r:.40}"
        )
    if tuple(shape) != tuple(expected_shape):
        raise InputError(
            f"{layer}.backward got dout of shape {tuple(shape)}; "
            f"expected the forward output's shape {tuple(expected_shape)}"
        )


def after_test_mode_error(layer: str) -> InputError:
    return InputError(
        f"{layer}.backward after a test-mode forward (train_flg=False): that forward "
        f"keeps nothing to backpropagate; run forward with train_flg=True first"
    )


class Layer:
    """A brick with ``forward`` and ``backward``.

    ``param_names`` are trained (each has the gradient named in ``grad_names``, a read-only
    mapping), ``state_names`` are arrays that persist without training (BatchNorm running
    statistics), ``decay_names`` get L2 weight decay.  Everything a layer keeps beyond its
    parameters comes and goes through ``state_dict()`` / ``load_state_dict()``.
    ``validate`` turns on checks that read values (NaN/inf); a net turns it off for its layers.
    ``kind`` names what the layer is and ``fuses_with`` the kinds of a following layer it runs
    in the same pass (``forward_<kind>``); ``fuses_backward_with`` the kinds of a preceding
    layer whose backward it runs in its own (``backward_<kind>``); see ``fastnet.layers.protocol``.  ``output_size()``
    is the number of outputs per sample (classes, channels) where the layer fixes it.
    ``propagates_nonfinite`` says that a NaN or inf anywhere in a sample's input makes that
    sample's whole output non-finite (a matrix product does), so a net may check the output
    instead of the input.  ``draws_random`` says the layer keeps a random stream (dropout:
    per rank in a data-parallel run); ``batch_statistics`` that its training forward uses the
    batch's statistics (batch norm: global ones across ranks, through its ``statistics`` hook).

    Parameters
    ----------
    backend : Backend, str or None
        Where the layer computes; None for the default backend.
    """

    kind = "layer"
    fuses_with: tuple[str, ...] = ()
    fuses_backward_with: tuple[str, ...] = ()
    param_names: tuple[str, ...] = ()
    grad_names: Mapping[str, str] = NO_GRADS
    state_names: tuple[str, ...] = ()
    decay_names: tuple[str, ...] = ()
    takes_train_flag = False
    propagates_nonfinite = False
    draws_random = False
    batch_statistics = False

    def __init__(self, backend: BackendLike = None):
        self.backend = get_backend(backend)
        self.validate = True

    @property
    def xp(self) -> Any:
        """The backend's array module (numpy or cupy)."""
        return self.backend.xp

    @property
    def kernels(self) -> Any:
        """The backend's kernel set (``fastnet.backends.contract`` lists its operations)."""
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
        param = self.backend.asarray(value, dtype=dtype)
        # Once: a NaN weight would only surface later as a NaN loss, far from its cause.
        if not bool(self.xp.isfinite(param).all()):
            raise InputError(
                f"{type(self).__name__} got a parameter of shape {tuple(param.shape)} with NaN or inf "
                f"values; give it finite numbers (a checkpoint from before a divergence, or a fresh init)"
            )
        return param

    def _check_x(self, x, name="x", min_ndim=2, dtype=None):
        """Type and shape always; values (NaN/inf) when ``validate``; ``dtype`` when the layer has weights."""
        check_float_input(self.backend, x, name, min_ndim)
        if dtype is not None:
            check_same_dtype(x, dtype, name, f"this {type(self).__name__} layer")
        if self.validate:
            check_finite(self.backend, x, name)
        return x

    # --- state beyond the parameters ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Host copies of the ``state_names`` arrays (layers with other state add it here)."""
        return {name: self.backend.to_numpy(getattr(self, name)).copy() for name in self.state_names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what ``state_dict`` returned (host or backend arrays); keys left out stay as they are.

        Raises
        ------
        InputError
            For an unknown name or an array of another shape; nothing is changed then.
        """
        unknown = set(state) - set(self.state_names)
        if unknown:
            raise InputError(f"{type(self).__name__} has no state named {', '.join(sorted(unknown))}")
        for name, value in state.items():
            current = getattr(self, name)
            if tuple(value.shape) != tuple(current.shape):
                raise InputError(
                    f"{type(self).__name__} state {name} has shape {tuple(current.shape)}; got {tuple(value.shape)}"
                )
        for name, value in state.items():
            current = getattr(self, name)
            current[...] = self.backend.asarray(self.backend.to_numpy(value), dtype=current.dtype)

    # --- where and in which precision the arrays live -------------------------------------------------
    def to(self: _L, backend: BackendLike) -> _L:
        """Move parameters and state to another backend; gradients and caches are dropped.

        Returns
        -------
        Layer
            The layer itself.
        """
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

    def astype(self: _L, dtype: DTypeLike) -> _L:
        """Convert parameters and state arrays to ``dtype`` in place (one copy each, none if equal).

        Returns
        -------
        Layer
            The layer itself.
        """
        dtype = numpy.dtype(dtype)
        for name in self.param_names + self.state_names:
            value = getattr(self, name)
            if value is not None and value.dtype != dtype:
                setattr(self, name, value.astype(dtype))
        self._clear_cache()
        return self

    def _clear_cache(self):
        """Forget what the last forward saved for backward (it lives on the old backend)."""

    def output_size(self) -> int | None:
        """Outputs per sample that this layer fixes (an Affine's columns, a Convolution's
        channels); None for a layer that keeps its input's."""
        return None

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of ``forward``'s output for an input of ``x_shape`` (by default the same)."""
        return tuple(x_shape)

    def __repr__(self):
        shapes = ", ".join(f"{n}={tuple(getattr(self, n).shape)}" for n in self.param_names)
        return f"{type(self).__name__}({shapes})"

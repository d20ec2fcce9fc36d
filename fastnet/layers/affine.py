"""Fully connected layer: out = x @ W + b."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from fastnet.annotations import Array, BackendLike, DTypeLike
from fastnet.errors import InputError
from fastnet.layers.base import Layer, check_dout

if TYPE_CHECKING:
    from fastnet.layers.activations import Relu


class Affine(Layer):
    """Accepts N-D input, flattened to (N, -1); ``dx`` comes back in the input's shape.

    ``need_input_grad`` is switched off by a net for its first layer: nobody uses that gradient
    and it costs a whole matrix product.

    Parameters
    ----------
    W : array-like of shape (in, out)
        The weights, from the host or already on the backend (copied onto it).
    b : array-like of shape (out,)
        The bias, stored in ``W``'s dtype.
    backend : Backend, str or None
        Where the layer computes; None for the default backend.
    dtype : dtype or None
        The parameters' dtype; None keeps a floating ``W``'s own (integers become float32).

    Raises
    ------
    InputError
        When the shapes do not fit together or a parameter holds NaN/inf.

    Examples
    --------
    >>> import numpy
    >>> layer = Affine(numpy.eye(3, 2), numpy.zeros(2), backend="numpy")
    >>> layer.forward(numpy.ones((4, 3))).shape
    (4, 2)
    >>> layer.backward(numpy.ones((4, 2))).shape, layer.dW.shape
    ((4, 3), (3, 2))
    """

    kind = "affine"
    fuses_with = ("relu",)
    param_names = ("W", "b")
    grad_names = MappingProxyType({"W": "dW", "b": "db"})
    decay_names = ("W",)
    propagates_nonfinite = True

    def __init__(self, W: Array, b: Array, backend: BackendLike = None, dtype: DTypeLike | None = None):
        super().__init__(backend)
        self.W = self._param(W, dtype)
        self.b = self._param(b, self.W.dtype)
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[1],):
            raise InputError(
                f"Affine needs W of shape (in, out) and b of shape (out,); "
                f"got W {tuple(self.W.shape)} and b {tuple(self.b.shape)}"
            )
        self.need_input_grad = True
        self.x: Array = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW: Array = None
        self.db: Array = None

    def _flatten(self, x):
        self._check_x(x, dtype=self.W.dtype)
        x2 = x.reshape(x.shape[0], -1)
        if x2.shape[1] != self.W.shape[0]:
            raise InputError(
                f"Affine expects {self.W.shape[0]} features per sample but got input "
                f"of shape {tuple(x.shape)} ({x2.shape[1]} features)"
            )
        return self._keep(x, x2)

    def _keep(self, x: Array, x2: Array) -> Array:
        self.original_x_shape = x.shape
        self.x = x2
        return x2

    def output_size(self) -> int:
        """The number of outputs per sample: ``W``'s columns."""
        return int(self.W.shape[1])

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(N, out)`` for an input of shape ``(N, ...)``."""
        return (x_shape[0], int(self.W.shape[1]))

    def forward(self, x: Array) -> Array:
        """``x @ W + b``, with ``x`` flattened to ``(N, in)``.

        Parameters
        ----------
        x : array of shape (N, ...)
            ``in`` features per sample, in ``W``'s dtype, on the layer's backend.

        Returns
        -------
        array of shape (N, out)

        Raises
        ------
        InputError
            When ``x`` has another number of features, dtype or backend, or holds NaN/inf
            (while validating).
        """
        return self.kernels.affine_forward(self._flatten(x), self.W, self.b)

    def forward_relu(self, x: Array, relu: Relu) -> Array:
        """This layer and the ReLU after it in one pass (the net fuses them).

        Parameters
        ----------
        x : array of shape (N, ...)
            As for :meth:`forward`.
        relu : Relu
            The following ReLU layer; its cache is set as if it had run on this layer's output.

        Returns
        -------
        array of shape (N, out)
            ``max(x @ W + b, 0)``.
        """
        relu.out = self.kernels.affine_relu_forward(self._flatten(x), self.W, self.b)
        return relu.out

    def forward_unchecked(self, x: Array) -> Array:
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        return self.kernels.affine_forward(self._keep(x, x.reshape(x.shape[0], -1)), self.W, self.b)

    def forward_relu_unchecked(self, x: Array, relu: Relu) -> Array:
        """``forward_relu`` for an input whose shape and dtype the net has seen pass the checks."""
        relu.out = self.kernels.affine_relu_forward(self._keep(x, x.reshape(x.shape[0], -1)), self.W, self.b)
        return relu.out

    def forward_relu_unchecked_finite(self, x: Array, relu: Relu) -> tuple[Array, bool]:
        """``forward_relu_unchecked``, and whether ``x @ W + b`` came out finite: False whenever
        ``x`` holds NaN or inf, so a net checks its input's values on this flag, in the same pass
        (reading it waits for a GPU: the net uses it on the CPU)."""
        relu.out, finite = self.kernels.affine_relu_forward_finite(
            self._keep(x, x.reshape(x.shape[0], -1)), self.W, self.b
        )
        return relu.out, bool(finite)

    def backward(self, dout: Array) -> Array | None:
        """Sets ``dW`` and ``db`` and returns the input's gradient, in the input's shape.

        Returns
        -------
        array or None
            None when ``need_input_grad`` is off (a net's first layer).

        Raises
        ------
        InputError
            When called before ``forward`` or with ``dout`` of another shape than ``(N, out)``.
        """
        expected = None if self.x is None else (self.x.shape[0], self.W.shape[1])
        check_dout(dout, expected, "Affine")
        dx, self.dW, self.db = self.kernels.affine_backward(self.x, self.W, dout, self.need_input_grad)
        return None if dx is None else dx.reshape(self.original_x_shape)

    def _clear_cache(self):
        self.x = None

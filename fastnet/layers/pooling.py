"""Max pooling."""

from __future__ import annotations

from fastnet.annotations import Array, BackendLike
from fastnet.errors import InputError
from fastnet.layers.activations import Relu, check_dout
from fastnet.layers.base import Layer
from fastnet.shapes import window_output_hw


class Pooling(Layer):
    """Max pooling over ``pool_h`` x ``pool_w`` windows of an (N, C, H, W) input, per channel.

    Parameters
    ----------
    pool_h, pool_w : int
        The window's height and width, >= 1.
    stride : int
        The step between windows, >= 1.
    pad : int
        Rows and columns of padding on each side, at most half the window.
    backend : Backend, str or None
        Where the layer computes; None for the default backend.

    Raises
    ------
    InputError
        For sizes out of those ranges.

    Examples
    --------
    >>> import numpy
    >>> pool = Pooling(2, 2, stride=2, backend="numpy")
    >>> pool.forward(numpy.arange(16, dtype=numpy.float32).reshape(1, 1, 4, 4))
    array([[[[ 5.,  7.],
             [13., 15.]]]], dtype=float32)
    """

    kind = "pool"
    fuses_backward_with = ("relu",)

    def __init__(self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0, backend: BackendLike = None):
        super().__init__(backend)
        if pool_h < 1 or pool_w < 1 or stride < 1 or pad < 0:
            raise InputError(
                f"Pooling needs positive pool sizes and stride and pad >= 0; got "
                f"pool {pool_h}x{pool_w}, stride {stride}, pad {pad}"
            )
        if 2 * pad > min(pool_h, pool_w):
            # A window made only of padding would output -inf.
            raise InputError(f"Pooling pad {pad} is more than half the {pool_h}x{pool_w} window")
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x_shape: tuple[int, ...] | None = None
        self.arg_max: Array = None

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(N, C, OH, OW)`` for an input of shape ``(N, C, H, W)``."""
        n, c, h, w = x_shape
        return (n, c, *window_output_hw(h, w, self.pool_h, self.pool_w, self.stride, self.pad))

    def forward(self, x: Array) -> Array:
        """The maximum of each window, of shape ``output_shape(x.shape)``.

        Raises
        ------
        InputError
            When ``x`` is not (N, C, H, W), the window does not fit, or ``x`` holds NaN/inf
            (while validating).
        """
        self._check_x(x)
        if x.ndim != 4:
            raise InputError(f"Pooling expects input of shape (N, C, H, W); got {tuple(x.shape)}")
        _, _, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise InputError(
                f"Pooling window {self.pool_h}x{self.pool_w} does not fit the {x.shape[2]}x{x.shape[3]} input"
            )
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: Array) -> Array:
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        self.x_shape = x.shape
        out, self.arg_max = self.kernels.maxpool_forward(x, self.pool_h, self.pool_w, self.stride, self.pad)
        return out

    def backward(self, dout: Array) -> Array:
        """The input's gradient: each window's ``dout`` goes to where its maximum was.

        Raises
        ------
        InputError
            When called before ``forward`` or with ``dout`` of another shape than the output's.
        """
        self._check_dout(dout)
        return self.kernels.maxpool_backward(
            dout, self.arg_max, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad
        )

    def backward_relu(self, dout: Array, relu: Relu) -> Array:
        """``relu.backward(self.backward(dout))`` in one pass, for a pooling whose input was the
        output of ``relu`` (the net fuses them): the gradient goes where a window's maximum was
        and that maximum was positive.

        Raises
        ------
        InputError
            As :meth:`backward`, and when ``relu`` has run on no input of this pooling's shape.
        """
        self._check_dout(dout)
        if getattr(relu.out, "shape", None) != self.x_shape:
            return relu.backward(self.backward(dout))  # not this pooling's input: each its own way
        return self.kernels.maxpool_relu_backward(
            dout, self.arg_max, relu.out, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad
        )

    def _check_dout(self, dout):
        """Refuses a ``dout`` before any forward, or of another shape than the last output's."""
        check_dout(dout, None if self.x_shape is None else self.output_shape(self.x_shape), "Pooling")

    def _clear_cache(self):
        self.arg_max = self.x_shape = None  # x_shape too: backward then says forward is needed

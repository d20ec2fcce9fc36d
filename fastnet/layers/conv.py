"""Convolution: the kernels compute it (the reference through im2col and one matrix product)."""

from types import MappingProxyType

from fastnet.errors import InputError
from fastnet.layers.activations import check_dout
from fastnet.layers.base import Layer
from fastnet.shapes import window_output_hw


class Convolution(Layer):
    """W of shape (FN, C, FH, FW), b of shape (FN,); input (N, C, H, W)."""

    kind = "conv"
    fuses_with = ("relu",)
    param_names = ("W", "b")
    grad_names = MappingProxyType({"W": "dW", "b": "db"})
    decay_names = ("W",)

    def __init__(self, W, b, stride=1, pad=0, backend=None, dtype=None):
        super().__init__(backend)
        self.W = self._param(W, dtype)
        self.b = self._param(b, self.W.dtype)
        if self.W.ndim != 4 or self.b.shape != (self.W.shape[0],):
            raise InputError(
                f"Convolution needs W of shape (FN, C, FH, FW) and b of shape (FN,); "
                f"got W {tuple(self.W.shape)} and b {tuple(self.b.shape)}"
            )
        if stride < 1 or pad < 0:
            raise InputError(f"Convolution needs stride >= 1 and pad >= 0; got stride={stride}, pad={pad}")
        self.stride = stride
        self.pad = pad
        self.need_input_grad = True
        self.x_shape = None
        self.cache = None  # the kernels' own record of the forward, handed back to them
        self.dW = None
        self.db = None

    # NaN/inf in the input does reach the output (where every pixel lies in a window), but the
    # net checks the input itself: a convolution's output is larger (DeepConvNet's first: 16x,
    # SimpleConvNet's: 22x), and checking it would also split the first Conv+ReLU the net fuses.
    propagates_nonfinite = False

    def output_size(self):
        return int(self.W.shape[0])

    def output_shape(self, x_shape):
        fn, _, fh, fw = self.W.shape
        n, _, h, w = x_shape
        return (n, fn, *window_output_hw(h, w, fh, fw, self.stride, self.pad))

    def _check(self, x):
        self._check_x(x, dtype=self.W.dtype)
        fn, c, fh, fw = self.W.shape
        if x.ndim != 4 or x.shape[1] != c:
            raise InputError(f"Convolution expects input of shape (N, {c}, H, W); got {tuple(x.shape)}")
        _, _, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise InputError(
                f"Convolution filter {fh}x{fw} (pad {self.pad}) does not fit the {x.shape[2]}x{x.shape[3]} input"
            )

    def forward(self, x, relu=None):
        self._check(x)
        return self.forward_unchecked(x, relu)

    def forward_unchecked(self, x, relu=None):
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        self.x_shape = x.shape
        out, self.cache = self.kernels.conv_forward(x, self.W, self.b, self.stride, self.pad, relu=relu is not None)
        if relu is not None:
            relu.out = out
        return out

    def forward_relu(self, x, relu):
        """This layer and the ReLU after it in one pass (the net fuses them)."""
        return self.forward(x, relu=relu)

    def forward_relu_unchecked(self, x, relu):
        return self.forward_unchecked(x, relu=relu)

    def backward(self, dout):
        expected = None if self.x_shape is None else self.output_shape(self.x_shape)
        check_dout(dout, expected, "Convolution")
        dx, self.dW, self.db = self.kernels.conv_backward(dout, self.W, self.cache, self.need_input_grad)
        return dx

    def _clear_cache(self):
        self.cache = self.x_shape = None  # x_shape too: backward then says forward is needed

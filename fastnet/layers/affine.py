"""Fully connected layer: out = x @ W + b."""

from types import MappingProxyType

from fastnet.errors import InputError
from fastnet.layers.base import Layer, check_dout


class Affine(Layer):
    """Accepts N-D input, flattened to (N, -1); ``dx`` comes back in the input's shape.

    ``need_input_grad`` is switched off by a net for its first layer: nobody uses that gradient
    and it costs a whole matrix product.
    """

    kind = "affine"
    fuses_with = ("relu",)
    param_names = ("W", "b")
    grad_names = MappingProxyType({"W": "dW", "b": "db"})
    decay_names = ("W",)
    propagates_nonfinite = True

    def __init__(self, W, b, backend=None, dtype=None):
        super().__init__(backend)
        self.W = self._param(W, dtype)
        self.b = self._param(b, self.W.dtype)
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[1],):
            raise InputError(
                f"Affine needs W of shape (in, out) and b of shape (out,); "
                f"got W {tuple(self.W.shape)} and b {tuple(self.b.shape)}"
            )
        self.need_input_grad = True
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def _flatten(self, x):
        self._check_x(x, dtype=self.W.dtype)
        x2 = x.reshape(x.shape[0], -1)
        if x2.shape[1] != self.W.shape[0]:
            raise InputError(
                f"Affine expects {self.W.shape[0]} features per sample but got input "
                f"of shape {tuple(x.shape)} ({x2.shape[1]} features)"
            )
        return self._keep(x, x2)

    def _keep(self, x, x2):
        self.original_x_shape = x.shape
        self.x = x2
        return x2

    def output_size(self):
        return int(self.W.shape[1])

    def output_shape(self, x_shape):
        return (x_shape[0], int(self.W.shape[1]))

    def forward(self, x):
        return self.kernels.affine_forward(self._flatten(x), self.W, self.b)

    def forward_relu(self, x, relu):
        """This layer and the ReLU after it in one pass (the net fuses them)."""
        relu.out = self.kernels.affine_relu_forward(self._flatten(x), self.W, self.b)
        return relu.out

    def forward_unchecked(self, x):
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        return self.kernels.affine_forward(self._keep(x, x.reshape(x.shape[0], -1)), self.W, self.b)

    def forward_relu_unchecked(self, x, relu):
        relu.out = self.kernels.affine_relu_forward(self._keep(x, x.reshape(x.shape[0], -1)), self.W, self.b)
        return relu.out

    def backward(self, dout):
        expected = None if self.x is None else (self.x.shape[0], self.W.shape[1])
        check_dout(dout, expected, "Affine")
        dx, self.dW, self.db = self.kernels.affine_backward(self.x, self.W, dout, self.need_input_grad)
        return None if dx is None else dx.reshape(self.original_x_shape)

    def _clear_cache(self):
        self.x = None

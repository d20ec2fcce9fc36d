"""Max pooling."""

from fastnet.errors import InputError
from fastnet.layers.activations import check_dout
from fastnet.layers.base import Layer
from fastnet.shapes import window_output_hw


class Pooling(Layer):
    kind = "pool"

    def __init__(self, pool_h, pool_w, stride=1, pad=0, backend=None):
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
        self.x_shape = None
        self.arg_max = None

    def output_shape(self, x_shape):
        n, c, h, w = x_shape
        return (n, c, *window_output_hw(h, w, self.pool_h, self.pool_w, self.stride, self.pad))

    def forward(self, x):
        self._check_x(x)
        if x.ndim != 4:
            raise InputError(f"Pooling expects input of shape (N, C, H, W); got {tuple(x.shape)}")
        _, _, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise InputError(
                f"Pooling window {self.pool_h}x{self.pool_w} does not fit the {x.shape[2]}x{x.shape[3]} input"
            )
        return self.forward_unchecked(x)

    def forward_unchecked(self, x):
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        self.x_shape = x.shape
        out, self.arg_max = self.kernels.maxpool_forward(x, self.pool_h, self.pool_w, self.stride, self.pad)
        return out

    def backward(self, dout):
        expected = None if self.x_shape is None else self.output_shape(self.x_shape)
        check_dout(dout, expected, "Pooling")
        return self.kernels.maxpool_backward(
            dout, self.arg_max, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad
        )

    def _clear_cache(self):
        self.arg_max = self.x_shape = None  # x_shape too: backward then says forward is needed

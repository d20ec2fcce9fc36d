"""Element-wise activations."""

from fastnet.layers.base import Layer, check_dout, shape_of

__all__ = ["Relu", "Sigmoid", "check_dout", "shape_of"]  # check_dout, shape_of: kept importable from here


class Relu(Layer):
    """max(x, 0).  Caches its output: the gradient passes where the output is positive."""

    kind = "relu"

    def __init__(self, backend=None):
        super().__init__(backend)
        self.out = None

    def forward(self, x):
        self._check_x(x, min_ndim=1)
        return self.forward_unchecked(x)

    def forward_unchecked(self, x):
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        self.out = self.kernels.relu_forward(x)
        return self.out

    def backward(self, dout):
        check_dout(dout, shape_of(self.out), "Relu")
        return self.kernels.relu_backward(dout, self.out)

    @property
    def mask(self):
        """The book's mask: True where the input was not positive."""
        return None if self.out is None else self.out <= 0

    def _clear_cache(self):
        self.out = None


class Sigmoid(Layer):
    kind = "sigmoid"

    def __init__(self, backend=None):
        super().__init__(backend)
        self.out = None

    def forward(self, x):
        self._check_x(x, min_ndim=1)
        return self.forward_unchecked(x)

    def forward_unchecked(self, x):
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        # exp(-logaddexp(0, -x)) == 1 / (1 + exp(-x)) without overflow for very negative x.
        self.out = self.xp.exp(-self.xp.logaddexp(0, -x))
        return self.out

    def backward(self, dout):
        check_dout(dout, shape_of(self.out), "Sigmoid")
        return dout * (1.0 - self.out) * self.out

    def _clear_cache(self):
        self.out = None

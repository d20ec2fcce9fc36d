"""Softmax followed by the cross-entropy loss: the usual last layer of a classifier."""

from fastnet.errors import InputError
from fastnet.layers.base import Layer
from fastnet.validation import check_labels


class SoftmaxWithLoss(Layer):
    """``forward(x, t)`` returns the mean cross-entropy; ``t`` holds integer labels or one-hot rows.

    Stable for logits of any size: the row maximum is subtracted before exponentiating.
    """

    kind = "loss"

    def __init__(self, backend=None):
        super().__init__(backend)
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x, t):
        self._check_x(x)
        if x.ndim != 2:
            raise self._shape_error(x)
        check_labels(self.backend, t, x.shape[0], x.shape[1], read_values=self.validate)
        if t.ndim == 2 and t.dtype != x.dtype:
            t = t.astype(x.dtype)
        self.t = t
        self.loss, self.y = self.kernels.softmax_cross_entropy(x, t)
        return self.loss

    def backward(self, dout=1):
        if self.y is None:
            raise InputError("SoftmaxWithLoss.backward called before forward")
        return self.kernels.softmax_cross_entropy_backward(self.y, self.t, dout)

    @staticmethod
    def _shape_error(x):
        return InputError(f"SoftmaxWithLoss expects scores of shape (N, classes); got {tuple(x.shape)}")

    def _clear_cache(self):
        self.y = self.t = self.loss = None

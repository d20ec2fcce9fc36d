"""Dropout as in the classic design: drop at training time, scale by (1 - ratio) at test time."""
from fastnet.errors import InputError
from fastnet.layers.activations import check_dout, shape_of
from fastnet.layers.base import Layer


class Dropout(Layer):
    takes_train_flag = True

    def __init__(self, dropout_ratio=0.5, backend=None, seed=None):
        super().__init__(backend)
        if not 0.0 <= dropout_ratio < 1.0:
            raise InputError(f"dropout_ratio must be in [0, 1); got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.seed = seed
        self.rng = self.backend.rng(seed)
        self.mask = None

    def forward(self, x, train_flg=True):
        self._check_x(x, min_ndim=1)
        if train_flg:
            # A boolean mask: multiplying keeps x's dtype (no float64 detour).
            self.mask = self.rng.random(x.shape, dtype=x.dtype) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        check_dout(dout, shape_of(self.mask), "Dropout")
        return dout * self.mask

    def to(self, backend):
        super().to(backend)
        self.rng = self.backend.rng(self.seed)
        return self

    def _clear_cache(self):
        self.mask = None

"""Batch normalisation: per feature for 2-D input, per channel for 4-D input."""

from types import MappingProxyType

from fastnet.errors import InputError
from fastnet.layers.base import Layer, after_test_mode_error, check_dout


class BatchNormalization(Layer):
    """Running mean and variance are persistent state: they move, save and load with the params.

    A test-mode forward uses the running statistics and keeps no cache: a backward after it
    is refused rather than silently reusing the last training forward's batch statistics.

    ``statistics`` is a hook for where the batch statistics come from: None, this batch's own;
    a ``fastnet.distributed.sync_batchnorm.GlobalBatchStatistics``, the global batch's over the
    ranks of a data-parallel run (set through ``net.share_batch_statistics``).  A hook has
    ``moments(layer, rows) -> (mean, centred rows, biased variance)`` and
    ``gradient_sums(layer, dbeta, dgamma)``: the two sums the input gradient needs, on the scale of
    the loss the statistics belong to.
    """

    kind = "batchnorm"
    param_names = ("gamma", "beta")
    grad_names = MappingProxyType({"gamma": "dgamma", "beta": "dbeta"})
    state_names = ("running_mean", "running_var")
    takes_train_flag = True
    batch_statistics = True
    eps = 1e-6

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None, backend=None, dtype=None):
        super().__init__(backend)
        self.gamma = self._param(gamma, dtype)
        self.beta = self._param(beta, self.gamma.dtype)
        if self.gamma.ndim != 1 or self.beta.shape != self.gamma.shape:
            raise InputError(
                f"BatchNormalization needs 1-D gamma and beta of equal shape; got "
                f"{tuple(self.gamma.shape)} and {tuple(self.beta.shape)}"
            )
        self.momentum = momentum
        features = self.gamma.shape[0]
        self.running_mean = (
            self.xp.zeros(features, self.gamma.dtype)
            if running_mean is None
            else self._param(running_mean, self.gamma.dtype)
        )
        self.running_var = (
            self.xp.ones(features, self.gamma.dtype)
            if running_var is None
            else self._param(running_var, self.gamma.dtype)
        )
        self.input_shape = None
        self.xn = self.std = None
        self.dgamma = self.dbeta = None
        self.test_mode = False
        self.statistics = None

    def _as_rows(self, x):
        """(N, D) stays; (N, C, H, W) becomes (N*H*W, C) so statistics are per channel."""
        if x.ndim == 4:
            return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
        if x.ndim == 2:
            return x
        raise InputError(f"BatchNormalization takes (N, D) or (N, C, H, W) input; got {tuple(x.shape)}")

    def _from_rows(self, rows, shape):
        if len(shape) == 4:
            n, c, h, w = shape
            return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return rows

    def forward(self, x, train_flg=True):
        self._check_x(x, dtype=self.gamma.dtype)
        rows = self._as_rows(x)
        if rows.shape[1] != self.gamma.shape[0]:
            raise InputError(
                f"BatchNormalization has {self.gamma.shape[0]} features/channels but the "
                f"input of shape {tuple(x.shape)} has {rows.shape[1]}"
            )
        self.input_shape = x.shape
        self.test_mode = not train_flg
        if train_flg:
            mu, xc, var = self._moments(rows)
            self.std = self.xp.sqrt(var + self.eps)
            self.xn = xc / self.std
            self.update_running(mu, var)
            xn = self.xn
        else:
            self.xn = self.std = None
            xn = (rows - self.running_mean) / self.xp.sqrt(self.running_var + self.eps)
        return self._from_rows(self.gamma * xn + self.beta, x.shape)

    def _moments(self, rows):
        """The batch's mean, centred rows and biased variance (two passes: no cancellation)."""
        if self.statistics is not None:
            return self.statistics.moments(self, rows)
        mu = rows.mean(axis=0)
        xc = rows - mu
        return mu, xc, (xc * xc).mean(axis=0)

    def update_running(self, mu, var):
        """The running statistics are state, updated in place so references stay valid."""
        self.running_mean *= self.momentum
        self.running_mean += (1 - self.momentum) * mu
        self.running_var *= self.momentum
        self.running_var += (1 - self.momentum) * var

    def backward(self, dout):
        if self.test_mode:
            raise after_test_mode_error("BatchNormalization")
        check_dout(dout, None if self.xn is None else self.input_shape, "BatchNormalization")
        rows = self._as_rows(dout)
        self.dbeta = rows.sum(axis=0)
        self.dgamma = (self.xn * rows).sum(axis=0)
        if self.statistics is None:
            dxn = self.gamma * rows
            dx = (dxn - dxn.mean(axis=0) - self.xn * (dxn * self.xn).mean(axis=0)) / self.std
        else:  # the same formula, with the sums of the batch the statistics came from
            dbeta, dgamma = self.statistics.gradient_sums(self, self.dbeta, self.dgamma)
            dx = (self.gamma * rows - self.gamma * (dbeta + self.xn * dgamma) / rows.shape[0]) / self.std
        return self._from_rows(dx, self.input_shape)

    def _clear_cache(self):
        self.xn = self.std = None
        self.test_mode = False

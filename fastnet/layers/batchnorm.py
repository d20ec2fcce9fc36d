"""Batch normalisation: per feature for 2-D input, per channel for 4-D input."""

from __future__ import annotations

from types import MappingProxyType

from fastnet.annotations import Array, BackendLike, DTypeLike
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

    Parameters
    ----------
    gamma, beta : array-like of shape (D,)
        Scale and shift, one per feature (2-D input) or channel (4-D input).
    momentum : float
        The share of the running statistics each training forward keeps.
    running_mean, running_var : array-like of shape (D,) or None
        Starting running statistics; None for zeros and ones.
    backend : Backend, str or None
        Where the layer computes; None for the default backend.
    dtype : dtype or None
        The parameters' dtype; None keeps a floating ``gamma``'s own.

    Raises
    ------
    InputError
        When ``gamma`` and ``beta`` are not 1-D of equal shape, or hold NaN/inf.

    Examples
    --------
    >>> import numpy
    >>> bn = BatchNormalization(numpy.ones(2), numpy.zeros(2), backend="numpy")
    >>> bn.forward(numpy.array([[1.0, 2.0], [3.0, 6.0]])).round(3)
    array([[-1., -1.],
           [ 1.,  1.]])
    """

    kind = "batchnorm"
    param_names = ("gamma", "beta")
    grad_names = MappingProxyType({"gamma": "dgamma", "beta": "dbeta"})
    state_names = ("running_mean", "running_var")
    takes_train_flag = True
    batch_statistics = True
    eps = 1e-6

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        momentum: float = 0.9,
        running_mean: Array | None = None,
        running_var: Array | None = None,
        backend: BackendLike = None,
        dtype: DTypeLike | None = None,
    ):
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

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        """``gamma * normalised x + beta``: normalised by the batch's statistics in training (which
        also update the running ones), by the running statistics in test mode.

        Parameters
        ----------
        x : array of shape (N, D) or (N, C, H, W)
            In the parameters' dtype, on the layer's backend.
        train_flg : bool
            True for training, False for test mode.

        Returns
        -------
        array
            Of ``x``'s shape.

        Raises
        ------
        InputError
            When ``x``'s shape, dtype or backend does not fit, or it holds NaN/inf (while validating).
        """
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

    def update_running(self, mu: Array, var: Array) -> None:
        """The running statistics are state, updated in place so references stay valid."""
        self.running_mean *= self.momentum
        self.running_mean += (1 - self.momentum) * mu
        self.running_var *= self.momentum
        self.running_var += (1 - self.momentum) * var

    def backward(self, dout: Array) -> Array:
        """Sets ``dgamma`` and ``dbeta`` and returns the input's gradient, in the input's shape.

        Raises
        ------
        InputError
            After a test-mode forward, before any forward, or for ``dout`` of another shape.
        """
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

"""Batch normalisation over the global batch, when each rank holds only a slice of it.

As ChainerMN's MultiNodeBatchNormalization: in training mode the mean and variance are those
of the whole batch (sums over the ranks), so N ranks normalise exactly as one process would.
The variance is computed in two passes (mean first, then the summed squared deviations), like
the single-process layer, rather than from a sum of squares that cancels badly.

Gradients: each rank's loss is the mean over its own slice, so its incoming gradient is
``n_global / n_local`` times its share of the global loss's gradient.  The backward rescales
to the global loss for the two sums it needs from every rank, and hands back ``dx``, ``dgamma``
and ``dbeta`` on the local scale, which the data-parallel step then weights like any gradient.

In training mode forward and backward are collective: every rank must call them in the same
order.  A rank whose slice of a batch is empty joins with ``forward_empty``/``backward_empty``.
"""
from __future__ import annotations

from fastnet.layers import BatchNormalization
from fastnet.layers.activations import check_dout


class SyncBatchNormalization(BatchNormalization):
    """Takes over a BatchNormalization's arrays (no copy) and reduces its statistics over ``comm``."""

    def __init__(self, layer: BatchNormalization, comm):
        self.__dict__.update(layer.__dict__)
        self.comm = comm
        self.local_rows = self.global_rows = None

    def _stats(self, rows):
        """Global mean and biased variance of the rows of every rank (two collectives)."""
        xp, c = self.xp, self.gamma.shape[0]
        sums = xp.empty(c + 1, dtype=self.gamma.dtype)
        sums[:c] = rows.sum(axis=0)
        sums[c] = rows.shape[0]
        self.comm.allreduce_(sums)
        self.local_rows, self.global_rows = rows.shape[0], float(sums[c])
        mu = sums[:c] / sums[c]
        xc = rows - mu
        squares = xp.ascontiguousarray((xc * xc).sum(axis=0))
        self.comm.allreduce_(squares)
        return mu, xc, squares / sums[c]

    def _update_running(self, mu, var):
        self.running_mean *= self.momentum
        self.running_mean += (1 - self.momentum) * mu
        self.running_var *= self.momentum
        self.running_var += (1 - self.momentum) * var

    def forward(self, x, train_flg=True):
        if not train_flg:
            return super().forward(x, False)
        self._check_x(x, dtype=self.gamma.dtype)
        rows = self._as_rows(x)
        if rows.shape[1] != self.gamma.shape[0]:
            return super().forward(x, train_flg)  # the parent's one-line error
        self.input_shape = x.shape
        mu, xc, var = self._stats(rows)
        self.std = self.xp.sqrt(var + self.eps)
        self.xn = xc / self.std
        self._update_running(mu, var)
        return self._from_rows(self.gamma * self.xn + self.beta, x.shape)

    def backward(self, dout):
        check_dout(dout, None if self.xn is None else self.input_shape, "BatchNormalization")
        rows = self._as_rows(dout)
        c = self.gamma.shape[0]
        self.dbeta = rows.sum(axis=0)
        self.dgamma = (self.xn * rows).sum(axis=0)
        # The global loss's sums: local sums times n_local / n_global, summed over ranks.
        sums = self.xp.concatenate([self.dbeta, self.dgamma])
        self.comm.allreduce_(sums, self.local_rows / self.global_rows)
        dbeta, dgamma = sums[:c], sums[c:]
        dx = (self.gamma * rows - self.gamma * (dbeta + self.xn * dgamma) / self.local_rows) / self.std
        return self._from_rows(dx, self.input_shape)

    # --- a rank with no rows in this batch still takes part in the collectives ---------------
    def forward_empty(self):
        rows = self.xp.zeros((0, self.gamma.shape[0]), dtype=self.gamma.dtype)
        mu, _xc, var = self._stats(rows)
        self._update_running(mu, var)
        self.xn = self.std = None

    def backward_empty(self):
        self.comm.allreduce_(self.xp.zeros(2 * self.gamma.shape[0], dtype=self.gamma.dtype), 0.0)
        self.dbeta = self.xp.zeros_like(self.gamma)
        self.dgamma = self.xp.zeros_like(self.gamma)


def synchronize_batchnorm(net, comm) -> list:
    """Make every BatchNormalization of ``net`` use global-batch statistics over ``comm``.

    Returns the synchronised layers in forward order.  Parameters keep their names and arrays.
    """
    synced = []
    for name, layer in list(net.layers.items()):
        if isinstance(layer, SyncBatchNormalization):
            synced.append(layer)
        elif isinstance(layer, BatchNormalization):
            new = SyncBatchNormalization(layer, comm)
            net.layers[name] = new
            # The net finds a parameter's array and gradient through its layer: point it at the new one.
            for key, (owner, attr) in list(net._param_index.items()):
                if owner is layer:
                    net._param_index[key] = (new, attr)
            synced.append(new)
    return synced

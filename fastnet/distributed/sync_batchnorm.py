"""Batch normalisation over the global batch, when each rank holds only a slice of it.

As ChainerMN's MultiNodeBatchNormalization: in training mode the mean and variance are those
of the whole batch (sums over the ranks), so N ranks normalise exactly as one process would.
``GlobalBatchStatistics`` is the statistics hook a ``BatchNormalization`` layer calls (the
layer's one forward and backward do the rest); ``net.share_batch_statistics`` installs it.
The variance is computed in two passes (mean first, then the summed squared deviations), like
the single-process layer, rather than from a sum of squares that cancels badly.  The counts
and sums stay on the device: nothing is read back to the host.

Gradients: each rank's loss is the mean over its own slice, so its incoming gradient is
``n_global / n_local`` times its share of the global loss's gradient.  ``gradient_sums``
rescales to the global loss for the two sums every rank needs; the layer hands back ``dx``,
``dgamma`` and ``dbeta`` on the local scale, which the data-parallel step then weights like
any gradient.

In training mode forward and backward are collective: every rank must call them in the same
order.  A rank whose slice of a batch is empty joins with ``join_forward``/``join_backward``.
"""

from __future__ import annotations


class GlobalBatchStatistics:
    """Mean and variance of the rows of every rank (two collectives per forward, one per backward)."""

    def __init__(self, comm):
        self.comm = comm
        self.scale = None  # n_local / n_global of the last forward, a device scalar

    def moments(self, layer, rows):
        xp = layer.xp
        c = rows.shape[1]
        sums = xp.empty(c + 1, dtype=rows.dtype)
        sums[:c] = rows.sum(axis=0)
        sums[c] = rows.shape[0]
        self.comm.allreduce_(sums)
        count = sums[c]
        self.scale = rows.shape[0] / count
        mu = sums[:c] / count
        xc = rows - mu
        squares = xp.ascontiguousarray((xc * xc).sum(axis=0))
        self.comm.allreduce_(squares)
        return mu, xc, squares / count

    def gradient_sums(self, layer, dbeta, dgamma):
        """The global loss's sums: local sums times n_local / n_global, summed over ranks."""
        xp = layer.xp
        c = dbeta.shape[0]
        sums = xp.concatenate([dbeta, dgamma])
        sums *= self.scale
        self.comm.allreduce_(sums)
        return sums[:c], sums[c:]

    # --- a rank with no rows in this batch still takes part in the collectives ---------------
    def join_forward(self, layer):
        rows = layer.xp.zeros((0, layer.gamma.shape[0]), dtype=layer.gamma.dtype)
        mu, _xc, var = self.moments(layer, rows)
        layer.update_running(mu, var)
        layer.xn = layer.std = None

    def join_backward(self, layer):
        self.comm.allreduce_(layer.xp.zeros(2 * layer.gamma.shape[0], dtype=layer.gamma.dtype))
        layer.dbeta = layer.xp.zeros_like(layer.gamma)
        layer.dgamma = layer.xp.zeros_like(layer.gamma)

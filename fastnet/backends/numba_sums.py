"""The bias gradient of a convolution: its output gradient summed over images and positions.

Its own module: the im2col and the Winograd chunk kernels both call it from their compiled passes
(``numba_conv``, ``numba_winograd``)."""

import numpy as np

from fastnet.backends.numba_jit import jit as _jit

LANES = 16  # partial sums of channel_sums: a 512-bit register of float32


@_jit
def channel_sums(dout, acc):
    """dout (N, F, P) -> acc (F,): the bias gradient, summed in the dtype of dout.

    Each channel's values are added into LANES partial sums, value q into sum q % LANES, and the
    partial sums added last: the adds of one pass are independent, so they vectorise (a single
    running sum waits out each add's latency: 4-5x slower).  The order is fixed, so is the sum."""
    n, f, p = dout.shape
    whole = p - p % LANES
    part = np.empty(LANES, dtype=acc.dtype)
    for k in range(f):
        part[:] = 0
        for bi in range(n):
            for q in range(0, whole, LANES):
                for lane in range(LANES):
                    part[lane] += dout[bi, k, q + lane]
            for q in range(whole, p):
                part[q - whole] += dout[bi, k, q]
        s = part[0]
        for lane in range(1, LANES):
            s += part[lane]
        acc[k] = s

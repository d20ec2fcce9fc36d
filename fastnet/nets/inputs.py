"""What a net checks at its door, beyond what every layer checks."""

from __future__ import annotations

import math

import numpy

from fastnet.errors import InputError
from fastnet.validation import check_float_input


def check_net_input(net, x, name="x"):
    """Structure only (reads no values): an array of the net's backend and dtype, a batch."""
    check_float_input(net.backend, x, name)
    if x.dtype != net.dtype:
        raise InputError(
            f"{name} has dtype {x.dtype} but the net computes in {net.dtype}; "
            f"convert it with {name}.astype('{net.dtype}')"
        )
    return x


def check_input_scale(net, x, name="x"):
    """Refuse data so large that one gradient step overflows the net's dtype.

    A step changes the first layer's weights by about |x| times the output gradient, so the
    next forward moves that layer's output by about |x|**2 per feature: past the dtype's
    largest value, training turns to inf/NaN whatever the learning rate.
    """
    largest = max(abs(float(x.max())), abs(float(x.min())))
    if largest == 0.0:
        return x
    features = math.prod(x.shape[1:])
    limit = float(numpy.finfo(net.dtype).max)
    exponent = 2 * math.log10(largest) + math.log10(features)
    if exponent > math.log10(limit):
        raise InputError(
            f"{name} holds values up to {largest:.3g}, too large to train in {net.dtype}: a "
            f"gradient step moves the first layer's output by about value**2 x {features} "
            f"features = 1e+{int(exponent)}, beyond {net.dtype}'s largest {limit:.3g}; scale "
            f"the input (e.g. divide by its largest value, or standardise it)"
        )
    return x


def label_name(x_name: str) -> str:
    """``x_train`` -> ``t_train``: the labels are named after their inputs."""
    return "t" + x_name[1:] if x_name.startswith("x") else "t"

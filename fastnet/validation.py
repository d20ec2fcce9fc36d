"""Checks at the public boundary: clear ``InputError`` messages instead of deep tracebacks.

Structural checks (type, dtype, shape) read no data and run on every call.  Checks that read
the values (NaN/inf, label range) cost a pass over the data, and a device sync on a GPU, so
callers that validated a whole dataset once may turn them off.
"""
from __future__ import annotations

import numpy

from fastnet.errors import InputError


def check_float_input(backend, x, name="x", min_ndim=2):
    backend.check_array(x, name)
    if x.dtype.kind != "f":
        raise InputError(f"{name} has dtype {x.dtype}; fastnet needs floating-point input "
                         f"(convert with {name}.astype('float32'))")
    if x.ndim < min_ndim:
        raise InputError(f"{name} has shape {tuple(x.shape)}; expected a batch with at least "
                         f"{min_ndim} dimensions, (N, ...) - use {name}[None] for one sample")
    if x.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (shape {tuple(x.shape)}); pass at least one sample")
    return x


def check_finite(backend, x, name="x"):
    if not bool(backend.xp.isfinite(x).all()):
        xp = backend.xp
        bad = int(xp.count_nonzero(~xp.isfinite(x)))
        raise InputError(f"{name} contains {bad} NaN or inf value(s); clean or re-normalise the input")
    return x


def check_same_dtype(x, dtype, name, owner):
    if x.dtype != dtype:
        raise InputError(f"{name} has dtype {x.dtype} but {owner} computes in {numpy.dtype(dtype)}; "
                         f"convert it with {name}.astype('{numpy.dtype(dtype)}')")


def check_labels(backend, t, n, num_classes, name="t", read_values=True):
    """Integer labels of shape (n,) in [0, num_classes), or one-hot rows of shape (n, num_classes).

    One-hot rows may also be probabilities (label smoothing): non-negative, summing to 1.
    """
    backend.check_array(t, name)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise InputError(f"{name} has dtype {t.dtype}; integer class labels are needed "
                             f"(convert with {name}.astype('int64'))")
        if t.shape[0] != n:
            raise InputError(f"{name} has {t.shape[0]} labels but the batch has {n} samples")
        if read_values and n:
            low, high = int(t.min()), int(t.max())
            if low < 0 or high >= num_classes:
                bad = low if low < 0 else high
                raise InputError(f"{name} contains label {bad}, outside the {num_classes} classes "
                                 f"0..{num_classes - 1}")
        return t
    if t.ndim == 2:
        if t.dtype.kind != "f":
            raise InputError(f"one-hot {name} has dtype {t.dtype}; use a floating-point dtype")
        if t.shape != (n, num_classes):
            raise InputError(f"one-hot {name} has shape {tuple(t.shape)}; expected ({n}, {num_classes})"
                             f" - one row per sample, one column per class")
        if read_values:
            check_finite(backend, t, name)
            _check_rows_are_distributions(backend, t, name)
        return t
    raise InputError(f"{name} has shape {tuple(t.shape)}; expected integer labels (N,) or one-hot (N, classes)")


def _check_rows_are_distributions(backend, t, name):
    """Rows of 5s or negative rows would make the loss and its gradient meaningless."""
    xp = backend.xp
    tolerance = float(numpy.sqrt(numpy.finfo(t.dtype).eps))
    bad = (t < 0).any(axis=1) | (xp.abs(t.sum(axis=1) - 1) > tolerance)
    if bool(bad.any()):
        row = int(xp.flatnonzero(bad)[0])
        values = numpy.array2string(backend.to_numpy(t[row]), precision=3, threshold=8, edgeitems=3)
        raise InputError(f"one-hot {name} row {row} is {values}, not a one-hot row; each row needs a "
                         f"single 1 and zeros (or non-negative probabilities summing to 1)")

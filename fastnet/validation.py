"""Checks at the public boundary: clear ``InputError`` messages instead of deep tracebacks.

Structural checks (type, dtype, shape) read no data and run on every call.  Checks that read
the values (NaN/inf, label range) cost a pass over the data, and a device sync on a GPU, so
callers that validated a whole dataset once may turn them off.
"""

from __future__ import annotations

import numpy

from fastnet.annotations import Array
from fastnet.errors import InputError


def check_float_input(backend, x, name="x", min_ndim=2):
    backend.check_array(x, name)
    if x.dtype.kind != "f":
        raise InputError(
            f"{name} has dtype {x.dtype}; fastnet needs floating-point input (convert with {name}.astype('float32'))"
        )
    if x.ndim < min_ndim:
        raise InputError(
            f"{name} has shape {tuple(x.shape)}; expected a batch with at least "
            f"{min_ndim} dimensions, (N, ...) - use {name}[None] for one sample"
        )
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
        raise InputError(
            f"{name} has dtype {x.dtype} but {owner} computes in {numpy.dtype(dtype)}; "
            f"convert it with {name}.astype('{numpy.dtype(dtype)}')"
        )


def check_labels(backend, t, n, num_classes, name="t", read_values=True):
    """Integer labels of shape (n,) in [0, num_classes), or one-hot rows of shape (n, num_classes).

    One-hot rows may also be probabilities (label smoothing): non-negative, summing to 1.
    """
    backend.check_array(t, name)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise InputError(
                f"{name} has dtype {t.dtype}; integer class labels are needed (convert with {name}.astype('int64'))"
            )
        if t.shape[0] != n:
            raise InputError(f"{name} has {t.shape[0]} labels but the batch has {n} samples")
        if read_values and n:
            low, high = int(t.min()), int(t.max())
            if low < 0 or high >= num_classes:
                bad = low if low < 0 else high
                raise InputError(f"{name} contains label {bad}, outside the {num_classes} classes 0..{num_classes - 1}")
        return t
    if t.ndim == 2:
        if t.dtype.kind != "f":
            raise InputError(f"one-hot {name} has dtype {t.dtype}; use a floating-point dtype")
        if t.shape != (n, num_classes):
            raise InputError(
                f"one-hot {name} has shape {tuple(t.shape)}; expected ({n}, {num_classes})"
                f" - one row per sample, one column per class"
            )
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
        raise InputError(
            f"one-hot {name} row {row} is {values}, not a one-hot row; each row needs a "
            f"single 1 and zeros (or non-negative probabilities summing to 1)"
        )


class ValueChecks:
    """The value checks of a net's calls, made without stopping a GPU.

    On a CPU backend a check reads its values at once and raises at once.  On a device, reading
    a value waits for every queued kernel (several per step would keep the GPU idle between
    steps), so a check adds to a small flag array on the device instead - for each problem, the
    first batch that showed it - and ``raise_pending()`` reads that array once, where the loss
    is read (the trainer's logging interval), naming the batch in one line.  A net that is never
    asked reads it itself every ``every`` batches, so a bad batch is never forgotten.
    """

    NONE = numpy.iinfo(numpy.int64).max  # no batch had the problem

    def __init__(self, backend, every=None):
        from fastnet.catalog import LOG_EVERY

        self.backend = backend
        self.every = int(every or LOG_EVERY)
        self.batch = 0  # batches checked since the flags were last read
        self._flags: Array = None  # int64 device array, one slot per problem in _problems
        self._problems = []  # (what, fix) per slot

    @classmethod
    def of(cls, net):
        """The net's checks, made again when the net moves to another backend."""
        checks = net.__dict__.get("_value_checks")
        if checks is None or checks.backend is not net.backend:
            checks = net.__dict__["_value_checks"] = cls(net.backend)
        return checks

    @property
    def deferred(self) -> bool:
        return self.backend.device != "cpu"

    def next_batch(self):
        """Called once per batch at the net's door; reads the flags once every ``every`` batches."""
        if self.deferred and self.batch >= self.every:
            self.raise_pending()
        self.batch += 1

    def finite(self, probe, x, name):
        """``x`` (or ``probe``, computed from it and NaN whenever x is) holds no NaN or inf."""
        if not self.deferred:
            if probe is not x and bool(self.backend.xp.isfinite(probe).all()):
                return
            check_finite(self.backend, x, name)
            return
        what = f"{name} contains NaN or inf values"
        if probe is not x:  # the first layer's output: NaN when x has one, or when it overflowed
            what += " (or the first layer overflowed on it)"
        flag = self._flag(what, "clean or re-normalise the input")
        if not self._kernel("note_nonfinite", probe, flag):
            self._note(flag, ~self.backend.xp.isfinite(probe).all())

    def labels(self, t, num_classes, name):
        """Label values (their structure is checked already, by ``check_labels``)."""
        if not self.deferred:
            check_labels(self.backend, t, t.shape[0], num_classes, name)
            return
        xp = self.backend.xp
        if t.ndim == 1:
            flag = self._flag(
                f"{name} contains a label outside the {num_classes} classes 0..{num_classes - 1}",
                "give labels in that range",
            )
            if not self._kernel("note_bad_labels", t, flag, num_classes):
                self._note(flag, ((t < 0) | (t >= num_classes)).any())
            return
        tolerance = float(numpy.sqrt(numpy.finfo(t.dtype).eps))
        bad = ~xp.isfinite(t).all() | (t < 0).any() | (xp.abs(t.sum(axis=1) - 1) > tolerance).any()
        self._note(
            self._flag(
                f"one-hot {name} has a row that is not one-hot",
                "each row needs a single 1 and zeros (or non-negative probabilities summing to 1)",
            ),
            bad,
        )

    def _flag(self, what, fix):
        """The 1-element device view holding the first batch with this problem (made on first use)."""
        xp = self.backend.xp
        if (what, fix) not in self._problems:
            self._problems.append((what, fix))
            grown = xp.full(len(self._problems), self.NONE, dtype=numpy.int64)
            if self._flags is not None:
                grown[: self._flags.shape[0]] = self._flags
            self._flags = grown
        slot = self._problems.index((what, fix))
        return self._flags[slot : slot + 1]

    def _kernel(self, name, a, flag, *extra) -> bool:
        """The backend's one-launch check where it has one (the cupy kernels' ``checks`` do)."""
        note = getattr(getattr(self.backend.kernels, "checks", None), name, None)
        return note is not None and note(a, flag, self.batch, *extra)

    def _note(self, flag, bad):
        """The generic form: flag = min(flag, batch if bad else NONE), all on the device."""
        xp = self.backend.xp
        xp.minimum(flag, xp.where(bad, numpy.int64(self.batch), numpy.int64(self.NONE)), out=flag)

    def raise_pending(self):
        """Read the flags (one device-to-host copy) and raise ``InputError`` for the first problem."""
        batches, self.batch = self.batch, 0
        if self._flags is None:
            return
        flags = self.backend.to_numpy(self._flags)
        self._flags[...] = self.NONE
        for (what, fix), first in zip(self._problems, flags.tolist(), strict=True):
            if first != self.NONE:
                raise InputError(f"batch {first} of the last {batches} checked: {what}; {fix}")

"""A run's data before its first step: the memory check, the validation split held out, and
every split moved to the backend's device and validated once (steps then skip the checks)."""

from __future__ import annotations

import numpy

from fastnet.errors import InputError
from fastnet.training.memory import check_batch_fits, largest_eval_batch
from fastnet.training.selection import split_off_validation


def check_splits(x_train, x_test):
    if x_train is None or getattr(x_train, "ndim", 0) < 1 or x_train.shape[0] == 0:
        raise InputError("x_train holds no samples; give at least one training sample")
    if x_test is not None and getattr(x_test, "ndim", 0) >= 1 and x_test.shape[0] == 0:
        raise InputError("x_test holds no samples; give test samples or none (x_test=None)")


def eval_batch_that_fits(net, optimizer, settings, x_train, arrays) -> int:
    """The evaluation batch size, lowered where the memory check finds the device too small."""
    if not settings.check_memory:
        return settings.eval_batch_size
    backend = net.backend
    data_bytes = sum(getattr(a, "nbytes", 0) for a in arrays) if backend.device != "cpu" else 0
    fit = check_batch_fits(
        net,
        tuple(x_train.shape[1:]),
        min(settings.batch_size, x_train.shape[0]),
        data_bytes,
        free=settings.free_memory,
        optimizer_slots=len(getattr(optimizer, "slots", ())),
    )
    if fit is None:
        return settings.eval_batch_size
    _need, per_sample, budget = fit
    return largest_eval_batch(per_sample, budget, data_bytes, settings.eval_batch_size)


TRAIN_EVAL_STREAM = 0x7E  # keeps the sample's draw apart from the seed's other uses


def place_splits(net, settings, x_train, t_train, x_test, t_test) -> dict:
    """``{"train": (x, t), "val": ..., "test": ...}`` on the device; (None, None) where absent.

    Validation (``val_split``) is held out of the training set; see fastnet.training.selection.
    """
    x_train, t_train, x_val, t_val = split_off_validation(x_train, t_train, settings.val_split, settings.seed)
    return {
        "train": to_device(net, x_train, t_train, "train"),
        "val": to_device(net, x_val, t_val, "val") if x_val is not None else (None, None),
        "test": to_device(net, x_test, t_test, "test") if x_test is not None else (None, None),
    }


def train_eval_sample(net, x, t, size, seed):
    """The training images evaluated after each epoch: all of them (``size`` "full", the book's
    choice), or a fixed random sample of ``size``, the same every epoch and after a resume."""
    rows = train_eval_rows(x.shape[0], size, seed)
    if rows is None:
        return x, t
    rows = net.backend.asarray(rows)
    return x[rows], t[rows]


def train_eval_rows(count: int, size, seed: int):
    """The sorted rows of ``train_eval_sample`` among ``count`` training images (None: all)."""
    if size == "full" or size >= count:
        return None
    rng = numpy.random.default_rng(numpy.random.SeedSequence([seed, TRAIN_EVAL_STREAM]))
    return numpy.sort(rng.choice(count, size, replace=False))


def to_device(net, x, t, split):
    """Move a split to the net's backend once and validate it once."""
    if x is None or t is None:
        raise InputError(f"x_{split} and t_{split} must be given together")
    x = net.backend.asarray(x)
    t = net.backend.asarray(t)
    if x.dtype.kind == "f" and x.dtype != net.dtype:
        x = x.astype(net.dtype)
    net.check_inputs(x, t, f"x_{split}", f"t_{split}")
    return x, t

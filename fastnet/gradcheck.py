"""Numerical gradients by central differences, and a check of a net's backprop against them."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy

from fastnet.errors import InputError
from fastnet.optim import check_hyperparameter


def numerical_gradient(f, x, h=1e-4, indices=None):
    """d f() / d x by central differences; ``x`` is perturbed in place and restored.

    ``f`` takes no argument and reads ``x`` (as the classic code's ``lambda W: net.loss(x, t)``),
    or takes ``x`` itself.  Works on any backend's arrays, in ``x``'s dtype: use float64 for
    meaningful checks (``net.numerical_gradient`` does that for a whole net).
    ``indices`` (flat positions) limits the work to those entries; the others stay zero.
    """
    takes_x = len(inspect.signature(f).parameters) > 0

    def call():
        return float(f(x) if takes_x else f())

    if not x.flags.c_contiguous:
        raise InputError("numerical_gradient needs a C-contiguous array to perturb in place")
    grad = x * 0
    flat_x = x.reshape(-1)
    flat_g = grad.reshape(-1)
    for i in range(flat_x.shape[0]) if indices is None else indices:
        i = int(i)
        original = flat_x[i].item()
        flat_x[i] = original + h
        upper = call()
        flat_x[i] = original - h
        lower = call()
        flat_x[i] = original
        flat_g[i] = (upper - lower) / (2 * h)
    return grad


@dataclass
class ParamCheck:
    name: str
    max_relative_error: float
    mean_absolute_difference: float


def relative_errors(a, b, floor=1e-8):
    a, b = numpy.asarray(a, numpy.float64), numpy.asarray(b, numpy.float64)
    return numpy.abs(a - b) / numpy.maximum(numpy.abs(a) + numpy.abs(b), floor)


def relative_error(a, b, floor=1e-8):
    return float(numpy.max(relative_errors(a, b, floor)))


MIN_TOLERANCE = 1e-12
# A difference at the rounding level of the loss counts as this relative error: entries smaller
# than resolvable / FLOOR_RATIO are compared with that floor, not with their own tiny size.
FLOOR_RATIO = 1e-6


def check_net_gradients(net, x, t, h=1e-5, max_entries=None, seed=0, tolerance=1e-6, on_param=None):
    """Backprop vs numerical gradient for every parameter of ``net`` (float64 recommended).

    The numerical side always computes in float64 (``net.numerical_gradient``) and from the
    state the backprop pass started in (the same dropout masks); the net's state is put back.

    The step is smaller than the classic 1e-4: in float64 that keeps the truncation error tiny.
    An entry whose step crossed a ReLU or max-pooling kink looks wrong at that step only, so
    entries over ``tolerance`` are retried with steps 10 and 100 times smaller and keep their
    best agreement; a wrong backward disagrees at every step.  ``max_entries`` checks that many
    randomly chosen entries per parameter (big nets).

    Central differences cannot resolve gradients below the loss's rounding error divided by the
    step, so relative errors use that (over ``FLOOR_RATIO``) as the smallest denominator; it does
    not depend on ``tolerance``, so the error reported is the same whatever passes.
    ``on_param(ParamCheck)`` hears about each parameter as soon as it is checked (progress).
    """
    # Below 1e-12 no float64 central difference can tell, and resolvable / tolerance overflows.
    tolerance = check_hyperparameter("tolerance", tolerance, low=MIN_TOLERANCE, high=1.0)
    start = net.layer_state()
    backprop = {k: net.backend.to_numpy(v).reshape(-1).copy() for k, v in net.gradient(x, t).items()}
    net.load_layer_state(start)  # the numerical gradient sees the dropout masks backprop saw
    loss = abs(float(net.last_loss))
    resolvable = 4 * numpy.finfo(net.dtype).eps * max(loss, 1.0) / (2 * h)
    floor = max(resolvable / FLOOR_RATIO, 1e-8)
    rng = numpy.random.default_rng(seed)
    report = []
    for key, grad in backprop.items():
        chosen = numpy.arange(grad.size)
        if max_entries is not None and grad.size > max_entries:
            chosen = numpy.sort(rng.choice(grad.size, max_entries, replace=False))
        best_num = _numeric_at(net, x, t, h, key, chosen)
        errors = relative_errors(grad[chosen], best_num, floor)
        for smaller in (h / 10, h / 100):
            retry = chosen[errors > tolerance]
            if retry.size == 0:
                break
            num = _numeric_at(net, x, t, smaller, key, retry)
            retry_errors = relative_errors(grad[retry], num, floor)
            where = numpy.flatnonzero(errors > tolerance)
            better = retry_errors < errors[where]
            errors[where[better]] = retry_errors[better]
            best_num[where[better]] = num[better]
        report.append(ParamCheck(key, float(errors.max()), float(numpy.mean(numpy.abs(grad[chosen] - best_num)))))
        if on_param is not None:
            on_param(report[-1])
    net.load_layer_state(start)
    return report


def _numeric_at(net, x, t, h, key, indices):
    """The numerical gradient of parameter ``key`` at the flat ``indices`` (host float64)."""
    full = net.numerical_gradient(x, t, h, keys=[key], indices=indices)[key]
    return numpy.asarray(net.backend.to_numpy(full), numpy.float64).reshape(-1)[indices]

"""Numerical gradients by central differences, and a check of a net's backprop against them."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy

from fastnet.errors import InputError


def numerical_gradient(f, x, h=1e-4):
    """d f() / d x by central differences; ``x`` is perturbed in place and restored.

    ``f`` takes no argument and reads ``x`` (as the classic code's ``lambda W: net.loss(x, t)``),
    or takes ``x`` itself.  Works on any backend's arrays; use float64 for meaningful checks.
    """
    takes_x = len(inspect.signature(f).parameters) > 0

    def call():
        return float(f(x) if takes_x else f())

    if not x.flags.c_contiguous:
        raise InputError("numerical_gradient needs a C-contiguous array to perturb in place")
    grad = x * 0
    flat_x = x.reshape(-1)
    flat_g = grad.reshape(-1)
    for i in range(flat_x.shape[0]):
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


def relative_error(a, b, floor=1e-8):
    a, b = numpy.asarray(a, numpy.float64), numpy.asarray(b, numpy.float64)
    return float(numpy.max(numpy.abs(a - b) / numpy.maximum(numpy.abs(a) + numpy.abs(b), floor)))


def check_net_gradients(net, x, t, h=1e-5):
    """Backprop vs numerical gradient for every parameter of ``net`` (float64 recommended).

    The step is smaller than the classic 1e-4: in float64 that keeps the truncation error tiny
    and makes crossing a ReLU or max-pooling kink (a false alarm) ten times less likely.
    """
    backprop = {k: net.backend.to_numpy(v).copy() for k, v in net.gradient(x, t).items()}
    numeric = net.numerical_gradient(x, t, h)
    report = []
    for key, grad in backprop.items():
        num = net.backend.to_numpy(numeric[key])
        report.append(ParamCheck(key, relative_error(grad, num),
                                 float(numpy.mean(numpy.abs(grad - num)))))
    return report

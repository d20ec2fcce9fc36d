"""Timing each layer of a net without editing the layers or the net.

Inside ``timing_layers(net)`` every layer's ``forward``, ``backward`` and fused ``forward_relu``
(and their unchecked variants) is wrapped on the instance (the class is untouched) and the wrappers are removed on exit.
The book's layer names label the calls; a fused pass is labelled by both layers it runs
("Affine1+Relu1"), and the backward of both is charged to that same unit, so a unit's time is
what its layers cost, nothing hidden.  A fused backward (``Pooling.backward_relu``) is charged to
the layer that runs it: the ReLU's mask costs nothing apart there.  ``sync``
(``backend.synchronize``) runs before and after each call so that a GPU's asynchronous work is
charged to the layer that queued it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from itertools import pairwise

# The unchecked forwards are what a net runs once an input shape has passed the checks
# (``fastnet.nets.inference_plan``).
WRAPPED = (
    "forward",
    "forward_relu",
    "forward_unchecked",
    "forward_relu_unchecked",
    "forward_relu_unchecked_finite",
    "backward",
    "backward_relu",
)


class LayerRecord:
    """Seconds per (unit, phase) for each step, and bytes per unit of one counted step."""

    def __init__(self, units):
        self.units = units  # layer name -> unit name (its own, or the fused pair's)
        self.steps = []  # one dict (unit, phase) -> seconds per recorded step
        self.bytes = defaultdict(int)  # unit -> bytes allocated in the counted step
        self.count_bytes = False

    def new_step(self):
        self.steps.append(defaultdict(float))

    def add(self, unit, phase, seconds):
        if self.steps:
            self.steps[-1][unit, phase] += seconds


def _units(net):
    """Each layer's unit: a layer the net fuses with the one after it (as its declaration allows)
    shares that layer's unit."""
    names = list(net.layers)
    units = {name: name for name in names}
    for name, following in pairwise(names):
        if net.fused_forward(name, following) is not None:
            units[name] = units[following] = f"{name}+{following}"
    return units


def _arrays(value):
    """The arrays held by an attribute or returned by a call (one level into tuples, lists, dicts)."""
    if hasattr(value, "nbytes") and hasattr(value, "shape"):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [v for v in value if hasattr(v, "nbytes") and hasattr(v, "shape")]
    return []


def _buffer(array):
    """The array that owns the memory of ``array`` (a view counts as its base's buffer)."""
    while getattr(array, "base", None) is not None and hasattr(array.base, "nbytes"):
        array = array.base
    return array


def _new_bytes(layer, before, args, result):
    """Bytes of buffers that appeared in this call: returned or newly stored on the layer."""
    old = {id(_buffer(a)) for a in before} | {id(_buffer(a)) for arg in args for a in _arrays(arg)}
    seen, total = set(), 0
    found = [a for v in vars(layer).values() for a in _arrays(v)] + _arrays(result)
    for array in found:
        buffer = _buffer(array)
        if id(buffer) not in old and id(buffer) not in seen:
            seen.add(id(buffer))
            total += int(buffer.nbytes)
    return total


def _wrap(layer, method, unit, phase, record, sync, busy):
    original = getattr(layer, method)

    def timed(*args, **kwargs):
        if id(layer) in busy:  # a fused pass calling the layer's own forward: timed once, outside
            return original(*args, **kwargs)
        busy.add(id(layer))
        before = [a for v in vars(layer).values() for a in _arrays(v)] if record.count_bytes else None
        try:
            sync()
            start = time.perf_counter()
            result = original(*args, **kwargs)
            sync()
            record.add(unit, phase, time.perf_counter() - start)
        finally:
            busy.discard(id(layer))
        if before is not None:
            record.bytes[unit] += _new_bytes(layer, before, args, result)
        return result

    setattr(layer, method, timed)


@contextmanager
def timing_layers(net, sync=None):
    """Record every layer call of ``net`` (and its loss layer) into the ``LayerRecord`` yielded."""
    sync = sync or net.backend.synchronize
    units = _units(net)
    record = LayerRecord(units)
    loss_name = type(net.lastLayer).__name__
    layers = list(net.layers.items()) + [(loss_name, net.lastLayer)]
    units.setdefault(loss_name, loss_name)
    saved: list[tuple] = []
    busy: set[int] = set()
    try:
        for name, layer in layers:
            for method in WRAPPED:
                if hasattr(layer, method):
                    saved.append((layer, method, vars(layer).get(method)))
                    phase = "backward" if method.startswith("backward") else "forward"
                    _wrap(layer, method, units[name], phase, record, sync, busy)
        yield record
    finally:
        for layer, method, own in reversed(saved):
            if own is None:
                delattr(layer, method)
            else:
                setattr(layer, method, own)

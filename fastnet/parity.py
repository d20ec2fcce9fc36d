"""Do the backends compute the same thing?  One forward/backward of the same net, weights and
batch on each backend, compared layer by layer with the numpy reference.

Each layer's output (a fused affine/convolution + ReLU counts as one, as does the backward a
pooling runs for itself and the ReLU before it), each input gradient
and each parameter gradient is compared as ``max|a - ref| / max|ref|``: the difference in units
of the array's own scale, which stays meaningful where single elements are near zero.  Sums of
many float32 products differ in their last bits from one summation order to another; a broken
kernel differs by whole units.  ``TOLERANCE`` sits between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy

from fastnet.backends import Backend, get_backend, unavailable_reason

# Round-off of one forward/backward through the classic nets is below ~1e-5 (float32) and
# ~1e-13 (float64); a wrong kernel gives differences of order 1.
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


@dataclass
class Difference:
    name: str  # layer ("Conv1+Relu1" when fused), "loss" or parameter name
    kind: str  # "output", "input grad" or "param grad"
    value: float


@dataclass
class BackendReport:
    backend: str
    tolerance: float
    differences: list = field(default_factory=list)
    unavailable: str | None = None  # the reason the backend cannot run here
    error: str | None = None  # the pass raised: a disagreement too

    @property
    def worst(self) -> float:
        return max((d.value for d in self.differences), default=0.0)

    @property
    def agrees(self) -> bool:
        if self.unavailable is not None:
            return True
        return self.error is None and self.worst <= self.tolerance


def relative_difference(a, ref) -> float:
    a, ref = numpy.asarray(a, numpy.float64), numpy.asarray(ref, numpy.float64)
    scale = float(numpy.abs(ref).max()) if ref.size else 0.0
    diff = float(numpy.abs(a - ref).max()) if ref.size else 0.0
    if not numpy.isfinite(diff):
        return float("inf")
    return diff / scale if scale > 0 else diff


def compare_backends(build, x, t, backends, reference="numpy", dtype="float32"):
    """``build(backend)`` makes the net; reports for each backend (names or Backend objects).

    Every net gets the reference net's parameters and state, so only the kernels differ.
    """
    ref_backend = get_backend(reference)
    ref_net = build(ref_backend)
    state = {k: ref_backend.to_numpy(v).copy() for k, v in ref_net.state_arrays().items()}
    expected = record_pass(ref_net, x, t)
    tolerance = TOLERANCE[str(numpy.dtype(dtype))]
    reports = []
    for wanted in backends:
        name = wanted.name if isinstance(wanted, Backend) else wanted
        reason = None if isinstance(wanted, Backend) else unavailable_reason(wanted)
        if reason is not None:
            reports.append(BackendReport(name, tolerance, unavailable=reason))
            continue
        report = BackendReport(name, tolerance)
        reports.append(report)
        try:
            net = build(get_backend(wanted))
            net.set_state_arrays(state)
            got = record_pass(net, x, t)
        except Exception as exc:  # a kernel that crashes disagrees; say how, and check the others
            report.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            continue
        for key, ref_value in expected.items():
            value = relative_difference(got[key], ref_value) if key in got else float("inf")
            report.differences.append(Difference(*key, value))
    return reports


def record_pass(net, x, t) -> dict:
    """Run ``net.gradient`` on host arrays ``x``, ``t``; every intermediate array, on the host,
    keyed by (name, kind) in the order computed."""
    backend = net.backend
    seen: dict = {}
    names = {id(layer): name for name, layer in net.layers.items()}
    names[id(net.lastLayer)] = "loss"
    patched, fusing = [], set()

    def keep(name, kind, value):
        if value is not None:
            seen[(name, kind)] = backend.to_numpy(value).copy()
        return value

    def wrap(layer, method, label):
        original = getattr(layer, method)
        kind = "input grad" if method.startswith("backward") else "output"
        if method in ("forward_relu", "backward_relu"):

            def wrapper(x, relu):
                # A fused pass may call the layers' own passes: one record, the pair's.
                fusing.update((id(layer), id(relu)))
                try:
                    out = original(x, relu)
                finally:
                    fusing.difference_update((id(layer), id(relu)))
                return keep(f"{label}+{names[id(relu)]}", kind, out)
        else:

            def wrapper(*args, **kwargs):
                out = original(*args, **kwargs)
                return out if id(layer) in fusing else keep(label, kind, out)

        setattr(layer, method, wrapper)  # an instance attribute shadows the method until removed
        patched.append((layer, method))

    streams = list(net.random_streams().values())
    for layer in [*net.layers.values(), net.lastLayer]:
        for method in ("forward", "forward_relu", "backward", "backward_relu"):
            if hasattr(layer, method):
                wrap(layer, method, names[id(layer)])
        if layer in streams:
            # Dropout: every backend draws the same masks, from a host generator with the layer's seed.
            layer.rng = HostRandom(layer.seed, backend)
    try:
        grads = net.gradient(backend.asarray(x, dtype=net.dtype), backend.asarray(t))
    finally:
        for layer, method in patched:
            delattr(layer, method)
    for key, value in grads.items():
        keep(key, "param grad", value)
    return seen


class HostRandom:
    """Random numbers drawn on the host with numpy and sent to the backend: the same on all."""

    def __init__(self, seed, backend):
        self._rng = numpy.random.default_rng(seed)
        self._backend = backend

    def random(self, shape, dtype=numpy.float64):
        return self._backend.asarray(self._rng.random(shape, dtype=numpy.dtype(dtype)))

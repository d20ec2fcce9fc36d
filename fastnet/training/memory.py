"""Will a batch fit?  Estimated before the big allocations, from a tiny probe batch."""
from __future__ import annotations

import os

import numpy

from fastnet.errors import ResourceError

# Backward allocates gradients and temporaries about the size of the cached activations.
BACKWARD_FACTOR = 2.5


def cached_bytes(net) -> int:
    """Bytes of arrays the layers keep between forward and backward."""
    total = 0
    for layer in list(net.layers.values()) + [net.lastLayer]:
        for name, value in vars(layer).items():
            if name in getattr(layer, "param_names", ()) or name in getattr(layer, "state_names", ()):
                continue
            if hasattr(value, "nbytes") and hasattr(value, "shape"):
                total += int(value.nbytes)
    return total


def bytes_per_sample(net, sample_shape, probe=2) -> float:
    """Activation memory one training sample costs, measured on a probe batch."""
    x = net.backend.asarray(numpy.zeros((probe, *sample_shape), dtype=net.dtype))
    t = net.backend.asarray(numpy.zeros(probe, dtype=numpy.int64))
    validate = net.validate_inputs
    net.validate_inputs = False
    try:
        net.loss(x, t, train_flg=True)
        return cached_bytes(net) * BACKWARD_FACTOR / probe
    finally:
        net.validate_inputs = validate
        for layer in net.layers.values():
            if hasattr(layer, "_clear_cache"):
                layer._clear_cache()


def available_bytes(backend) -> int | None:
    """Free memory where the backend's arrays live (None when unknown)."""
    memory = getattr(backend, "free_memory", None)
    if memory is not None:
        return memory()
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_batch_fits(net, sample_shape, batch_size, dataset_bytes=0, free=None, headroom=0.8):
    """Raise ResourceError naming the estimate and a batch size that fits, before allocating."""
    free = available_bytes(net.backend) if free is None else free
    if free is None:
        return None
    per_sample = bytes_per_sample(net, sample_shape)
    need = per_sample * batch_size + dataset_bytes
    budget = free * headroom
    if need <= budget:
        return need
    fits = int((budget - dataset_bytes) // per_sample) if budget > dataset_bytes else 0
    if fits >= 1:
        hint = f"use --batch-size {2 ** int(numpy.log2(fits))} or smaller"
    else:
        hint = "the data set alone does not fit; use a smaller data set or a machine with more memory"
    raise ResourceError(f"batch size {batch_size} needs about {gib(need)} on {net.backend.name} "
                        f"but only {gib(free)} is free; {hint}")

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
    """Activation memory one training sample costs, measured on a probe batch.

    The probe leaves no trace (``net.probe()``): probing never changes what training computes.
    """
    x = net.backend.asarray(numpy.zeros((probe, *sample_shape), dtype=net.dtype))
    t = net.backend.asarray(numpy.zeros(probe, dtype=numpy.int64))
    with net.probe():
        net.loss(x, t, train_flg=True)
        return cached_bytes(net) * BACKWARD_FACTOR / probe


def available_bytes(backend) -> int | None:
    """Free memory where the backend's arrays live (None when unknown).

    On the host: the smaller of the memory the system has available and what this process's
    own limits (``ulimit -v`` / ``-d``) still allow.
    """
    memory = getattr(backend, "free_memory", None)
    if memory is not None:
        return memory()
    candidates = [_meminfo_available(), _rlimit_headroom()]
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _rlimit_headroom() -> int | None:
    """Bytes left under RLIMIT_AS/RLIMIT_DATA, from the process's current sizes (Linux)."""
    try:
        import resource

        with open("/proc/self/status") as f:
            sizes = {k: int(v.split()[0]) * 1024 for k, _, v in (line.partition(":") for line in f)
                     if k in ("VmSize", "VmData")}
    except (ImportError, OSError, ValueError, IndexError):
        return None
    left = []
    for limit, used in ((resource.RLIMIT_AS, "VmSize"), (getattr(resource, "RLIMIT_DATA", None), "VmData")):
        if limit is None or used not in sizes:
            continue
        soft, _hard = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            left.append(max(soft - sizes[used], 0))
    return min(left) if left else None


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_batch_fits(net, sample_shape, batch_size, dataset_bytes=0, free=None, headroom=0.8):
    """Raise ResourceError naming the estimate and a batch size that fits, before allocating.

    ``free`` overrides the measured free bytes.  Returns ``(need, per_sample, budget)`` in
    bytes, or None when free memory cannot be known.
    """
    free = available_bytes(net.backend) if free is None else free
    if free is None:
        return None
    per_sample = bytes_per_sample(net, sample_shape)
    need = per_sample * batch_size + dataset_bytes
    budget = free * headroom
    if need <= budget:
        return need, per_sample, budget
    fits = int((budget - dataset_bytes) // per_sample) if budget > dataset_bytes else 0
    if fits >= 1:
        hint = f"use --batch-size {2 ** int(numpy.log2(fits))} or smaller"
    else:
        hint = "the data set alone does not fit; use a smaller data set or a machine with more memory"
    raise ResourceError(f"batch size {batch_size} needs about {gib(need)} on {net.backend.name} "
                        f"but only {gib(free)} is free; {hint}")


def largest_eval_batch(per_sample, budget, dataset_bytes=0, wanted=1000) -> int:
    """Evaluation batch that fits: inference keeps about 1/BACKWARD_FACTOR of training's memory."""
    forward_per_sample = per_sample / BACKWARD_FACTOR
    fits = int((budget - dataset_bytes) // forward_per_sample) if forward_per_sample > 0 else wanted
    return max(1, min(wanted, fits))

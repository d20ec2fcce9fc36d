"""Will a batch fit?  Estimated before the big allocations, from a tiny probe batch."""

from __future__ import annotations

import numpy

from fastnet.errors import ResourceError
from fastnet.host_memory import available_host_bytes

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

    On the host: the least of the memory the system has available, what this process's
    cgroups still allow (a container's ``--memory``: ``/proc/meminfo`` shows the host's RAM
    there) and what its own limits (``ulimit -v`` / ``-d``) still allow.
    """
    memory = getattr(backend, "free_memory", None)
    if memory is not None:
        return memory()
    return available_host_bytes()


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def net_bytes(net, optimizer_slots=0) -> tuple[int, int]:
    """``(held, added)``: bytes the parameters hold now, and bytes training adds for them
    (a gradient each, and ``optimizer_slots`` arrays each: 1 for Momentum, 2 for Adam)."""
    held = sum(int(v.nbytes) for v in net.params.values())
    return held, held * (1 + int(optimizer_slots))


def describe_size(net) -> str:
    """The net by its size: its class, parameter count and largest parameter."""
    count = sum(int(numpy.prod(v.shape)) for v in net.params.values())
    if not count:
        return f"the {type(net).__name__}"
    key, value = max(net.params.items(), key=lambda item: int(numpy.prod(item[1].shape)))
    shape = "x".join(str(d) for d in value.shape)
    return f"the {type(net).__name__} ({count:,} parameters; {key} is {shape})"


def check_batch_fits(net, sample_shape, batch_size, dataset_bytes=0, free=None, headroom=0.8, optimizer_slots=0):
    """Raise ResourceError before allocating when training would not fit: naming the net when
    the net alone (parameters, gradients, optimizer state) does not, else a batch size that fits.

    ``free`` overrides the measured free bytes (measured after the net was built, so its
    parameters are already counted as used).  Returns ``(need, per_sample, budget)`` in bytes,
    ``budget`` being what is left for activations, or None when free memory cannot be known.
    """
    free = available_bytes(net.backend) if free is None else free
    if free is None:
        return None
    budget = free * headroom
    held, added = net_bytes(net, optimizer_slots)
    if added > budget:
        state = f"gradients and {optimizer_slots} optimizer slot(s)" if optimizer_slots else "gradients"
        raise ResourceError(
            f"{describe_size(net)} needs about {gib(held + added)} on {net.backend.name} "
            f"for the net alone (parameters, {state}) but only {gib(free + held)} is "
            f"available; use a smaller net (fewer or smaller layers)"
        )
    per_sample = bytes_per_sample(net, sample_shape)
    need = added + per_sample * batch_size + dataset_bytes
    if need <= budget:
        return need, per_sample, budget - added
    room = budget - added - dataset_bytes
    fits = int(room // per_sample) if room > 0 else 0
    if fits >= 1:
        hint = f"use --batch-size {2 ** int(numpy.log2(fits))} or smaller"
    else:
        hint = (
            "the data set and the net leave no room for a batch; use a smaller data set, a smaller "
            "net or a machine with more memory"
        )
    raise ResourceError(
        f"batch size {batch_size} needs about {gib(need)} on {net.backend.name} but only {gib(free)} is free; {hint}"
    )


def largest_eval_batch(per_sample, budget, dataset_bytes=0, wanted=1000) -> int:
    """Evaluation batch that fits: inference keeps about 1/BACKWARD_FACTOR of training's memory."""
    forward_per_sample = per_sample / BACKWARD_FACTOR
    fits = int((budget - dataset_bytes) // forward_per_sample) if forward_per_sample > 0 else wanted
    return max(1, min(wanted, fits))

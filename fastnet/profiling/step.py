"""Profile a training step layer by layer: what ``fastnet profile`` and ``train --profile`` print."""

from __future__ import annotations

import statistics
import time

from fastnet.profiling.layer_timer import timing_layers

BYTES_NOTE = (
    "allocated: bytes of the arrays a layer returns or newly keeps on itself in one step "
    "(outputs, caches for backward, gradients), each buffer once; temporaries freed inside "
    "the call are not counted"
)


def profile_step(net, optimizer, x, t, steps=20, warmup=3) -> dict:
    """Median seconds per layer unit (forward, backward) over ``steps`` steps after ``warmup``.

    A step is ``optimizer.update(net.params, net.gradient(x, t))`` as a user writes it; the
    update is timed as its own row and whatever no layer accounts for (input checks, the net's
    Python glue) as "other".  Bytes come from one extra step, untimed.
    """
    sync = net.backend.synchronize

    def step(record):
        record.new_step()
        sync()
        start = time.perf_counter()
        grads = net.gradient(x, t)
        sync()
        middle = time.perf_counter()
        optimizer.update(net.params, grads)
        sync()
        end = time.perf_counter()
        record.steps[-1]["update", "forward"] = end - middle
        record.steps[-1]["step", "total"] = end - start

    with timing_layers(net, sync) as record:
        for _ in range(warmup):
            step(record)
        record.count_bytes = True
        step(record)
        record.count_bytes = False
        record.steps.clear()
        before = _process_usage()
        for _ in range(steps):
            step(record)
        after = _process_usage()
    units = list(dict.fromkeys(record.units.values()))

    def median(unit, phase):
        return statistics.median(s.get((unit, phase), 0.0) for s in record.steps)

    rows = [
        {
            "unit": u,
            "forward_s": median(u, "forward"),
            "backward_s": median(u, "backward"),
            "bytes": record.bytes.get(u, 0),
        }
        for u in units
    ]
    total = median("step", "total")
    update = median("update", "forward")
    layers = sum(r["forward_s"] + r["backward_s"] for r in rows)
    rows.append({"unit": f"update ({type(optimizer).__name__})", "forward_s": update, "backward_s": 0.0, "bytes": 0})
    rows.append(
        {"unit": "other (checks, glue)", "forward_s": max(total - layers - update, 0.0), "backward_s": 0.0, "bytes": 0}
    )
    return {
        "net": type(net).__name__,
        "backend": net.backend.name,
        "dtype": str(net.dtype),
        "batch": int(x.shape[0]),
        "steps": steps,
        "warmup": warmup,
        "step_s": total,
        "rows": rows,
        # Means over the timed steps; None where the platform does not count them (Windows).
        "page_faults_per_step": None if before is None else (after[0] - before[0]) / steps,
        "system_s_per_step": None if before is None else (after[1] - before[1]) / steps,
    }


def _process_usage():
    """(page faults, seconds of system time) of this process so far, or None (no ``resource``).

    A step that allocates fresh memory pays the kernel for every new page: the profile shows it
    here, where no layer's time would."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt + usage.ru_majflt, usage.ru_stime


def _size(count):
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


def format_profile(result: dict) -> str:
    lines = [
        f"{result['net']} on {result['backend']} ({result['dtype']}), batch {result['batch']}: "
        f"median of {result['steps']} steps after {result['warmup']} warm-up steps",
    ]
    width = max(22, *(len(r["unit"]) + 2 for r in result["rows"]))  # MultiLayerNet's units are long
    lines.append(f"  {'layer':<{width}}{'forward ms':>11}{'backward ms':>12}{'share':>8}{'allocated':>11}")
    step = result["step_s"] or 1e-12
    for r in result["rows"]:
        backward = f"{r['backward_s'] * 1e3:12.3f}" if r["backward_s"] else f"{'':12}"
        share = (r["forward_s"] + r["backward_s"]) / step
        allocated = _size(r["bytes"]) if r["bytes"] else ""
        lines.append(f"  {r['unit']:<{width}}{r['forward_s'] * 1e3:11.3f}{backward}{share:8.1%}{allocated:>11}")
    lines.append(f"  {'whole step':<{width}}{step * 1e3:11.3f} ms")
    if result.get("page_faults_per_step") is not None:
        lines.append(
            f"  per step, mean: {result['page_faults_per_step']:,.0f} page faults, "
            f"{result['system_s_per_step'] * 1e3:.2f} ms of system time (the kernel's, e.g. mapping fresh memory)"
        )
    lines.append(BYTES_NOTE)
    return "\n".join(lines)


def profile_copy(net, optimizer, x, t, **options) -> dict:
    """``profile_step`` on copies of the net and optimizer: the run being profiled is untouched
    (its weights, optimizer state and dropout random state stay as they were)."""
    import copy

    memo = {id(net.backend): net.backend}  # the backend (device, compiled kernels) is shared
    twin, twin_optimizer = copy.deepcopy((net, optimizer), memo)
    return profile_step(twin, twin_optimizer, x, t, **options)

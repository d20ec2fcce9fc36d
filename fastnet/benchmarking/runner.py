"""Timing: all contenders in one process, interleaved round-robin, medians over repeats.

Before each sample the runner sleeps (untimed) so that BLAS threads still spinning after one
contender's work do not slow the next one down.  A sample runs the step enough times to last
about ``sample_s`` (or ``steps`` times), between two calls of the contender's ``sync`` (the
device synchronisation on a GPU), under the contender's thread choice.  Samples of several
consecutive steps measure what a training loop runs: after the pause the first step is slower
(a sleeping core wakes in a fraction of a millisecond, a virtual machine's may run slowly for
tens), and a sample of one 60 ms step measured mostly that (DeepConvNet on a 2-core virtual
machine: 61 ms a step in one-step samples, 43 ms in 0.3 s ones; PyTorch 34 and 31 ms).  The first call of each
contender is timed on its own and reported as its warm-up (for numba: loading or compiling).
CPU (``fastnet bench``) and GPU (``benchmarks/bench_gpu.py``) figures come from this code.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext

from fastnet.benchmarking.load import busy_processes
from fastnet.benchmarking.machine import machine_info
from fastnet.benchmarking.noise import busy_warning, load_average, spread_warnings
from fastnet.benchmarking.report import save_json, save_plot
from fastnet.benchmarking.workloads import (
    QUIET_TWIN,
    WORKLOADS,
    Workload,
    fastnet_contender,
    matmul_bound_contender,
)
from fastnet.threads import usable_cores

PAUSE_S = 0.15
MATMUL_BOUND = "matmul bound"
TORCH = "pytorch"


def _makers(workload, backends, torch_device, threads, matmul_bound):
    from fastnet.benchmarking.torch_models import torch_contender

    makers = {name: (lambda name=name: fastnet_contender(workload, name, threads)) for name in backends}
    if torch_device is not None:
        makers[TORCH] = lambda: torch_contender(workload, torch_device)
    if matmul_bound and not workload.busy:
        makers[MATMUL_BOUND] = lambda: matmul_bound_contender(workload, threads)
    return makers


def _available_backends(requested):
    from fastnet.backends import BACKEND_NAMES, unavailable_reason
    from fastnet.errors import InputError

    names = list(requested or ("numpy", "numba"))
    unknown = [n for n in names if n not in BACKEND_NAMES]
    if unknown:
        raise InputError(f"unknown backend {unknown[0]!r}; choose from: {', '.join(BACKEND_NAMES)}")
    usable, skipped, load_s = [], {}, {}
    for name in names:
        start = time.perf_counter()
        reason = unavailable_reason(name)
        load_s[name] = time.perf_counter() - start  # first load in this process: imports, setup
        if reason is None:
            usable.append(name)
        else:
            skipped[name] = reason
    return usable, skipped, load_s


def _time(contender, count):
    from fastnet.threads import using_threads

    with using_threads(contender.threads) if contender.threads is not None else nullcontext():
        contender.sync()
        start = time.perf_counter()
        for _ in range(count):
            contender.step()
        contender.sync()
        return (time.perf_counter() - start) / count


def _bench_workload(workload, makers, repeats, warmup, sample_s, steps, log):
    contenders, first_call, loops = {}, {}, {}
    for name, make in makers.items():
        contenders[name] = make()
        first_call[name] = _time(contenders[name], 1)
        for _ in range(warmup):
            _time(contenders[name], 1)
        estimate = _time(contenders[name], 3)
        loops[name] = steps or max(1, round(sample_s / max(estimate, 1e-9)))
    samples = {name: [] for name in makers}
    names = list(makers)
    for r in range(repeats):
        # Rotate who goes first so no contender always follows the same neighbour.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(PAUSE_S)
            samples[name].append(_time(contenders[name], loops[name]))
        log(f"  {workload.name}: repeat {r + 1}/{repeats}")
    return {
        name: {
            "median_s": statistics.median(s),
            "min_s": min(s),
            "max_s": max(s),
            "samples_s": s,
            "steps_per_sample": loops[name],
            "first_call_s": first_call[name],
            **contenders[name].info,
        }
        for name, s in samples.items()
    }


def _ratios(results):
    ratios = {}
    for ref in (TORCH, MATMUL_BOUND):
        if ref in results:
            base = results[ref]["median_s"]
            ratios["vs_" + ref.replace(" ", "_")] = {
                name: r["median_s"] / base for name, r in results.items() if name != ref
            }
    return ratios


def _quiet_ratios(result):
    """The contention case against the same step without the load, where both ran."""
    for loaded, quiet in QUIET_TWIN.items():
        entries = result["workloads"]
        if loaded in entries and quiet in entries:
            entries[loaded]["ratios"]["vs_quiet"] = {
                name: r["median_s"] / entries[quiet]["results"][name]["median_s"]
                for name, r in entries[loaded]["results"].items()
                if name in entries[quiet]["results"]
            }


def run_benchmarks(
    workloads=None,
    backends=None,
    repeats=15,
    warmup=5,
    include_torch=True,
    out_dir=None,
    progress=True,
    sample_s=0.3,
    *,
    torch_device="cpu",
    threads=None,
    matmul_bound=True,
    steps=None,
    json_name="cpu.json",
    plot=True,
) -> dict:
    """Time each workload on each contender; returns (and, with ``out_dir``, saves) the results.

    ``workloads``: names from ``WORKLOADS`` or ``Workload`` objects (default: all of
    ``WORKLOADS``); ``backends``: fastnet backend names (default numpy and numba, the
    unavailable ones skipped with their reason); ``threads``: fastnet's BLAS/numba threads
    instead of the thread policy's choice.  A contender left out is named in
    ``missing_contenders`` with the reason.
    """
    from fastnet.benchmarking.torch_models import torch_missing_reason
    from fastnet.errors import InputError

    log = print if progress else (lambda *a: None)
    chosen = list(workloads or WORKLOADS)
    unknown = [n for n in chosen if not isinstance(n, Workload) and n not in WORKLOADS]
    if unknown:
        raise InputError(f"unknown workload {unknown[0]!r}; choose from: {', '.join(WORKLOADS)}")
    chosen = [w if isinstance(w, Workload) else WORKLOADS[w] for w in chosen]
    usable, skipped, load_s = _available_backends(backends)
    for name, reason in skipped.items():
        log(f"skipping backend {name}: {reason}")
    missing = {TORCH: "--no-torch left PyTorch out"} if not include_torch else {}
    if include_torch and torch_missing_reason(torch_device):
        missing[TORCH] = torch_missing_reason(torch_device)
    warm_up = {"numba_backend_load_s": load_s["numba"]} if "numba" in usable else {}
    busy = busy_warning(load_average(), usable_cores()[0])
    result = {
        "settings": {
            "repeats": repeats,
            "warmup": warmup,
            "pause_s": PAUSE_S,
            "sample_s": sample_s,
            "steps_per_sample": steps,
            "dtype": "float32",
            "optimizer": "SGD",
            "api": "defaults (input validation on)",
            "threads": threads or "policy",
        },
        "skipped_backends": skipped,
        "missing_contenders": missing,
        "workloads": {},
    }
    for workload in chosen:
        log(f"{workload.name}: {workload.description}")
        makers = _makers(workload, usable, None if TORCH in missing else torch_device, threads, matmul_bound)
        with busy_processes(workload.busy):
            timings = _bench_workload(workload, makers, repeats, warmup, sample_s, steps, log)
        result["workloads"][workload.name] = {
            "description": workload.description,
            "batch": workload.batch,
            "busy_processes": workload.busy,
            "results": timings,
            "ratios": _ratios(timings),
        }
        if "numba" in timings:
            warm_up.setdefault("numba_first_call_s", {})[workload.name] = timings["numba"]["first_call_s"]
        _quiet_ratios(result)
        result["numba_warm_up"] = warm_up
        if out_dir is not None:  # after each workload: what was measured survives a timeout
            save_json(result, out_dir, json_name)
    result["machine"] = machine_info()
    result["warnings"] = [w for w in (busy, *spread_warnings(result)) if w]
    for line in result["warnings"]:
        log(f"warning: {line}")
    if out_dir is not None:
        save_json(result, out_dir, json_name)
        if plot:
            save_plot(result, out_dir, json_name.replace(".json", ".png"))
    return result

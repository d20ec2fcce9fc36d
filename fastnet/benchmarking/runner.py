"""Timing: all contenders in one process, interleaved round-robin, medians over repeats.

Before each sample the runner sleeps (untimed) so that BLAS threads still spinning after one
contender's work do not slow the next one down.  A sample runs the step enough times to last
about ``sample_s``; the first call of each contender is timed on its own and reported as its
warm-up (for numba: loading or compiling the kernels).
"""
from __future__ import annotations

import statistics
import time

from fastnet.benchmarking.machine import machine_info
from fastnet.benchmarking.workloads import WORKLOADS, fastnet_step, matmul_bound_step

PAUSE_S = 0.15
MATMUL_BOUND = "matmul bound"
TORCH = "pytorch"


def _contenders(workload, backends, include_torch):
    makers = {}
    for name in backends:
        makers[name] = lambda name=name: fastnet_step(workload, name)
    if include_torch:
        from fastnet.benchmarking.torch_models import torch_available, torch_step

        if torch_available():
            makers[TORCH] = lambda: torch_step(workload)
    makers[MATMUL_BOUND] = lambda: matmul_bound_step(workload)
    return makers


def _available_backends(requested):
    from fastnet.backends import unavailable_reason

    names = requested or ("numpy", "numba")
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


def _time(step, count):
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def _bench_workload(workload, makers, repeats, warmup, sample_s, log):
    steps, first_call, loops = {}, {}, {}
    for name, make in makers.items():
        steps[name] = make()
        first_call[name] = _time(steps[name], 1)
        for _ in range(warmup):
            steps[name]()
        estimate = _time(steps[name], 3)
        loops[name] = max(1, round(sample_s / max(estimate, 1e-9)))
    samples = {name: [] for name in makers}
    names = list(makers)
    for r in range(repeats):
        # Rotate who goes first so no contender always follows the same neighbour.
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(PAUSE_S)
            samples[name].append(_time(steps[name], loops[name]))
        log(f"  {workload.name}: repeat {r + 1}/{repeats}")
    return {name: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s),
                   "samples_s": s, "steps_per_sample": loops[name], "first_call_s": first_call[name]}
            for name, s in samples.items()}


def _ratios(results):
    ratios = {}
    for ref in (TORCH, MATMUL_BOUND):
        if ref in results:
            base = results[ref]["median_s"]
            ratios["vs_" + ref.replace(" ", "_")] = {
                name: r["median_s"] / base for name, r in results.items() if name != ref}
    return ratios


def run_benchmarks(workloads=None, backends=None, repeats=15, warmup=5, include_torch=True,
                   out_dir=None, progress=True, sample_s=0.05) -> dict:
    """Time each workload on each contender; returns (and, with ``out_dir``, saves) the results.

    ``workloads``: names from ``WORKLOADS`` (default all); ``backends``: fastnet backend names
    (default numpy and numba, the unavailable ones skipped with their reason).
    """
    from fastnet.errors import InputError

    log = print if progress else (lambda *a: None)
    names = list(workloads or WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise InputError(f"unknown workload {unknown[0]!r}; choose from: {', '.join(WORKLOADS)}")
    usable, skipped, load_s = _available_backends(backends)
    for name, reason in skipped.items():
        log(f"skipping backend {name}: {reason}")
    warm_up = {"numba_backend_load_s": load_s["numba"]} if "numba" in usable else {}
    result = {"settings": {"repeats": repeats, "warmup": warmup, "pause_s": PAUSE_S,
                           "sample_s": sample_s, "dtype": "float32", "optimizer": "SGD"},
              "skipped_backends": skipped, "workloads": {}}
    for name in names:
        workload = WORKLOADS[name]
        log(f"{name}: {workload.description}")
        makers = _contenders(workload, usable, include_torch)
        timings = _bench_workload(workload, makers, repeats, warmup, sample_s, log)
        result["workloads"][name] = {"description": workload.description, "results": timings,
                                     "ratios": _ratios(timings)}
        if "numba" in timings:
            warm_up.setdefault("numba_first_call_s", {})[name] = timings["numba"]["first_call_s"]
    result["numba_warm_up"] = warm_up
    result["machine"] = machine_info()
    if out_dir is not None:
        from fastnet.benchmarking.report import save_json, save_plot

        save_json(result, out_dir)
        save_plot(result, out_dir)
    return result

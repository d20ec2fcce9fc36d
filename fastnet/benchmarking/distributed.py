"""``fastnet bench --distributed N``: training throughput of one process against N MPI ranks.

Both sides train the same global batch with ``DataParallel`` and SGD: one process using all
usable cores, then ``mpiexec -n N`` (started here as a child) with each rank on its share of
the cores (``fastnet.distributed.threads``).  Each side runs in a fresh child process, so
neither inherits the other's threads or warm caches.  Reported per workload: samples/s (median
over ``repeats`` samples of ``steps`` steps), the ratio N ranks / 1 process, and the share of a
step spent in the gradient allreduce (which includes waiting for the slowest rank).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fastnet.errors import InputError

DEFAULT_WORKLOADS = ("convnet_step", "mlp_step")
FILE_NAME = "distributed.json"


def find_mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise InputError("mpiexec was not found; pip install 'fastnet[mpi]' (mpi4py and the mpich wheel)")
    return found


def _child(ranks: int, spec: dict, timeout: float) -> list:
    here = str(Path(__file__).resolve().parents[2])  # the children import this same fastnet
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "fastnet.benchmarking.distributed", json.dumps({**spec, "ranks": ranks})]
    if ranks > 1:
        cmd = [find_mpiexec(), "-n", str(ranks), *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise InputError(f"the {ranks}-process benchmark took longer than {timeout:.0f} s; lower --repeats") from None
    if proc.returncode != 0:
        last = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["no output"]
        raise InputError(f"the {ranks}-process benchmark failed (exit {proc.returncode}): {last[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_distributed_bench(
    ranks: int, workloads=None, backend="numba", repeats=5, warmup=2, steps=5, out_dir=None, timeout=600.0
) -> dict:
    """Time each workload on 1 process and on ``ranks`` ranks; write ``out_dir/distributed.json``."""
    from fastnet.benchmarking.machine import machine_info
    from fastnet.benchmarking.workloads import WORKLOADS

    names = list(workloads or DEFAULT_WORKLOADS)
    for name in names:
        if name not in WORKLOADS or not WORKLOADS[name].train or WORKLOADS[name].busy:
            raise InputError(
                f"--distributed times training steps: choose from "
                f"{', '.join(n for n, w in WORKLOADS.items() if w.train and not w.busy)}"
            )
    if ranks < 2:
        raise InputError("--distributed needs at least 2 ranks to compare with one process")
    spec = {"workloads": names, "backend": backend, "repeats": repeats, "warmup": warmup, "steps": steps}
    one = _child(1, spec, timeout)
    many = _child(ranks, spec, timeout)
    result = {
        "kind": "distributed",
        "ranks": ranks,
        "backend": backend,
        "machine": machine_info(),
        "settings": spec,
        "workloads": {},
    }
    for name, single, parallel in zip(names, one, many, strict=True):
        result["workloads"][name] = {
            "description": WORKLOADS[name].description,
            "one_process": single,
            f"{ranks}_ranks": parallel,
            "speedup": parallel["samples_per_s"] / single["samples_per_s"],
        }
    if out_dir is not None:
        from fastnet.atomic import atomic_write

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write(Path(out_dir) / FILE_NAME, lambda f: f.write(json.dumps(result, indent=1)), binary=False)
    return result


def format_distributed(result: dict) -> str:
    n = result["ranks"]
    lines = [f"{'workload':<52}{'1 process':>12}{f'{n} ranks':>12}{'ratio':>8}{'comm share':>12}"]
    for entry in result["workloads"].values():
        one, many = entry["one_process"], entry[f"{n}_ranks"]
        lines.append(
            f"{entry['description']:<52}{one['samples_per_s']:>10,.0f}/s{many['samples_per_s']:>10,.0f}/s"
            f"{entry['speedup']:>7.2f}x{many['comm_share'] * 100:>11.1f}%"
        )
        lines.append(f"  threads: {one['threads']} in one process, {many['threads']} per rank")
    return "\n".join(lines)


def bench_command(args) -> int:
    """``fastnet bench --distributed N``: the numba backend where it loads, else numpy."""
    from fastnet.backends import unavailable_reason
    from fastnet.benchmarking.noise import oversubscribed_warning
    from fastnet.threads import usable_cores

    warning = oversubscribed_warning(args.distributed, usable_cores()[0])
    if warning:
        print(f"warning: {warning}")
    backend = (args.backends or ["numba" if unavailable_reason("numba") is None else "numpy"])[0]
    result = run_distributed_bench(
        args.distributed, args.workloads, backend, repeats=args.repeats, warmup=args.warmup, out_dir=args.out
    )
    print(format_distributed(result))
    print(f"results: {Path(args.out) / FILE_NAME}")
    return 0


# --- what each child process runs --------------------------------------------------------------------
def _time_workload(name, backend_name, comm, repeats, warmup, steps) -> dict:
    from fastnet.backends import get_backend
    from fastnet.benchmarking.workloads import LEARNING_RATE, WORKLOADS, make_data, make_fastnet_net
    from fastnet.distributed import DataParallel
    from fastnet.optim import SGD

    workload = WORKLOADS[name]
    backend = get_backend(backend_name)
    net = make_fastnet_net(workload, backend)
    x, t = (backend.asarray(a) for a in make_data(workload))
    dp = DataParallel(net, comm, seed=0)
    optimizer = SGD(lr=LEARNING_RATE)
    for _ in range(warmup):
        optimizer.update(net.params, dp.gradient(x, t))
    seconds, shares = [], []
    for _ in range(repeats):
        comm.barrier()
        backend.synchronize()
        dp.comm_seconds = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            optimizer.update(net.params, dp.gradient(x, t))
        backend.synchronize()
        took = time.perf_counter() - started
        seconds.append(comm.allreduce_scalar(took) / comm.size)
        shares.append(dp.allreduce_mean(dp.comm_seconds / took))
    median = statistics.median(seconds)
    return {
        "samples_per_s": workload.batch * steps / median,
        "median_step_s": median / steps,
        "comm_share": statistics.median(shares),
        "batch": workload.batch,
    }


def rank_main(spec: dict) -> int:
    from fastnet.distributed.faults import abort_on_error, join_job
    from fastnet.distributed.threads import limit_threads

    comm = join_job("mpi" if spec["ranks"] > 1 else "none")
    with abort_on_error(comm):
        threads = limit_threads(comm)
        results = [
            {
                **_time_workload(name, spec["backend"], comm, spec["repeats"], spec["warmup"], spec["steps"]),
                "threads": threads,
                "ranks": comm.size,
            }
            for name in spec["workloads"]
        ]
        if comm.is_root:
            print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(rank_main(json.loads(sys.argv[1])))

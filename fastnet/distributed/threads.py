"""Threads per rank: the ranks on a node share its cores instead of fighting over them.

Each rank gets (cores this process may use) / (ranks on this node) BLAS and numba threads, at
least one.  "May use" is the affinity mask and the cgroup CPU quota (a container limited to
2 CPUs on a 64-core host has 2), never ``os.cpu_count()``.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path


def cgroup_cpu_quota(root="/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, else v1 CFS quota), or None when unlimited."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """The cores this process may run on: affinity mask, capped by the cgroup quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def threads_per_rank(local_size: int, cores: int | None = None) -> int:
    """(cores) / (ranks on this node), at least one."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, int(local_size)))


def limit_threads(comm, threads: int | None = None) -> int:
    """Apply the per-rank thread count to BLAS/OpenMP (threadpoolctl) and numba; returns it.

    ``threads`` overrides the computed share (e.g. ``--threads``).
    """
    n = threads_per_rank(comm.local_size) if threads is None else max(1, int(threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:
        # Read by numba when it starts; a value the user set stays.
        os.environ.setdefault("NUMBA_NUM_THREADS", str(n))
    return n

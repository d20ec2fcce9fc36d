"""Threads per rank: the ranks on a node share its cores instead of fighting over them.

Each rank gets (cores this process may use) / (ranks on this node) BLAS and numba threads, at
least one.  "May use" is the affinity mask and the cgroup CPU quota (a container limited to
2 CPUs on a 64-core host has 2), never ``os.cpu_count()``.
"""
from __future__ import annotations

import os
import sys


def available_cores() -> int:
    """The cores this process may run on, as the thread policy counts them (affinity, cgroup quota)."""
    from fastnet.threads import usable_cores

    return usable_cores()[0]


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

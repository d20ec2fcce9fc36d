"""Threads per rank: the ranks on a node share its cores instead of fighting over them.

Each rank gets (cores this process may use) / (ranks on this node) BLAS and numba threads, at
least one.  "May use" is the affinity mask and the cgroup CPU quota (a container limited to
2 CPUs on a 64-core host has 2), never ``os.cpu_count()``.
"""

from __future__ import annotations


def available_cores() -> int:
    """The cores this process may run on, as the thread policy counts them (affinity, cgroup quota)."""
    from fastnet.threads import usable_cores

    return usable_cores()[0]


def threads_per_rank(local_size: int, cores: int | None = None) -> int:
    """(cores) / (ranks on this node), at least one."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, int(local_size)))


def rank_choice(comm, threads: int | None = None):
    """This rank's ``ThreadChoice``: its share of the node's cores, or ``threads`` (``--threads``)."""
    from fastnet.threads import ThreadChoice

    if threads is not None:
        n = max(1, int(threads))
        return ThreadChoice(n, n, "--threads")
    n = threads_per_rank(comm.local_size)
    return ThreadChoice(n, n, f"the node's cores shared by {comm.local_size} rank(s)")


def limit_threads(comm, threads: int | None = None) -> int:
    """Apply this rank's thread count (BLAS and the convolutions) for the rest of the process;
    returns it."""
    from fastnet.threads import set_process_choice

    return set_process_choice(rank_choice(comm, threads)).blas

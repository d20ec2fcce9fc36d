"""How many BLAS and numba threads a net's step gets.

Small matrix products run faster on one thread: waking a second BLAS thread costs more than it
saves, and beside other work on the machine (a browser, a CI runner, other ranks) OpenBLAS's
spinning threads make a TwoLayerNet step several times slower.  Large products use the cores
this process may use: the affinity mask and the cgroup CPU quota, not ``os.cpu_count()``.

Measured on a quiet 2-core Xeon (OpenBLAS 0.3.31, float32, best of 200): a 100x784 @ 784x50
product (TwoLayerNet, batch 100, 3.9 M multiply-adds) gains little from a second thread and
the whole step loses; from about 40 M multiply-adds (1000x784 @ 784x50, SimpleConvNet's
products, the wide MLP) two threads take 0.5-0.7 of one thread's time.  Hence
``LARGE_PRODUCT_MACS``: the largest matrix product of a forward pass decides.

The numba count is the number of threads the numba backend's convolutions share a batch among
(each share multiplies with a single-threaded BLAS); the kernels read it from the choice in
force (:func:`conv_threads`), a context this module keeps: a ``ThreadChoice`` is applied by
``using_threads`` for a block, or by ``set_process_choice`` for the rest of the process (a
rank of a distributed run).  The compiled numba kernels are serial, so numba's own thread pool
is never sized.  Where the convolutions take several threads, the BLAS keeps one even for large
dense products: OpenBLAS's threads spin for a while after each product, on the cores the
convolution threads need next.

Overrides, strongest first: ``--threads N`` (the ``threads`` argument), then the environment
(``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OMP_NUM_THREADS`` for the BLAS;
``NUMBA_NUM_THREADS`` for numba and the convolutions, else the BLAS number).  Outside
any choice the convolutions use :func:`default_conv_threads`: the environment, else the usable
cores.  Both overrides stop at ``THREADS_PER_CORE`` per usable core (:func:`most_threads`):
``--threads`` refuses more; a larger number in the environment (``OMP_NUM_THREADS=99999999999999999999``
would overflow the BLAS's C int) is lowered to it, and the header says so; a value that is not a
positive whole number (``abc``, ``-1``, ``0``, ``²``) is ignored.
"""

from __future__ import annotations

import functools
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

from fastnet.cgroups import cgroup_cpu_limit, parse_cfs_quota, parse_cpu_max  # noqa: F401  (read here; defined there)

LARGE_PRODUCT_MACS = 32 * 2**20
# Threads per usable core at most: more only wait for each other, and each OpenBLAS thread takes
# its own buffers (a thousand of them exhaust a 3 GB address space).
THREADS_PER_CORE = 4
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
NUMBA_ENV = "NUMBA_NUM_THREADS"


# --- the cores this process may use ---------------------------------------------------------------
def affinity_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cores() -> tuple[int, str]:
    """(cores, how they were found): the affinity mask, lowered by a cgroup quota (rounded up)."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_limit()
    how = f"affinity {cpus}"
    if quota is not None:
        how += f", cgroup quota {quota:g}"
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus, how


def most_threads() -> int:
    """The most threads worth running: ``THREADS_PER_CORE`` per usable core."""
    return THREADS_PER_CORE * usable_cores()[0]


# --- the choice --------------------------------------------------------------------------------------
def env_threads(names, environ=None):
    """(count, how it was set) from the first of ``names`` set to a positive whole number, lowered
    to :func:`most_threads` (the words say so); None when none is."""
    environ = os.environ if environ is None else environ
    for name in names:
        value = environ.get(name, "").strip()
        if value.isascii() and value.isdecimal() and int(value) > 0:  # isdigit would let '²' through
            count, most = int(value), most_threads()
            if count > most:
                return most, f"{name}={value} lowered to {most}, {THREADS_PER_CORE} per usable core"
            return count, f"{name}={count}"
    return None


@dataclass(frozen=True)
class ThreadChoice:
    blas: int
    numba: int
    why: str

    def describe(self) -> str:
        """For the run header and ``fastnet info``, e.g. 'threads: 1 BLAS, 1 numba/conv (small ...)'."""
        return f"threads: {self.blas} BLAS, {self.numba} numba/conv ({self.why})"


def choose_threads(largest_product_macs=None, threads=None, environ=None, conv_product_macs=None) -> ThreadChoice:
    """The thread counts for a workload whose largest matrix product has that many multiply-adds.

    ``threads`` (``--threads N``) wins, then the environment, then the policy.  Without a
    workload (``fastnet info``) the policy is described for large products.  ``conv_product_macs``:
    the largest product of convolutions that share their batch among their own threads (the
    numba backend's); it decides the numba count, and ``largest_product_macs`` only the BLAS's,
    which stays at one thread whenever the convolutions take several.
    """
    blas_env = env_threads(BLAS_ENV, environ)
    numba_env = env_threads((NUMBA_ENV,), environ)
    if threads is not None:
        return ThreadChoice(threads, threads, "--threads")
    if blas_env is not None:
        count, how = blas_env
        numba = numba_env[0] if numba_env else count
        return ThreadChoice(count, numba, how + (f", {numba_env[1]}" if numba_env else ""))
    cores, how = usable_cores()
    if largest_product_macs is None:
        why = (
            f"policy: 1 for small matrix products, {cores} for large, 1 beside convolutions on their own "
            f"threads; {_cores(cores)}: {how}"
        )
        return ThreadChoice(cores, numba_env[0] if numba_env else cores, why)
    count = _sized(largest_product_macs, cores)
    why = f"{_size_words(largest_product_macs)}"
    numba = count
    if conv_product_macs is not None:
        numba = _sized(conv_product_macs, cores)
        why = (
            f"{_size_words(largest_product_macs)} for BLAS; convolutions on their own threads: "
            f"{_size_words(conv_product_macs)}"
        )
        if numba > 1 and count > 1:
            # OpenBLAS's idle threads keep spinning for a while after each product, on the cores
            # the convolution threads need next: SimpleConvNet's step took 11.0 ms with two BLAS
            # threads for its Affine1 and 8.3 ms with one (2 cores, numba).
            count = 1
            why += "; BLAS on 1 thread beside them (its waiting threads would spin on their cores)"
    why += f"; {_cores(cores)}: {how}"
    if numba_env:
        why += f"; {numba_env[1]}"
    return ThreadChoice(count, numba_env[0] if numba_env else numba, why)


def _cores(count) -> str:
    return f"{count} usable core" + ("" if count == 1 else "s")


def _sized(macs, cores) -> int:
    return 1 if macs < LARGE_PRODUCT_MACS else cores


def _size_words(macs) -> str:
    size = "small" if macs < LARGE_PRODUCT_MACS else "large"
    return f"{size} matrix products (largest product {macs / 1e6:.1f} M multiply-adds)"


@functools.cache
def default_conv_threads() -> int:
    """Convolution threads outside ``using_threads``: the environment's choice, else the usable cores
    (found once per process: the cgroup files are read on every lookup)."""
    return choose_threads().numba


# --- applying it -------------------------------------------------------------------------------------
_chosen: list = []  # the choices of the using_threads blocks, innermost last
_process_choice: list = []  # the choice set for the whole process, if any


def active_choice() -> ThreadChoice | None:
    """The choice of the innermost ``using_threads`` block, else the process's, else None."""
    return (_chosen or _process_choice or [None])[-1]


def conv_threads() -> int:
    """How many threads the numba backend's convolutions share a batch among, now."""
    choice = active_choice()
    return choice.numba if choice is not None else default_conv_threads()


@contextmanager
def using_threads(choice: ThreadChoice):
    """Run the block with the chosen BLAS and convolution thread counts; restores them after."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=choice.blas, user_api="blas"):
        _chosen.append(choice)
        try:
            yield choice
        finally:
            _chosen.pop()


def set_process_choice(choice: ThreadChoice) -> ThreadChoice:
    """Apply ``choice`` for the rest of the process (each rank of a job: its share of the node)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=choice.blas)
    _process_choice[:] = [choice]
    return choice

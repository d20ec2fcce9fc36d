"""The C heap keeps the memory a step frees, for the next step.

A training step allocates and frees the same large arrays every time: a convolution's columns,
a pooling layer's gradient, megabytes each.  glibc's malloc serves such blocks with fresh
mappings and hands memory freed at the top of its heap back to the system, so every step touches
new pages: each one is a page fault, and the kernel zeroes it first.  On a 2-core VM a
SimpleConvNet step at batch 100 took 1,755 page faults and 10 ms of system time of its 25 ms;
DeepConvNet's, 921 faults and 8 ms of its 66 ms.  With the two settings below the same steps
took 0.2 and 6 faults, and 15 and 57 ms.

- ``M_MMAP_THRESHOLD`` 32 MiB, glibc's largest on 64-bit: blocks up to that size come from the
  heap, where freed ones are reused, instead of a mapping of their own.
- ``M_TRIM_THRESHOLD`` 512 MiB: free memory at the top of the heap is kept up to that much
  rather than given back after every step.

The peak memory of a run does not change; memory freed after it stays with the process (its RSS)
for reuse, as a caching allocator keeps it.  The CPU backends apply this once per process when
they load; ``FASTNET_KEEP_FREED_MEMORY=0`` leaves malloc as it was.  Elsewhere than glibc (musl,
macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 512 * 2**20
OPT_OUT = "FASTNET_KEEP_FREED_MEMORY"

_state: list[str] = []  # what keep_freed_memory found, once per process


def keep_freed_memory() -> str:
    """Apply the settings above (once per process); returns what was done, in words."""
    if not _state:
        _state.append(_apply())
    return _state[0]


def _apply() -> str:
    if os.environ.get(OPT_OUT, "").strip() == "0":
        return f"malloc as it is ({OPT_OUT}=0)"
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return "malloc as it is (no mallopt in this C library)"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 0 for a value it refuses.  The mmap threshold first: a trim threshold set
    # alone stops glibc raising its mmap threshold by itself, which made the step slower still.
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES):
        return "freed memory kept for reuse (glibc malloc: blocks up to 32 MiB from the heap, 512 MiB kept)"
    return "malloc as it is (it refused the settings)"

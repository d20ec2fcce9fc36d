"""The CPU backends keep the memory a step frees for the next step (``fastnet.heap``), so a step
does not pay a page fault for every page of its big arrays, every time."""

import os
import platform
import subprocess
import sys

import pytest

# A step's pattern: arrays of several megabytes made, two kept alive at a time, all freed by its
# end; 52 MiB touched per step, 13,312 pages.
STEP = """
import os, resource, sys
import numpy
from fastnet.backends import get_backend
get_backend("numpy")  # loading a CPU backend applies the setting
from fastnet.heap import keep_freed_memory
print(keep_freed_memory())
def step():
    kept = []
    for mib in (7, 2, 7, 13, 3, 20):
        a = numpy.empty(mib << 20, dtype=numpy.uint8)
        a[::4096] = 1  # one write per page
        kept.append(a)
        if len(kept) > 2:
            kept.pop(0)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def faults_per_step(keep):
    env = dict(os.environ, FASTNET_KEEP_FREED_MEMORY="1" if keep else "0")
    done = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    said, faults = done.stdout.splitlines()
    return said, float(faults)


GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc malloc's; elsewhere nothing is done")
def test_a_step_reuses_the_memory_the_last_step_freed():
    said, faults = faults_per_step(keep=True)
    assert said.startswith("freed memory kept for reuse")
    assert faults < 100, f"{faults:.0f} page faults per step of 13,312 pages"


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc malloc's; elsewhere nothing is done")
def test_fastnet_keep_freed_memory_0_leaves_malloc_as_it_is():
    said, faults = faults_per_step(keep=False)
    assert said == "malloc as it is (FASTNET_KEEP_FREED_MEMORY=0)"
    # glibc's own policy: every page again, on this pattern (a newer glibc may learn better).
    print(f"page faults per step without the setting: {faults:.0f}")

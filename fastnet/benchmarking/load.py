"""Other work on the machine: busy processes for the contention case.

Each child spins on the CPU until it is killed, and stops on its own if this process dies
(it checks its parent now and then), so a crashed benchmark leaves nothing spinning.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

SPIN = """
import os
parent = os.getppid()
n = 0
while True:
    n += 1
    if n % 2000000 == 0 and os.getppid() != parent:
        break
"""


@contextmanager
def busy_processes(count: int):
    """Run the block with ``count`` processes spinning on the cores; yields their pids."""
    children = []
    try:
        for _ in range(count):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", SPIN],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        if children:
            time.sleep(0.3)  # let them start spinning before anything is timed
        yield [child.pid for child in children]
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()

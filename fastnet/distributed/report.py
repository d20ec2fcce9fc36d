"""What ``fastnet info`` says about the communicators, without ever hanging.

The check runs in a child process with a deadline: starting MPI outside ``mpiexec`` (a one-rank
"singleton" job) is quick with MPICH but may wait on a launcher daemon elsewhere, and an info
command must not.  NCCL itself is not started (that needs an ``mpiexec`` job with one GPU per
rank): only whether CuPy and its NCCL binding load is checked, and the line says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEADLINE_SECONDS = 20

_CHILD = """
import json
from fastnet.errors import FastnetError
found = {}
try:
    from fastnet.distributed.mpi import import_mpi
    MPI = import_mpi()
    found["mpi"] = [True, " ".join(MPI.Get_library_version().splitlines()[0].split())]
except FastnetError as exc:
    found["mpi"] = [False, str(exc)]
try:
    from fastnet.distributed.nccl import import_cupy_nccl
    import_cupy_nccl()
    found["nccl"] = [True, "CuPy and NCCL load; not started here (it needs mpiexec and one GPU per rank)"]
except FastnetError as exc:
    found["nccl"] = [False, str(exc)]
print(json.dumps(found))
"""


def check_communicators(timeout=DEADLINE_SECONDS) -> dict:
    """``{"mpi": (usable, text), "nccl": (usable, text)}``; text is the reason when not usable."""
    try:
        here = str(Path(__file__).resolve().parents[2])  # the child imports this same fastnet
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=timeout, env=env)
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        return {name: (bool(ok), str(text)) for name, (ok, text) in found.items()}
    except subprocess.TimeoutExpired:
        why = f"not checked: starting MPI took longer than {timeout} s"
    except (ValueError, IndexError, OSError) as exc:
        why = f"not checked: the check failed ({type(exc).__name__})"
    return {"mpi": (False, why), "nccl": (False, why)}


def communicator_lines(timeout=DEADLINE_SECONDS) -> list[str]:
    """The ``communicators:`` block of ``fastnet info``."""
    lines = ["communicators (fastnet train --distributed):", "  none   available (one process)"]
    for name, (ok, text) in check_communicators(timeout).items():
        lines.append(f"  {name:<6} " + (f"available: {text}" if ok else f"unavailable: {text}"))
    return lines

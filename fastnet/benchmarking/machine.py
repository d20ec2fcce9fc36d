"""What the numbers were measured on: CPUs, library versions, the BLAS and its kernel."""

from __future__ import annotations

import importlib
import os
import platform
from datetime import datetime, timezone

from fastnet.blas import blas_info
from fastnet.threads import usable_cores


def _version(module):
    try:
        return importlib.import_module(module).__version__
    except Exception:  # absent or broken: record that, never fail the benchmark over it
        return None


def cpu_model() -> str:
    """The CPU's marketing name where the system says it (Linux's /proc/cpuinfo), else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    info = {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "torch": _version("torch"),
        "env": {
            k: os.environ.get(k)
            for k in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "FASTNET_NUMBA_CACHE",
            )
        },
    }
    info["usable_cores"], info["usable_cores_from"] = usable_cores()  # affinity and cgroup quota
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    info["blas"] = blas_info()  # after torch: its BLAS shows up too once loaded
    return info

"""Memory this process may still take on the host: what the system has available, what its
cgroups allow (a container's ``--memory``: ``/proc/meminfo`` shows the host's RAM there) and what
its own limits (``ulimit -v`` / ``-d``) allow; the least of them. The data readers and the batch
check both ask before their big allocations.
"""

from __future__ import annotations

import os

from fastnet.cgroups import cgroup_memory_headroom


def available_host_bytes() -> int | None:
    """The least of the known limits, in bytes (None when none can be read)."""
    known = [c for c in (_meminfo_available(), cgroup_memory_headroom(), _rlimit_headroom()) if c is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _rlimit_headroom() -> int | None:
    """Bytes left under RLIMIT_AS/RLIMIT_DATA, from the process's current sizes (Linux)."""
    try:
        import resource

        with open("/proc/self/status") as f:
            sizes = {
                k: int(v.split()[0]) * 1024
                for k, _, v in (line.partition(":") for line in f)
                if k in ("VmSize", "VmData")
            }
    except (ImportError, OSError, ValueError, IndexError):
        return None
    left = []
    for limit, used in ((resource.RLIMIT_AS, "VmSize"), (getattr(resource, "RLIMIT_DATA", None), "VmData")):
        if limit is None or used not in sizes:
            continue
        soft, _hard = resource.getrlimit(limit)
        if soft != resource.RLIM_INFINITY:
            left.append(max(soft - sizes[used], 0))
    return min(left) if left else None

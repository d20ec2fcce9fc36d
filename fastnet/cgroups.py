"""What this process's control groups allow it: CPUs (the thread policy) and memory (the batch
check). A container started with ``--cpus`` or ``--memory`` sees the host's cores and RAM in
``os.cpu_count()`` and ``/proc/meminfo``; its cgroup says what it may really use.

Both cgroup versions are read, on this process's group and every ancestor up to the mount point
(limits nest: the tightest wins).
"""

from __future__ import annotations

from pathlib import Path

PROC_CGROUP = "/proc/self/cgroup"
ROOT = "/sys/fs/cgroup"
# cgroup v1 writes "no limit" as the largest page-aligned 64-bit number, not as "max".
_V1_UNLIMITED = 2**60


def parse_cpu_max(path) -> float | None:
    """cgroup v2 ``cpu.max`` ("max 100000" or "150000 100000"): CPUs allowed, None if unlimited."""
    fields = Path(path).read_text().split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return int(fields[0]) / period if period > 0 else None


def parse_cfs_quota(quota_path, period_path) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``: CPUs allowed, None if unlimited (-1)."""
    quota = int(Path(quota_path).read_text().strip())
    period = int(Path(period_path).read_text().strip())
    return quota / period if quota > 0 and period > 0 else None


def parse_memory_headroom(limit_path, usage_path) -> int | None:
    """Bytes a cgroup may still take: its limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``)
    less what it uses now (``memory.current`` / ``memory.usage_in_bytes``); None if unlimited."""
    text = Path(limit_path).read_text().strip()
    if text == "max":
        return None
    limit = int(text)
    if limit >= _V1_UNLIMITED:
        return None
    try:
        used = int(Path(usage_path).read_text().strip())
    except (OSError, ValueError):
        used = 0  # the limit alone still bounds what a batch may take
    return max(limit - used, 0)


def cgroup_cpu_limit(proc_cgroup=PROC_CGROUP, root=ROOT) -> float | None:
    """The tightest CPU quota on this process's cgroup and its ancestors (v2 and v1), or None."""
    return _tightest(
        proc_cgroup,
        root,
        "cpu",
        lambda d: parse_cpu_max(d / "cpu.max"),
        ("cpu", "cpu,cpuacct", "cpuacct,cpu"),
        lambda d: parse_cfs_quota(d / "cpu.cfs_quota_us", d / "cpu.cfs_period_us"),
    )


def cgroup_memory_headroom(proc_cgroup=PROC_CGROUP, root=ROOT) -> int | None:
    """The least memory any of this process's cgroups still allows (v2 and v1), or None."""
    return _tightest(
        proc_cgroup,
        root,
        "memory",
        lambda d: parse_memory_headroom(d / "memory.max", d / "memory.current"),
        ("memory",),
        lambda d: parse_memory_headroom(d / "memory.limit_in_bytes", d / "memory.usage_in_bytes"),
    )


def _tightest(proc_cgroup, root, controller, read_v2, v1_mounts, read_v1):
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        if controllers == "":  # v2: one unified hierarchy, mounted at root (or root/unified on hybrids)
            mount = root if (root / "cgroup.controllers").exists() else root / "unified"
            limits += [_read(read_v2, d) for d in _ancestors(mount, relative)]
        elif controller in controllers.split(","):
            for mount in v1_mounts:
                limits += [_read(read_v1, d) for d in _ancestors(root / mount, relative)]
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _ancestors(root: Path, relative: str):
    """The cgroup folder of this process and its parents up to the mount point (limits nest)."""
    folder = root / relative.strip("/")
    while True:
        yield folder
        if folder == root:
            return
        folder = folder.parent


def _read(parse, folder):
    try:
        return parse(folder)
    except (OSError, ValueError, IndexError):  # absent or unreadable: no limit known there
        return None

"""When a benchmark's figures cannot be trusted: repeats that disagree, or a machine already busy.

A ratio such as "0.01x vs torch" from a noisy sample is worse than none, so the run says so
beside its table (and in its JSON) instead of letting the figure stand alone.
"""

from __future__ import annotations

import os

# Repeats whose slowest is more than this times their fastest: the median is uncertain.
WIDE_SPREAD = 1.5
# Other work on the machine: a 1-minute load average at this fraction of the usable cores.
BUSY_LOAD = 0.5


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # Windows has no load average
        return None


def busy_warning(load: float | None, cores: int) -> str | None:
    """A line when the machine was already busy before timing started."""
    if load is None or load < BUSY_LOAD * cores:
        return None
    return (
        f"the machine was busy before timing (load average {load:.1f} on {cores} usable "
        f"core{'s' if cores != 1 else ''}): rerun on a quiet machine before trusting the ratios"
    )


def spread_warnings(result: dict) -> list[str]:
    """One line per contender whose repeats spread wider than WIDE_SPREAD (max/min)."""
    lines = []
    for name, entry in result["workloads"].items():
        if entry.get("busy_processes"):
            continue  # the contention case is noisy by design: its spread is part of the figure
        for contender, timing in entry["results"].items():
            spread = timing["max_s"] / timing["min_s"] if timing["min_s"] > 0 else float("inf")
            if spread > WIDE_SPREAD:
                lines.append(
                    f"{name}, {contender}: repeats spread {spread:.1f}x (slowest/fastest), so its "
                    f"ratios are uncertain; rerun on a quiet machine or with more --repeats"
                )
    return lines


def oversubscribed_warning(ranks: int, cores: int) -> str | None:
    if ranks <= cores:
        return None
    return (
        f"{ranks} ranks on {cores} usable core{'s' if cores != 1 else ''}: the ranks take turns on "
        f"the cores, so samples/s measures the oversubscription, not data parallelism"
    )

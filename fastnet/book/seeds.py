"""Book scripts seed numpy's global generator (``np.random.seed``); fastnet draws from its own
seeded generators. A missing seed is therefore drawn from the global one: seeding it repeats the
run, and leaving it unseeded gives a fresh run, as in the book."""

from __future__ import annotations

import numpy


def seed_or_global(seed: int | None) -> int:
    """``seed`` itself, or a seed drawn from numpy's global generator when it is None."""
    if seed is not None:
        return seed
    return int(numpy.random.randint(0, 2**32, dtype=numpy.uint64))

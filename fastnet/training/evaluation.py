"""The seed of each epoch's batches; a whole set's evaluation is ``fastnet.evaluation``."""

from __future__ import annotations

import numpy

from fastnet.evaluation import evaluate

__all__ = ["epoch_seed", "evaluate"]


def epoch_seed(seed: int, epoch: int) -> int:
    """Each epoch's permutation comes from (seed, epoch): resuming needs no generator state."""
    return int(numpy.random.SeedSequence([seed, epoch]).generate_state(1)[0])

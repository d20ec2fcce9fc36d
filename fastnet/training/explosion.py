"""When a finite loss means the run has blown up.

A logged mean loss (an interval's or an epoch's) above ``EXPLODED`` times the untrained net's
loss stops the run like a NaN: the untrained loss is the first minibatch's, and at least chance
level, ln(classes).  The classic recipes never log more than their first interval (MNIST:
2.26, 2.11 and 1.41 for TwoLayerNet, DeepConvNet and SimpleConvNet, against a limit of 23).
"""

import math

EXPLODED = 10.0


def explosion_limit(start_loss, classes: int) -> float:
    chance = math.log(max(int(classes or 2), 2))
    start = start_loss if isinstance(start_loss, float) and math.isfinite(start_loss) else 0.0
    return EXPLODED * max(start, chance)


def loss_problem(loss: float, limit: float):
    """What to report: a non-finite loss as it is, a finite one with the limit it passed."""
    if not math.isfinite(loss):
        return loss
    return f"mean loss exploded to {loss:.4g} (over {EXPLODED:g}x the untrained net's {limit / EXPLODED:.4g})"

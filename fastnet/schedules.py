"""Learning-rate schedules: ``constant``, ``step`` and ``cosine``, each with a linear warm-up.

A schedule is a pure function of the iteration (the number of updates already made), so a
resumed run gets exactly the same rates from the optimizer's restored ``iter`` alone; its
``to_dict()`` is all a checkpoint needs to rebuild it.  Use it by setting the rate before each
update::

    schedule.apply(optimizer)          # optimizer.lr = schedule.lr_at(optimizer.iter)
    optimizer.update(params, grads)

Warm-up rises linearly over the first ``warmup`` updates (``base_lr * (i + 1) / warmup``, never
zero); the schedule proper then runs over the remaining iterations:

- ``constant``: ``base_lr``;
- ``step``: ``base_lr * gamma ** (k // step_size)`` after ``k`` post-warm-up updates;
- ``cosine``: from ``base_lr`` down to ``min_lr`` along half a cosine over ``total - warmup``
  updates, then ``min_lr``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

from fastnet.errors import InputError
from fastnet.optim import Optimizer, check_hyperparameter

SCHEDULE_NAMES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``constant``, ``step`` (decay by ``gamma`` every ``step_size``
    updates) or ``cosine`` (down to ``min_lr`` at ``total``), after ``warmup`` updates rising
    linearly to ``base_lr``.  Made by :func:`make_schedule`; saved in checkpoints as
    :meth:`to_dict`.

    Raises
    ------
    InputError
        When a setting is out of range (checked on creation).
    """

    name: str
    base_lr: float
    total: int  # updates in the whole run (cosine reaches min_lr there)
    warmup: int = 0
    step_size: int = 0  # step: updates between decays (0: a third of the post-warm-up run)
    gamma: float = 0.1  # step: factor per decay
    min_lr: float = 0.0  # cosine: the final rate

    def __post_init__(self):
        if self.name not in SCHEDULE_NAMES:
            raise InputError(
                f"unknown learning-rate schedule {self.name!r}; choose one of: {', '.join(SCHEDULE_NAMES)}"
            )
        check_hyperparameter("base learning rate", self.base_lr, low_open=True)
        _check_count("total iterations", self.total, least=1)
        _check_count("warm-up iterations", self.warmup)
        _check_count("step size", self.step_size)
        check_hyperparameter("gamma", self.gamma, low_open=True, high=1.0, high_open=False)
        check_hyperparameter("min_lr", self.min_lr, high=self.base_lr, high_open=False)
        if self.name == "cosine" and self.warmup >= self.total:
            raise InputError(
                f"the warm-up ({self.warmup} iterations) must be shorter than the run "
                f"({self.total} iterations) for a cosine schedule"
            )

    def lr_at(self, iteration: int) -> float:
        """The rate for the update that follows ``iteration`` completed updates."""
        _check_count("iteration", iteration)
        if iteration < self.warmup:
            return self.base_lr * (iteration + 1) / self.warmup
        k = iteration - self.warmup
        if self.name == "step":
            return self.base_lr * self.gamma ** (k // self._step_size())
        if self.name == "cosine":
            span = self.total - self.warmup
            progress = min(k, span) / span
            return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.base_lr

    def describe(self, steps_per_epoch: int) -> str:
        """In words for a run's header, e.g. 'cosine schedule from 0.1 to 0 over 17 epochs,
        after 1 epoch of linear warm-up'."""
        from fastnet.words import counted

        def epochs(updates):  # whole epochs as epochs, anything else as updates
            whole, part = divmod(updates, steps_per_epoch)
            return counted(updates, "update") if part else counted(whole, "epoch")

        shape = {
            "constant": f"constant schedule at {self.base_lr:g}",
            "step": f"step schedule from {self.base_lr:g}, x{self.gamma:g} every {epochs(self._step_size())}",
            "cosine": f"cosine schedule from {self.base_lr:g} to {self.min_lr:g}",
        }[self.name]
        warmup = f", after {epochs(self.warmup)} of linear warm-up" if self.warmup else ""
        return f"{shape} over {epochs(self.total)}{warmup}"

    def _step_size(self) -> int:
        return self.step_size or max(1, (self.total - self.warmup) // 3)

    def apply(self, optimizer: Optimizer) -> float:
        """Set ``optimizer.lr`` for its next update; returns the rate."""
        optimizer.lr = self.lr_at(optimizer.iter)
        return optimizer.lr

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict, for a checkpoint; :meth:`from_dict` reads it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        """The schedule :meth:`to_dict` described.

        Raises
        ------
        InputError
            When ``data`` is not a dict, names an unknown setting or holds one out of range.
        """
        if not isinstance(data, dict):
            raise InputError(f"a learning-rate schedule must be a dict, not {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"unknown learning-rate schedule setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def make_schedule(
    name: str,
    base_lr: float,
    epochs: int,
    iterations_per_epoch: int,
    warmup_epochs: float = 0.0,
    step_epochs: int = 0,
    gamma: float = 0.1,
    min_lr: float = 0.0,
) -> Schedule:
    """A schedule in the units a user thinks in (epochs), converted to iterations.

    Parameters
    ----------
    name : str
        ``"constant"``, ``"step"`` or ``"cosine"``.
    base_lr : float
        The rate after the warm-up (and the start of the decay).
    epochs, iterations_per_epoch : int
        The run's length: the schedule covers ``epochs * iterations_per_epoch`` updates.
    warmup_epochs : float
        A linear warm-up over this many epochs (at most the run; shorter for cosine).
    step_epochs, gamma : int, float
        ``step``: the rate is multiplied by ``gamma`` every ``step_epochs`` epochs (0: a third
        of the run after the warm-up).
    min_lr : float
        ``cosine``: the final rate.

    Returns
    -------
    Schedule
        Call ``schedule.apply(optimizer)`` before each update.

    Raises
    ------
    InputError
        Naming the setting that is out of range.

    Examples
    --------
    >>> s = make_schedule("cosine", 0.1, epochs=10, iterations_per_epoch=100, warmup_epochs=1)
    >>> s.lr_at(0), s.lr_at(99), round(s.lr_at(550), 4), s.lr_at(1000)
    (0.001, 0.1, 0.05, 0.0)
    """
    _check_count("epochs", epochs, least=1)
    _check_count("iterations per epoch", iterations_per_epoch, least=1)
    # Checked in epochs, as given: converted first, a huge warm-up became a 300-digit iteration count.
    warmup_epochs = check_hyperparameter(
        "warm-up epochs (up to the run's epochs)", warmup_epochs, high=epochs, high_open=name == "cosine"
    )
    _check_count("step epochs", step_epochs)
    return Schedule(
        name,
        base_lr,
        total=epochs * iterations_per_epoch,
        warmup=round(warmup_epochs * iterations_per_epoch),
        step_size=step_epochs * iterations_per_epoch,
        gamma=gamma,
        min_lr=min_lr,
    )


def _check_count(what, value, least=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise InputError(f"{what} must be an integer >= {least}; got {value!r}")
    return int(value)

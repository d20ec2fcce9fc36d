"""What the training loop calls at its named moments, and the state each piece keeps.

An extension overrides only the moments it needs; the loop calls every extension, in the
order they were given, at each moment:

- ``start(trainer)``: once, when ``fit`` begins (also when a resumed run begins);
- ``after_step(trainer)``: after every update; ``trainer.interval_mean`` is the mean loss of
  the logging interval that this step closed (None between);
- ``end_epoch(trainer)``: after the end-of-epoch evaluation; ``trainer.epoch`` counts the
  finished epoch and ``trainer.observation`` holds its results;
- ``stop(trainer, reason)``: once, when the run ends: ``"complete"``, ``"signal"`` (a
  SIGINT/SIGTERM: save what must survive) or ``"error"`` (only release what is held).

``state()`` is saved in every checkpoint's ``progress`` (JSON values under the extension's own
keys) and ``load_state(trainer, progress, source)`` restores it on ``--resume``.  An extension
that returns True from ``should_stop(trainer)`` ends the run after the current epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastnet.annotations import PathLike

if TYPE_CHECKING:
    from fastnet.training.trainer import Trainer


class Extension:
    """The base of what the loop calls at its moments: each method does nothing until overridden.

    Examples
    --------
    >>> class CountSteps(Extension):
    ...     def __init__(self):
    ...         self.steps = 0
    ...
    ...     def after_step(self, trainer):
    ...         self.steps += 1
    ...
    ...     def state(self):
    ...         return {"counted_steps": self.steps}
    """

    def start(self, trainer: Trainer) -> None:
        """Once, when ``fit`` begins (also when a resumed run begins)."""

    def after_step(self, trainer: Trainer) -> None:
        """After every update; ``trainer.interval_mean`` is the mean loss of the logging
        interval this step closed (None between)."""

    def end_epoch(self, trainer: Trainer) -> None:
        """After the end-of-epoch evaluation; ``trainer.observation`` holds its results."""

    def stop(self, trainer: Trainer, reason: str) -> None:
        """Once, when the run ends; ``reason`` is ``"complete"``, ``"signal"`` or ``"error"``."""

    def should_stop(self, trainer: Trainer) -> bool:
        """True ends the run after the current epoch (early stopping)."""
        return False

    def state(self) -> dict[str, Any]:
        """JSON values, under the extension's own keys, for the checkpoint's ``progress``."""
        return {}

    def load_state(self, trainer: Trainer, progress: dict[str, Any], source: PathLike | None = None) -> None:
        """Restore what :meth:`state` saved, from a checkpoint's ``progress`` (read from ``source``)."""


MOMENTS = ("start", "after_step", "end_epoch", "stop")


def called_at(moment: str, function: Callable[[Trainer], object]) -> Extension:
    """An extension that calls ``function(trainer)`` at ``moment`` (one of ``MOMENTS`` but
    ``stop``): ``trainer.extend(called_at("end_epoch", lambda t: print(t.epoch)))``.

    Raises
    ------
    InputError
        For an unknown moment.

    Examples
    --------
    >>> seen = []
    >>> extension = called_at("end_epoch", lambda trainer: seen.append("epoch"))
    >>> extension.end_epoch(None)
    >>> seen
    ['epoch']
    """
    if moment not in MOMENTS[:-1]:
        from fastnet.errors import InputError

        raise InputError(f"unknown moment {moment!r}; choose one of: {', '.join(MOMENTS[:-1])}")
    extension = Extension()
    setattr(extension, moment, function)
    return extension

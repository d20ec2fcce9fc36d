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


class Extension:
    def start(self, trainer):
        pass

    def after_step(self, trainer):
        pass

    def end_epoch(self, trainer):
        pass

    def stop(self, trainer, reason: str):
        pass

    def should_stop(self, trainer) -> bool:
        return False

    def state(self) -> dict:
        return {}

    def load_state(self, trainer, progress: dict, source=None):
        pass


MOMENTS = ("start", "after_step", "end_epoch", "stop")


def called_at(moment: str, function) -> Extension:
    """An extension that calls ``function(trainer)`` at ``moment`` (one of ``MOMENTS`` but
    ``stop``): ``trainer.extend(called_at("end_epoch", lambda t: print(t.epoch)))``."""
    if moment not in MOMENTS[:-1]:
        from fastnet.errors import InputError

        raise InputError(f"unknown moment {moment!r}; choose one of: {', '.join(MOMENTS[:-1])}")
    extension = Extension()
    setattr(extension, moment, function)
    return extension

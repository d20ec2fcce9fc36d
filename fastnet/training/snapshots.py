"""Checkpoints of a run: ``checkpoint.npz`` after every epoch and when a signal stops the run.

A net holding non-finite values is never saved (it would not load): the save stops the run
as diverged instead, and the last good checkpoint stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from fastnet.training.checkpoint import save_checkpoint
from fastnet.training.extension import Extension
from fastnet.training.failures import diverged

CHECKPOINT = "checkpoint.npz"


def write_snapshot(trainer, path, **marks):
    """Save the run's state to ``path`` (``marks`` go into its progress, e.g. kept_as="best")."""
    xp = trainer.backend.xp
    for key, value in trainer.net.state_arrays().items():
        if not bool(xp.isfinite(value).all()):
            diverged(trainer, f"{key} holds non-finite values", where=trainer.position())
    save_checkpoint(
        path, trainer.net, trainer.optimizer, {**trainer.progress(), **marks}, trainer.config, trainer.history.to_dict()
    )
    return Path(path)


class Checkpoints(Extension):
    def __init__(self, out_dir):
        self.path = Path(out_dir) / CHECKPOINT

    def end_epoch(self, trainer):
        self.save(trainer)

    def stop(self, trainer, reason):
        if reason == "signal":
            trainer.stopped_checkpoint = self.save(trainer)

    def save(self, trainer):
        write_snapshot(trainer, self.path)
        trainer.last_good_checkpoint, trainer.last_good_where = self.path, trainer.position()
        return self.path

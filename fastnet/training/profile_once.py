"""``fastnet train --profile``: the per-layer profile of a training step, printed once, after the
first epoch this run finishes, on copies of the net and optimizer with one training batch."""

from __future__ import annotations

from fastnet.training.extension import Extension


class ProfileOnce(Extension):
    def __init__(self, say=print):
        self.say = say
        self.done = False

    def end_epoch(self, trainer):
        from fastnet.profiling.step import format_profile, profile_copy

        if self.done:
            return
        self.done = True
        rows = slice(0, trainer.batch_size)
        result = profile_copy(trainer.net, trainer.optimizer, trainer.x_train[rows], trainer.t_train[rows])
        self.say(f"profile of a training step after epoch {trainer.epoch}:")
        self.say(format_profile(result))

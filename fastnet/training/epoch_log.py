"""One line per epoch: its losses and accuracies, time and rate (after its files are saved)."""

from __future__ import annotations

from fastnet.training.extension import Extension


class EpochLog(Extension):
    def __init__(self, say):
        self.say = say

    def end_epoch(self, trainer):
        o = trainer.observation
        line = f"epoch {trainer.epoch}/{trainer.epochs}: train loss {o['train_loss']:.4f} acc {o['train_acc']:.4f}"
        if o["val_acc"] is not None:
            line += f", val loss {o['val_loss']:.4f} acc {o['val_acc']:.4f}" + (" (best)" if o.get("improved") else "")
        if o["test_acc"] is not None:
            line += f", test loss {o['test_loss']:.4f} acc {o['test_acc']:.4f}"
        self.say(line + f" ({o['epoch_seconds']:.1f} s, {o['samples_per_second']:,.0f} samples/s)")

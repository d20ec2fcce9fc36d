"""The progress bar of an epoch (tqdm): on a terminal only; the epoch lines come regardless."""

from __future__ import annotations

import time
from typing import Any

from fastnet.training.extension import Extension


class ProgressBar(Extension):
    bar: Any  # a tqdm bar while an epoch runs, else None

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.bar = None

    def after_step(self, trainer):
        if self.bar is None:
            self._open(trainer)
        self.bar.update(1)
        if trainer.interval_mean is not None:
            steps = trainer.step - self.first_step
            rate = steps * trainer.batch_size / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix(loss=f"{trainer.interval_mean:.4f}", samples_s=f"{rate:,.0f}")

    def _open(self, trainer):
        from tqdm.auto import tqdm

        # disable=None: a bar on a terminal, none in a log file.
        self.bar = tqdm(
            total=trainer.steps_per_epoch,
            initial=trainer.step - 1,
            unit="batch",
            leave=False,
            desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}",
            disable=None if self.enabled else True,
            dynamic_ncols=True,
        )
        self.first_step, self.started = trainer.step - 1, time.perf_counter()

    def end_epoch(self, trainer):
        self._close()

    def stop(self, trainer, reason):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

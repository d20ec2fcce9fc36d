"""The run's history on disk: ``history.json`` after every epoch (and when a signal stops the
run), ``curves.png`` (titled) when the run completes."""

from __future__ import annotations

from pathlib import Path

from fastnet.training.extension import Extension


class HistoryFiles(Extension):
    def __init__(self, out_dir, title=""):
        self.out_dir = Path(out_dir)
        self.title = title

    def end_epoch(self, trainer):
        self.save(trainer)

    def stop(self, trainer, reason):
        if reason == "signal":
            self.save(trainer)
        elif reason == "complete":
            from fastnet.training.plot import plot_history

            plot_history(trainer.history, self.out_dir / "curves.png", title=self.title)

    def save(self, trainer):
        trainer.history.save(self.out_dir / "history.json", config=trainer.config, backend=trainer.backend.name)

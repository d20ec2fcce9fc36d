"""Model selection on a validation split: the best epoch, its checkpoint, and early stopping.

The validation images are held out of the training set (``fastnet.datasets.split``: seeded and
stratified); the net never trains on them, and the test set is only reported, never used to
choose.  An epoch is better than another when its validation accuracy is higher (equal: when
its validation loss is lower; ``fastnet.best_epoch``).  ``best.npz`` is a full checkpoint of the best epoch so far,
written atomically beside ``checkpoint.npz`` and marked ``progress.kept_as = "best"``.  The
selection's state travels in every checkpoint, so early stopping resumes exactly.
"""

from __future__ import annotations

import math

import numpy

from fastnet.best_epoch import best_epoch_index, selection_key
from fastnet.datasets.split import validation_split
from fastnet.errors import CheckpointError
from fastnet.training.extension import Extension
from fastnet.words import counted

BEST = "best.npz"


def split_off_validation(x, t, size, seed):
    """``(x_train, t_train, x_val, t_val)``: ``size`` images (count or fraction) held out of (x, t)."""
    if size is None:
        return x, t, None, None
    labels = t if isinstance(t, numpy.ndarray) else t.get()  # a cupy array comes to the host
    train, val = validation_split(labels, size, seed)
    if not isinstance(x, numpy.ndarray):
        import cupy

        train, val = cupy.asarray(train), cupy.asarray(val)
    return x[train], t[train], x[val], t[val]


class ModelSelection(Extension):
    """Tracks the best validation epoch; ``should_stop`` after ``patience`` epochs without one.

    As an extension: observes each epoch's validation result (``observation["improved"]``),
    writes ``best.npz`` (``out_dir`` and ``keep_best``) and keeps its state in the checkpoint.
    """

    def __init__(self, patience=None, keep_best=False, out_dir=None):
        self.patience = patience
        self.keep_best = keep_best
        self.out_dir = out_dir
        self.best_epoch = None
        self.best_val_acc = None
        self.best_val_loss = None
        self.since_best = 0  # epochs finished since the best one

    def observe(self, epoch, val_loss, val_acc) -> bool:
        """Record an epoch's validation result; True when it is the best so far."""
        # The same epoch as best_epoch_index would choose from the finished history.
        better = self.best_epoch is None or (
            selection_key(val_acc, val_loss) > selection_key(self.best_val_acc, self.best_val_loss)
        )
        if better:
            self.best_epoch, self.best_val_acc, self.best_val_loss = int(epoch), float(val_acc), float(val_loss)
            self.since_best = 0
        else:
            self.since_best += 1
        return better

    # --- the extension's moments --------------------------------------------------------------
    def end_epoch(self, trainer):
        o = trainer.observation
        o["improved"] = o["val_acc"] is not None and self.observe(trainer.epoch, o["val_loss"], o["val_acc"])
        if o["improved"] and self.keep_best and self.out_dir is not None:
            save_best(trainer, self.out_dir)

    def should_stop(self, trainer=None) -> bool:
        return self.patience is not None and self.best_epoch is not None and self.since_best >= self.patience

    def stop(self, trainer, reason):
        """Say why the run ended before its last epoch, when early stopping ended it."""
        if reason == "complete" and self.should_stop() and trainer.epoch < trainer.epochs:
            trainer.log(self.stop_message())

    def load_state(self, trainer, progress, source=None):
        self.load(progress.get("selection"), trainer.epoch, source)

    def stop_message(self) -> str:
        return (
            f"early stop: validation accuracy has not improved for {counted(self.since_best, 'epoch')} "
            f"(best: epoch {self.best_epoch}, val acc {self.best_val_acc:.4f})"
        )

    def state(self) -> dict:
        return {"selection": self.selection_state()}

    def selection_state(self) -> dict:
        return {
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "best_val_loss": self.best_val_loss,
            "since_best": self.since_best,
        }

    def load(self, state, epochs_run, source):
        """Restore from a checkpoint's ``progress.selection`` (absent: nothing was selected yet)."""
        if state is None:
            return
        if not isinstance(state, dict):
            _damaged(source, "is not a mapping")
        best, since = state.get("best_epoch"), state.get("since_best", 0)
        if best is None:
            return
        if not _count(best) or not 1 <= best <= epochs_run:
            _damaged(source, f"names best epoch {best!r} of a run of {epochs_run} epochs")
        if not _count(since) or best + since != epochs_run:
            _damaged(source, f"counts {since!r} epochs since the best one")
        acc, loss = state.get("best_val_acc"), state.get("best_val_loss")
        if not all(_finite(v) for v in (acc, loss)):
            _damaged(source, "holds a validation result that is not a finite number")
        self.best_epoch, self.best_val_acc, self.best_val_loss, self.since_best = best, acc, loss, since


def save_best(trainer, out_dir):
    """Write ``best.npz``: a full checkpoint of this epoch, marked ``kept_as = "best"``."""
    from fastnet.training.snapshots import write_snapshot

    return write_snapshot(trainer, out_dir / BEST, kept_as="best")


def summary_lines(history: dict, out_dir, keep_best: bool) -> list:
    """What the final report says about the checkpoints: which epoch each holds, its test accuracy."""
    if not history.get("epoch"):
        return []
    last = history["epoch"][-1]
    test = history["test_acc"][-1]
    lines = [
        f"final accuracy: train {history['train_acc'][-1]:.4f}"
        + (f", test {test:.4f}" if test is not None else "")
        + f" (last epoch {last}, {out_dir / 'checkpoint.npz'})"
    ]
    val = history.get("val_acc") or []
    best = best_epoch_index(history)
    if best is not None:
        where = f", {out_dir / BEST}" if keep_best else " (not kept: add --keep-best)"
        best_test = history["test_acc"][best]
        lines.append(
            f"best validation epoch {history['epoch'][best]}{where}: val acc {val[best]:.4f}"
            + (f", test {best_test:.4f}" if best_test is not None else "")
        )
    return lines


def _damaged(source, why):
    raise CheckpointError(
        f"{source or 'the checkpoint'}: checkpoint metadata is damaged (progress.selection {why}); use an intact copy"
    )


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

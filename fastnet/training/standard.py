"""The extensions every run has, in the order the loop calls them, built from its settings.

The order matters at an epoch's end: the divergence guard looks first (a blown-up epoch saves
nothing), model selection next (``best.npz``, and the ``(best)`` of the line), then the
checkpoint and ``history.json``, and the epoch's line last: an epoch announced as done has its
files on disk.
"""

from __future__ import annotations

from pathlib import Path

from fastnet.training.epoch_log import EpochLog
from fastnet.training.failures import DivergenceGuard
from fastnet.training.history_files import HistoryFiles
from fastnet.training.progress_bar import ProgressBar
from fastnet.training.selection import ModelSelection
from fastnet.training.snapshots import Checkpoints


def standard_extensions(settings) -> list:
    out_dir = Path(settings.out_dir) if settings.out_dir is not None else None
    extensions = [
        ProgressBar(settings.progress),
        DivergenceGuard(),
        ModelSelection(settings.early_stop, settings.keep_best, out_dir),
    ]
    if out_dir is not None:
        extensions += [Checkpoints(out_dir), HistoryFiles(out_dir, settings.title)]
    extensions.append(EpochLog(settings.log or (lambda *_: None)))
    if settings.tensorboard is not None:
        from fastnet.training.watch import TensorBoardWatch

        extensions.append(TensorBoardWatch(settings.tensorboard, settings.title))
    return extensions

"""The files fastnet writes into a run folder, and clearing a previous run's for ``--overwrite``.

A run replaced with ``--overwrite`` must leave nothing of the old run that could pass for the new
one's: a ``best.npz`` the new run never writes (no ``--keep-best``) would be evaluated as its best,
a ``curves.png`` left by a run that completed would stand beside a new run that was interrupted.
So, once the folder's lock is held and before anything is trained, the files below are removed;
only these names, only regular files (never a link, nor a folder), and never anything else in the
folder: a user's notes beside the run stay.  ``checkpoint.npz`` goes last, so a clearing cut short
still leaves a folder that holds a run (a later run still needs ``--overwrite``).
"""

from __future__ import annotations

import stat
from pathlib import Path

from fastnet.atomic import remove_stale_temporaries
from fastnet.plots.run_pictures import EVAL_PICTURES
from fastnet.training.selection import BEST
from fastnet.training.snapshots import CHECKPOINT

RUN_FILES = (BEST, "history.json", "history.csv", "curves.png", "filters.png", CHECKPOINT)  # checkpoint last


def previous_run_files(folder) -> list[Path]:
    """The files of a run in ``folder``: the run's own, and the pictures ``fastnet eval`` drew there."""
    folder = Path(folder)
    pictures = sorted(p for name in EVAL_PICTURES for p in folder.glob(f"{name}*.png") if _eval_picture(p.name))
    named = [*pictures, *(folder / name for name in RUN_FILES)]
    return [path for path in named if _regular_file(path)]


def remove_previous_run(folder, keep=(), say=print) -> list[Path]:
    """Delete the previous run's files in ``folder`` but those in ``keep`` (a checkpoint being
    resumed); says which, in one line.  Returns them."""
    keep = {Path(path).resolve() for path in keep}
    removed = []
    for path in previous_run_files(folder):
        if path.resolve() in keep:
            continue
        path.unlink()
        remove_stale_temporaries(path)  # half-written copies left by a killed writer
        removed.append(path)
    if removed:
        say(f"--overwrite: removed the previous run's {', '.join(p.name for p in removed)} from {folder}")
    return removed


def _eval_picture(name: str) -> bool:
    """confusion.png, or confusion-NAME.png for a checkpoint NAME.npz (likewise errors)."""
    stem = name.removesuffix(".png")
    return stem in EVAL_PICTURES or any(stem.startswith(f"{picture}-") for picture in EVAL_PICTURES)


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)  # lstat: a link named like a run file is not one
    except OSError:
        return False

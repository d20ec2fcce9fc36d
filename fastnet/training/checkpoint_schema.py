"""What a training checkpoint's metadata must look like, checked before any of it is used.

The metadata is JSON a user may have edited or an attacker crafted: every field that a resume
or an evaluation reads is checked here for type and range (no ``inf`` counts, no negative
optimizer steps, a history as long as the run), so a bad file is refused in one line instead
of failing in the middle of training or after it.
"""

from __future__ import annotations

import math

from fastnet.errors import CheckpointError
from fastnet.training.history import COLUMNS, OPTIONAL_COLUMNS

MAX_COUNT = 2**53  # beyond this a JSON number no longer counts steps exactly
PROGRESS_KEYS = ("epoch", "step", "iteration")


def check_meta(meta: dict, path) -> None:
    """Raise CheckpointError naming the first field of ``meta`` that is not as a run writes it."""

    def bad(field, why):
        raise CheckpointError(f"{path}: checkpoint metadata is damaged ({field} {why}); use an intact copy")

    for key in ("config", "optimizer", "history", "progress"):
        if not isinstance(meta.get(key), dict):
            bad(key, "is not a mapping")
    for key in ("layer_state", "rng"):  # rng: dropout states of files written before layer_state
        if not isinstance(meta.get(key, {}), dict):
            bad(key, "is not a mapping")
    for key in ("net", "backend"):
        if key in meta and not isinstance(meta[key], str):
            bad(key, "is not a name")

    progress = meta["progress"]
    for key in PROGRESS_KEYS:
        if not _count(progress.get(key)):
            bad(f"progress.{key}", f"is {progress.get(key)!r}, not a count")
    if not _count(progress.get("interval_steps", 0)) or progress.get("interval_steps", 0) > progress["iteration"]:
        bad("progress.interval_steps", "is not a count within the run")
    if not _number(progress.get("interval_loss", 0.0)) or progress.get("interval_loss", 0.0) < 0:
        bad("progress.interval_loss", "is not a finite loss")
    if progress.get("start_loss") is not None and not _number(progress["start_loss"]):
        bad("progress.start_loss", "is not a finite loss")

    optimizer = meta["optimizer"]
    if not isinstance(optimizer.get("name"), str):
        bad("optimizer.name", "is not a name")
    if not _count(optimizer.get("iter", 0)):
        bad("optimizer.iter", f"is {optimizer.get('iter')!r}, not a step count")
    # A schedule may end at 0 (cosine) or underflow to it (step decay): the lr is >= 0, not > 0.
    if "lr" in optimizer and (not _number(optimizer["lr"]) or optimizer["lr"] < 0):
        bad("optimizer.lr", "is not a number >= 0")

    config = meta["config"]
    for key in ("data_source", "data_name"):
        if key in config and not isinstance(config[key], str):
            bad(f"config.{key}", "is not text")
    if "train_samples" in config and (not _count(config["train_samples"]) or config["train_samples"] < 1):
        bad("config.train_samples", "is not a positive count")

    _check_history(meta["history"], progress["epoch"], bad)


def _check_history(history, epochs, bad):
    for column in COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in history):
        values = history.get(column, [])
        if not isinstance(values, list) or len(values) != epochs:
            bad(f"history.{column}", f"does not hold one value for each of the {epochs} epochs run")
        if not all(v is None or _number(v) for v in values):
            bad(f"history.{column}", "holds values that are not finite numbers")
    if history.get("epoch", []) != list(range(1, epochs + 1)):
        bad("history.epoch", "does not count the epochs 1, 2, ...")
    for column, what in (("step_loss", "loss"), ("step_lr", "learning rate")):
        steps = history.get(column, [])
        if not isinstance(steps, list) or not all(
            isinstance(p, list) and len(p) == 2 and _count(p[0]) and _number(p[1]) for p in steps
        ):
            bad(f"history.{column}", f"is not a list of [iteration, {what}] pairs")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

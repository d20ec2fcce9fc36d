"""The settings of model selection and the learning-rate schedule, checked in one place.

``RunConfig`` records them (a resumed run needs them) and ``TrainerConfig`` runs them; both
inherit them from :class:`RunOptions`, defined and checked here once:

- ``val_split``: validation images held out of the training set, a count (5000) or a fraction
  (0.1); None: no validation, the classic run.
- ``keep_best``: also keep ``best.npz``, the checkpoint of the best validation epoch.
- ``early_stop``: stop after this many epochs without a better validation result (None: never).
- ``train_eval``: how many training images are evaluated after each epoch for the train loss and
  accuracy: a fixed random sample of that many (drawn once from the seed), or "full" for the whole
  training set, as the book does (``fastnet train`` samples 10,000 unless ``--train-eval full``).
- ``lr_schedule`` (constant, step, cosine), ``warmup_epochs``, ``step_epochs``, ``lr_gamma``
  and ``min_lr``: see :mod:`fastnet.schedules`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from fastnet.errors import InputError
from fastnet.schedules import SCHEDULE_NAMES


# Keyword-only, so a subclass's own fields keep their positions in its constructor.
@dataclass(kw_only=True)
class RunOptions:
    """Model selection and the learning-rate schedule; the defaults are the classic run."""

    val_split: float | None = None
    keep_best: bool = False
    early_stop: int | None = None
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_epochs: int = 0
    lr_gamma: float = 0.1
    min_lr: float = 0.0
    train_eval: int | str = "full"

    def run_options(self) -> dict[str, object]:
        """These settings by name (what a ``TrainerConfig`` takes from a ``RunConfig``)."""
        return {name: getattr(self, name) for name in RUN_OPTIONS}


RUN_OPTIONS = tuple(f.name for f in fields(RunOptions))


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_run_options(config):
    """Raise InputError naming the first setting of ``config`` that is out of range."""
    split = config.val_split
    if split is not None and not ((_whole(split) and split >= 1) or (_real(split) and 0 < split < 1)):
        raise InputError(f"--val-split must be a count of images >= 1 or a fraction in (0, 1); got {split!r}")
    if not isinstance(config.keep_best, bool):
        raise InputError(f"keep_best must be true or false; got {config.keep_best!r}")
    stop = config.early_stop
    if stop is not None and not (_whole(stop) and stop >= 1):
        raise InputError(f"--early-stop must be a positive number of epochs; got {stop!r}")
    for name, wanted in (("keep_best", config.keep_best), ("early_stop", stop is not None)):
        if wanted and split is None:
            raise InputError(
                f"--{name.replace('_', '-')} chooses epochs by their validation accuracy; "
                f"add --val-split (e.g. --val-split 5000)"
            )
    sample = config.train_eval
    if sample != "full" and not (_whole(sample) and sample >= 1):
        raise InputError(f"--train-eval must be a count of images >= 1 or 'full'; got {sample!r}")
    if config.lr_schedule not in SCHEDULE_NAMES:
        raise InputError(f"unknown --lr-schedule {config.lr_schedule!r}; choose one of: {', '.join(SCHEDULE_NAMES)}")
    if not _real(config.warmup_epochs) or config.warmup_epochs < 0:
        raise InputError(f"--warmup-epochs must be a number >= 0; got {config.warmup_epochs!r}")
    if not _whole(config.step_epochs) or config.step_epochs < 0:
        raise InputError(f"--step-epochs must be an integer >= 0; got {config.step_epochs!r}")
    if not _real(config.lr_gamma) or not 0 < config.lr_gamma <= 1:
        raise InputError(f"--lr-gamma must be in (0, 1]; got {config.lr_gamma!r}")
    if not _real(config.min_lr) or config.min_lr < 0:
        raise InputError(f"--min-lr must be a number >= 0; got {config.min_lr!r}")

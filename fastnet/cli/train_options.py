"""The options of ``fastnet train`` for model selection, the learning-rate schedule, weight
decay and TensorBoard; they map one to one onto RunConfig / TrainerConfig fields."""

from __future__ import annotations

import argparse

from fastnet import catalog
from fastnet.cli.parser import non_negative_float, non_negative_int, positive_float, positive_int
from fastnet.schedules import SCHEDULE_NAMES
from fastnet.training.run_options import RUN_OPTIONS


def count_or_fraction(text):
    """``5000`` (images) or ``0.1`` (of the training set)."""
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is not None and not 0 < value < 1:
            value = None
    if value is None or (isinstance(value, int) and value < 1):
        raise argparse.ArgumentTypeError(f"expected a count of images >= 1 or a fraction in (0, 1), got {text!r}")
    return value


def add_selection_options(p):
    p.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=None,
        help="weight decay lambda for any optimizer: L2 added to the gradient; decoupled "
        "(AdamW) for adam; weights only, not biases (default: 0)",
    )
    p.add_argument(
        "--val-split",
        type=count_or_fraction,
        default=None,
        metavar="N|F",
        help="hold out N training images (or a fraction F) as a seeded, stratified "
        "validation set, evaluated every epoch",
    )
    p.add_argument(
        "--train-eval",
        type=train_eval_size,
        default=None,
        metavar="N|full",
        help=f"training images evaluated after each epoch for the train loss and accuracy: a fixed "
        f"seeded sample of N (default: {catalog.TRAIN_EVAL_SAMPLE:,}), or full for the whole training "
        f"set as the book does (it costs a pass over the set per epoch)",
    )
    p.add_argument(
        "--keep-best",
        action="store_true",
        default=None,
        help="also keep best.npz, the checkpoint of the best validation epoch (needs --val-split)",
    )
    p.add_argument(
        "--early-stop",
        type=positive_int,
        default=None,
        metavar="PATIENCE",
        help="stop when validation accuracy has not improved for PATIENCE epochs (needs --val-split)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=SCHEDULE_NAMES,
        default=None,
        help="learning-rate schedule over the run (default: constant)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=non_negative_float,
        default=None,
        help="linear learning-rate warm-up over this many epochs (default: 0)",
    )
    p.add_argument(
        "--step-epochs",
        type=non_negative_int,
        default=None,
        help="step schedule: epochs between decays (default: 0, a third of the run)",
    )
    p.add_argument(
        "--lr-gamma",
        type=positive_float,
        default=None,
        help="step schedule: factor per decay, in (0, 1] (default: 0.1)",
    )
    p.add_argument(
        "--min-lr", type=non_negative_float, default=None, help="cosine schedule: the final learning rate (default: 0)"
    )
    p.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="write TensorBoard events (scalars and pictures, every epoch) into DIR; "
        "needs pip install 'fastnet[tensorboard]'",
    )


def train_eval_size(text: str) -> int | str:
    """``--train-eval``: a count of images, or ``full``."""
    if text.strip().lower() == "full":
        return "full"
    return positive_int(text)


def given_selection_options(args) -> dict:
    """The RunConfig settings among these options that the user typed."""
    given = {name: getattr(args, name) for name in (*RUN_OPTIONS, "weight_decay")}
    return {k: v for k, v in given.items() if v is not None}

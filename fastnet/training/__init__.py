"""Training: the loop, its steps and extensions, checkpoints, history and plots."""

from fastnet.training.config import RunConfig, TrainerConfig, build_net
from fastnet.training.extension import Extension, called_at
from fastnet.training.steps import DataParallelStep, LocalStep
from fastnet.training.trainer import Trainer, TrainingInterrupted, evaluate

__all__ = [
    "DataParallelStep",
    "Extension",
    "LocalStep",
    "RunConfig",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "build_net",
    "called_at",
    "evaluate",
]

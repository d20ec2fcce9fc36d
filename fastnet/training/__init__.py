"""Training: the loop, checkpoints, history and plots."""
from fastnet.training.config import RunConfig, TrainerConfig, build_net
from fastnet.training.trainer import Trainer, TrainingInterrupted, evaluate

__all__ = ["RunConfig", "Trainer", "TrainerConfig", "TrainingInterrupted", "build_net", "evaluate"]

"""A run watched live in TensorBoard (``--tensorboard DIR``): after every epoch, its scalars, the
minibatch losses logged during it, and the curves picture."""

from __future__ import annotations

from fastnet.tensorboard_log import TensorBoardLog
from fastnet.training.extension import Extension

PER_EPOCH = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "lr",
    "epoch_seconds",
    "samples_per_second",
)


class TensorBoardWatch(Extension):
    def __init__(self, folder, title=""):
        self.log = TensorBoardLog(folder)  # fails here, before training, without tensorboardX
        self.title = title

    def end_epoch(self, trainer):
        from fastnet.plots import curves_figure

        data = trainer.history.to_dict()
        start = (trainer.epoch - 1) * trainer.steps_per_epoch  # this epoch's (a resumed one's too)
        for iteration, loss in data["step_loss"]:
            if iteration > start:
                self.log.scalar("loss/minibatch", loss, iteration)
        self.log.epoch(trainer.epoch, {k: data[k][-1] for k in PER_EPOCH if data.get(k)})
        self.log.figure("pictures/curves", curves_figure(data, title=self.title), trainer.epoch)

    def stop(self, trainer, reason):
        self.log.close()

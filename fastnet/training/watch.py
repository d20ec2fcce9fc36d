"""A run watched live in TensorBoard (``--tensorboard DIR``): after every epoch, its scalars, the
minibatch losses logged during it, and the curves picture, in the run's own ``DIR/version_N``.

Only one process of a run writes events (under a data-parallel job, rank 0: the other ranks get
no ``tensorboard`` setting, see ``fastnet.training.parallel``)."""

from __future__ import annotations

from fastnet.tensorboard_log import TensorBoardLog, new_run_folder
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
        self.folder = folder
        self.log = TensorBoardLog(new_run_folder(folder))  # fails here, before training, without tensorboardX
        self.title = title

    @property
    def run_folder(self):
        return self.log.log_dir

    def start(self, trainer):
        trainer.log(f"tensorboard: {self.run_folder} (view with: tensorboard --logdir {self.folder})")

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
        # Every epoch is on disk already; a run ended by an error or a signal adds nothing more,
        # so closing cannot replace what ended it with a second failure.
        self.log.close(keep_pending=reason == "complete")

"""What ``fastnet train`` adds to a run folder beyond curves.png: filters.png for the
convolution nets, and a resume that early stopping has already ended is refused."""

from __future__ import annotations

from fastnet.errors import InputError
from fastnet.words import counted


def first_filters(net):
    """A host copy of the first convolution's weights (FN, C, FH, FW), or None (no convolution)."""
    first = next((layer for name, layer in net.layers.items() if net.declared(name).kind == "conv"), None)
    return None if first is None else net.backend.to_numpy(first.W).copy()


def write_train_pictures(trainer, filters_before) -> list:
    """filters.png (before/after training) when the net convolves; also into the run's TensorBoard
    folder, when it has one."""
    if filters_before is None or trainer.out_dir is None:
        return []
    from fastnet.plots import write_filters
    from fastnet.training.watch import TensorBoardWatch

    path = write_filters(trainer.out_dir / "filters.png", filters_before, first_filters(trainer.net))
    watch = trainer.find(TensorBoardWatch)
    if watch is not None:
        from fastnet.tensorboard_log import TensorBoardLog

        with TensorBoardLog(watch.run_folder) as log:  # a second file in the same run's folder
            log.png("pictures/filters", str(path), trainer.epoch)
    return [path]


def refuse_stopped_run(trainer, checkpoint):
    """A run that early stopping ended has nothing left to train at the same patience."""
    selection = trainer.selection
    if selection.should_stop():
        raise InputError(
            f"{checkpoint} was stopped early ({counted(selection.since_best, 'epoch')} without a better "
            f"validation accuracy after epoch {selection.best_epoch}); give a larger "
            f"--early-stop to train further"
        )

"""The run's header lines: the data as the run uses it, and the net with its schedule.

Under ``--limit`` and ``--val-split`` the data line gives the sizes the run trains, selects and
tests on, not the sizes of the files; the net line names the learning-rate schedule, when the
run has one."""

from __future__ import annotations

from fastnet.words import counted


def data_line(data, trainer, limit=None) -> str:
    """'data: mnist from DIR (54,000 train, 6,000 validation, 10,000 test)', and what --limit kept."""
    sizes = [f"{trainer.x_train.shape[0]:,} train"]
    if trainer.x_val is not None:
        sizes.append(f"{trainer.x_val.shape[0]:,} validation")
    sizes.append(f"{0 if trainer.x_test is None else trainer.x_test.shape[0]:,} test")
    total = data.x_train.shape[0]
    kept = f"; --limit kept the first {min(limit, total):,} of {total:,} training images" if limit else ""
    return f"data: {data.name} from {data.source} ({', '.join(sizes)}{kept})"


def net_line(config, trainer) -> str:
    """'net: two-layer (39,760 parameters), sgd lr 0.1, batch 100, 1 epoch, float32', and the schedule."""
    parameters = sum(int(v.size) for v in trainer.net.params.values())
    line = (
        f"net: {config.net} ({parameters:,} parameters), {config.optimizer} lr {config.lr}, "
        f"batch {config.batch_size}, {counted(config.epochs, 'epoch')}, {config.dtype}"
    )
    if trainer.schedule is not None:
        line += f"; learning rate: {trainer.schedule.describe(trainer.steps_per_epoch)}"
    return line


def evaluation_line(trainer) -> str:
    """What is evaluated after each epoch, so its cost is seen: 'evaluation after each epoch:
    train on a sample of 10,000 of 54,000 images (--train-eval full: all of them), 6,000
    validation, 10,000 test'."""
    sample, whole = trainer.x_train_eval.shape[0], trainer.x_train.shape[0]
    if sample < whole:
        train = f"train on a sample of {sample:,} of {whole:,} images (--train-eval full: all of them)"
    else:
        train = f"train on all {counted(whole, 'image')}"
    parts = [train]
    if trainer.x_val is not None:
        parts.append(f"{trainer.x_val.shape[0]:,} validation")
    if trainer.x_test is not None:
        parts.append(f"{trainer.x_test.shape[0]:,} test")
    return "evaluation after each epoch: " + ", ".join(parts)

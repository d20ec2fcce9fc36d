"""TensorBoard events for a run (``--tensorboard DIR``): per-epoch scalars and the pictures.

tensorboardX is an optional extra (``pip install 'fastnet[tensorboard]'``), imported only when
a log is opened.  Events are flushed after every epoch, so ``tensorboard --logdir DIR`` shows a
run while it trains.

A trainer calls, once per epoch::

    log.epoch(epoch, {"train_loss": ..., "val_acc": ..., "lr": ...})   # None values are skipped
    log.figure("pictures/curves", curves_figure(history), epoch)     # any matplotlib figure
"""

from __future__ import annotations

import io

from fastnet.errors import InputError

# History column -> TensorBoard tag: one chart per quantity, with train/val/test as its curves.
TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "test_loss": "loss/test",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "test_acc": "accuracy/test",
    "lr": "learning_rate",
    "epoch_seconds": "speed/epoch_seconds",
    "samples_per_second": "speed/samples_per_second",
}


class TensorBoardLog:
    def __init__(self, log_dir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise InputError(
                "--tensorboard needs tensorboardX, which is not installed; pip install 'fastnet[tensorboard]'"
            ) from None
        self.log_dir = str(log_dir)
        self._writer = SummaryWriter(logdir=self.log_dir)

    def epoch(self, epoch: int, row: dict):
        """The epoch's numbers, tagged as in ``TAGS`` (other keys keep their own name)."""
        for key, value in row.items():
            if value is not None and key != "epoch":
                self._writer.add_scalar(TAGS.get(key, key), float(value), int(epoch))
        self._writer.flush()

    def scalar(self, tag: str, value: float, step: int):
        """One value at an iteration (e.g. the minibatch loss between epochs)."""
        self._writer.add_scalar(tag, float(value), int(step))

    def figure(self, tag: str, fig, step: int, close: bool = True):
        """A matplotlib figure as an image, rendered exactly as its PNG file is."""
        from fastnet.plots.figure import png_bytes

        self.png(tag, png_bytes(fig), step)  # a Figure of its own: nothing to close in pyplot

    def png(self, tag: str, png, step: int):
        """A PNG (bytes, or the path of a picture already written) as an image."""
        import matplotlib.image
        import numpy

        source = io.BytesIO(png) if isinstance(png, (bytes, bytearray)) else png
        pixels = matplotlib.image.imread(source, format="png")  # floats in [0, 1], RGB(A)
        rgb = (pixels[..., :3] * 255 + 0.5).astype(numpy.uint8)
        self._writer.add_image(tag, rgb, int(step), dataformats="HWC")
        self._writer.flush()

    def close(self):
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

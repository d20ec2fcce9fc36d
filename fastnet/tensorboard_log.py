"""TensorBoard events for a run (``--tensorboard DIR``): per-epoch scalars and the pictures.

tensorboardX is an optional extra (``pip install 'fastnet[tensorboard]'``, which also installs
``tensorboard`` to view them), imported only when a log is opened.  Each run gets a folder of its
own, ``DIR/version_N`` (claimed with an exclusive ``mkdir``, as Lightning names them), so runs
sharing ``DIR`` show as separate runs instead of one merged mess; ``tensorboard --logdir DIR``
shows them all, each while it trains.

The events are written here, in the calling thread, not by tensorboardX's writer thread: that
thread reported a full disk as its own traceback and let the run end with exit 0, its events
gone.  Here a write that fails raises ``WriteError`` (one line, exit 2), and the event file is cut
back to its last complete flush, so what was written stays readable.  A file is created
exclusively under a name with the host, process and a counter: no two writers ever share one.

A trainer calls, once per epoch::

    log.epoch(epoch, {"train_loss": ..., "val_acc": ..., "lr": ...})   # None values are skipped
    log.figure("pictures/curves", curves_figure(history), epoch)     # any matplotlib figure
"""

from __future__ import annotations

import io
import itertools
import os
import socket
import struct
import time
from pathlib import Path

from fastnet.atomic import REASONS, WriteError
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
RUN_PREFIX = "version_"


def _tensorboardx():
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise InputError(
            "--tensorboard needs tensorboardX, which is not installed; pip install 'fastnet[tensorboard]'"
        ) from None


def new_run_folder(parent) -> Path:
    """``parent/version_N`` with N one past the highest there, made by this process alone."""
    _tensorboardx()  # before anything is created
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        taken = [p.name[len(RUN_PREFIX) :] for p in parent.iterdir() if p.name.startswith(RUN_PREFIX)]
        start = 1 + max((int(n) for n in taken if n.isdecimal()), default=-1)
        number = start
        while True:
            folder = parent / f"{RUN_PREFIX}{number}"
            try:
                folder.mkdir()  # exclusive: a run starting at the same moment gets the next number
                return folder
            except FileExistsError:
                number += 1
    except OSError as exc:
        why = REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            why = "a file is in the way of that folder"
        raise InputError(
            f"--tensorboard {parent}: cannot make a run folder there ({why}); choose another folder"
        ) from None


class TensorBoardLog:
    """Events written into ``log_dir`` (created if needed), in a file of this log's own."""

    def __init__(self, log_dir):
        _tensorboardx()
        self.log_dir = Path(log_dir)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._file, self.path = _new_event_file(self.log_dir)
        except OSError as exc:
            raise self._error(exc) from None
        self._pending = bytearray()  # records not yet on disk
        self._written = 0  # bytes of the file that hold complete records
        self._failed = False
        from tensorboardX.proto.event_pb2 import Event

        self._record(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def epoch(self, epoch: int, row: dict):
        """The epoch's numbers, tagged as in ``TAGS`` (other keys keep their own name)."""
        for key, value in row.items():
            if value is not None and key != "epoch":
                self.scalar(TAGS.get(key, key), value, epoch)
        self.flush()

    def scalar(self, tag: str, value: float, step: int):
        """One value at an iteration (e.g. the minibatch loss between epochs); on disk at the next flush."""
        from tensorboardX.summary import scalar

        self._summary(scalar(tag, float(value)), step)

    def figure(self, tag: str, fig, step: int, close: bool = True):
        """A matplotlib figure as an image, rendered exactly as its PNG file is."""
        from fastnet.plots.figure import png_bytes

        self.png(tag, png_bytes(fig), step)  # a Figure of its own: nothing to close in pyplot

    def png(self, tag: str, png, step: int):
        """A PNG (bytes, or the path of a picture already written) as an image."""
        import matplotlib.image
        import numpy
        from tensorboardX.summary import image

        source = io.BytesIO(png) if isinstance(png, (bytes, bytearray)) else png
        pixels = matplotlib.image.imread(source, format="png")  # floats in [0, 1], RGB(A)
        rgb = (pixels[..., :3] * 255 + 0.5).astype(numpy.uint8)
        self._summary(image(tag, rgb, dataformats="HWC"), step)
        self.flush()

    def flush(self):
        """Put the pending records on disk; a failure cuts the file back to its last complete flush."""
        if self._failed or not self._pending:
            return
        try:
            with memoryview(self._pending) as whole:
                view = whole
                while view:  # a raw write may take only part
                    view = view[self._file.write(view) :]
                view.release()
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._failed = True
            try:
                os.ftruncate(self._file.fileno(), self._written)  # no half record at the end
            except OSError:
                pass
            raise self._error(exc) from None
        self._written += len(self._pending)
        self._pending.clear()

    def close(self, keep_pending=True):
        """Flush (unless ``keep_pending`` is False: a run stopped by an error drops the rest) and close."""
        if self._file.closed:
            return
        try:
            if keep_pending:
                self.flush()
        finally:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(keep_pending=exc[0] is None)

    # --- the event file ---------------------------------------------------------------------------
    def _summary(self, summary, step):
        from tensorboardX.proto.event_pb2 import Event

        self._record(Event(wall_time=time.time(), step=int(step), summary=summary))

    def _record(self, event):
        """A TFRecord: length, its masked CRC, the payload, its masked CRC."""
        from tensorboardX.record_writer import masked_crc32c

        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._pending += header + struct.pack("<I", masked_crc32c(header))
        self._pending += data + struct.pack("<I", masked_crc32c(data))

    def _error(self, exc: OSError) -> WriteError:
        why = REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        return WriteError(
            f"cannot write TensorBoard events in {self.log_dir}: {why}; free space there, choose another "
            f"--tensorboard folder, or train without --tensorboard"
        )


def _new_event_file(folder: Path):
    """(file, path): a new event file, created exclusively under a name nobody else uses."""
    stamp = f"{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
    for number in itertools.count():
        path = folder / f"events.out.tfevents.{stamp}.{number}"
        try:
            return open(path, "xb", buffering=0), path
        except FileExistsError:
            continue

"""TensorBoard events: real event files written by tensorboardX, read back record by record."""

import struct
import sys

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.plots import confusion_figure, png_bytes

tensorboardX = pytest.importorskip("tensorboardX", reason="tensorboardX is an optional extra")


def read_events(folder):
    """Every Event in the folder's event files (TFRecord: length, crc, payload, crc), each
    record's two checksums checked."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            header = data[offset : offset + 8]
            (length,) = struct.unpack("<Q", header)
            (header_crc,) = struct.unpack_from("<I", data, offset + 8)
            assert header_crc == masked_crc32c(header), f"bad header CRC in {path} at {offset}"
            payload = data[offset + 12 : offset + 12 + length]
            assert len(payload) == length, "truncated record"
            (payload_crc,) = struct.unpack_from("<I", data, offset + 12 + length)
            assert payload_crc == masked_crc32c(payload), f"bad payload CRC in {path} at {offset}"
            events.append(event_pb2.Event.FromString(payload))
            offset += 12 + length + 4
    return events


def summaries(folder):
    for event in read_events(folder):
        for value in event.summary.value:
            yield event.step, value


def test_epochs_write_tagged_scalars_and_skip_missing_values(tmp_path):
    from fastnet.tensorboard_log import TensorBoardLog

    with TensorBoardLog(tmp_path) as log:
        log.epoch(1, {"epoch": 1, "train_loss": 0.5, "val_acc": 0.91, "test_acc": None, "lr": 0.1})
        log.epoch(2, {"epoch": 2, "train_loss": 0.25, "val_acc": 0.95, "test_acc": 0.94, "lr": 0.05})
        log.scalar("loss/minibatch", 0.3, 150)
    got = {(step, v.tag): v.simple_value for step, v in summaries(tmp_path)}
    assert got == pytest.approx(
        {
            (1, "loss/train"): 0.5,
            (1, "accuracy/val"): 0.91,
            (1, "learning_rate"): 0.1,
            (2, "loss/train"): 0.25,
            (2, "accuracy/val"): 0.95,
            (2, "accuracy/test"): 0.94,
            (2, "learning_rate"): 0.05,
            (150, "loss/minibatch"): 0.3,
        }
    )


def test_pictures_are_written_as_png_images_of_the_figure(tmp_path):
    import matplotlib.image

    from fastnet.tensorboard_log import TensorBoardLog

    fig = confusion_figure(numpy.array([[5, 1], [0, 7]]))
    expected = png_bytes(fig)
    (tmp_path / "pic.png").write_bytes(expected)
    with TensorBoardLog(tmp_path / "tb") as log:
        log.figure("pictures/confusion", fig, 3)
        log.png("pictures/from_file", tmp_path / "pic.png", 4)
    images = {(step, v.tag): v.image for step, v in summaries(tmp_path / "tb")}
    assert set(images) == {(3, "pictures/confusion"), (4, "pictures/from_file")}
    reference = matplotlib.image.imread(tmp_path / "pic.png")
    for image in images.values():
        assert (image.height, image.width) == reference.shape[:2]
        (tmp_path / "back.png").write_bytes(image.encoded_image_string)
        back = matplotlib.image.imread(tmp_path / "back.png")
        assert numpy.abs(back[..., :3] - reference[..., :3]).max() <= 1 / 255 + 1e-6


def test_without_tensorboardx_one_line_says_how_to_install(monkeypatch, tmp_path):
    from fastnet.tensorboard_log import TensorBoardLog

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # what Python does when it is not installed
    with pytest.raises(InputError, match=r"pip install 'fastnet\[tensorboard\]'") as caught:
        TensorBoardLog(tmp_path)
    assert "\n" not in str(caught.value)
    assert not any(tmp_path.iterdir())

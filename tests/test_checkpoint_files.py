"""Damaged, foreign or mismatched checkpoint files are refused with one clear line (exit 2);
loading never unpickles anything."""

import json

import numpy
import pytest
from fastnet_cli import run_cli, stderr_lines

from fastnet.errors import CheckpointError
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.serialization import FORMAT, HEADER_KEY
from fastnet.training.checkpoint import read_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    result = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        folder / "run",
        tmp_path=folder,
    )
    assert result.returncode == 0, result.stderr
    return folder / "run" / "checkpoint.npz"


def refused(tmp_path, path, *extra):
    """Both ways of reading a checkpoint refuse it: one line on stderr, exit 2, no traceback."""
    lines = []
    for args in (
        ("train", "--resume", path, "--backend", "numpy", "--quiet", "--out", tmp_path / "out", *extra),
        ("eval", path, "--backend", "numpy"),
    ):
        result = run_cli(*args, tmp_path=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(stderr_lines(result)) == 1, result.stderr
        lines.append(stderr_lines(result)[0])
    assert not (tmp_path / "out" / "checkpoint.npz").exists()
    return lines


def damaged(good, tmp_path, how):
    data = bytearray(good.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    else:  # flip bytes at the start, the middle and the end (zip directory)
        position = {"flip-start": 40, "flip-middle": len(data) // 2, "flip-end": len(data) - 30}[how]
        for i in range(position, position + 8):
            data[i] ^= 0xFF
    path = tmp_path / f"{how}.npz"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how", ["truncated", "empty", "flip-start", "flip-middle", "flip-end"])
def test_damaged_checkpoints_are_refused(how, good_checkpoint, tmp_path):
    path = damaged(good_checkpoint, tmp_path, how)
    for line in refused(tmp_path, path):
        assert str(path) in line


def test_foreign_files_are_refused(good_checkpoint, tmp_path):
    random_bytes = tmp_path / "random.npz"
    random_bytes.write_bytes(numpy.random.default_rng(0).bytes(5000))
    text = tmp_path / "notes.txt"
    text.write_text("these are not the weights you are looking for\n")
    plain_npz = tmp_path / "plain.npz"
    numpy.savez(plain_npz, W1=numpy.zeros((784, 50), numpy.float32))
    params = tmp_path / "params.npz"
    TwoLayerNet(784, 50, 10, backend="numpy").save_params(params)

    for path in (random_bytes, text, plain_npz):
        for line in refused(tmp_path, path):
            assert str(path) in line
    for line in refused(tmp_path, params):
        assert "parameters only" in line
    for line in refused(tmp_path, tmp_path / "missing.npz"):
        assert "no such file" in line
    for line in refused(tmp_path, tmp_path):
        assert "directory" in line


class CreatesAFileWhenUnpickled:
    marker = None

    def __reduce__(self):
        return open, (self.marker, "w")


def test_loading_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"
    CreatesAFileWhenUnpickled.marker = str(marker)
    header = {"format": FORMAT, "version": 1, "meta": {"kind": "checkpoint"}}
    path = tmp_path / "object.npz"
    numpy.savez(
        path,
        **{HEADER_KEY: numpy.array(json.dumps(header)), "W1": numpy.array([CreatesAFileWhenUnpickled()], dtype=object)},
    )

    with pytest.raises(CheckpointError):
        read_checkpoint(path)
    refused(tmp_path, path)
    assert not marker.exists()


def test_checkpoint_of_another_shape_is_refused_naming_the_mismatch(tmp_path):
    # A file whose configuration says hidden 50 but whose arrays come from hidden 100.
    path = tmp_path / "lying.npz"
    net = TwoLayerNet(784, 100, 10, backend="numpy")
    config = {"net": "two-layer", "dataset": "sample", "epochs": 3, "hidden": [50], "limit": 300}
    save_checkpoint(path, net, SGD(0.1), {"epoch": 0, "step": 0, "iteration": 0}, config, {})
    for line in refused(tmp_path, path):
        assert "W1" in line and "(784, 100)" in line and "(784, 50)" in line


def test_resume_refuses_options_that_contradict_the_checkpoint(good_checkpoint, tmp_path):
    result = run_cli(
        "train",
        "--resume",
        good_checkpoint,
        "--hidden",
        "100",
        "--batch-size",
        "50",
        "--out",
        tmp_path / "out",
        tmp_path=tmp_path,
    )
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "--hidden 100 (checkpoint: 50)" in line and "--batch-size 50 (checkpoint: 100)" in line


def test_resume_may_extend_epochs_but_not_shrink_them(good_checkpoint, tmp_path):
    result = run_cli("train", "--resume", good_checkpoint, "--out", tmp_path / "out", tmp_path=tmp_path)
    assert result.returncode == 2
    (line,) = stderr_lines(result)
    assert "finished 1 epoch," in line and "--epochs" in line

    extended = run_cli(
        "train",
        "--resume",
        good_checkpoint,
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        tmp_path / "out",
        tmp_path=tmp_path,
    )
    assert extended.returncode == 0, extended.stderr
    assert read_checkpoint(tmp_path / "out" / "checkpoint.npz")[1]["progress"]["epoch"] == 2

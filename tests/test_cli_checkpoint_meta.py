"""Crafted checkpoint metadata is refused in one line when loaded, never a traceback mid-run."""

import math

import pytest
from fastnet_cli import run_cli, stderr_lines

from fastnet.errors import CheckpointError
from fastnet.serialization import save_arrays
from fastnet.training.checkpoint import read_checkpoint


def _set(section, key, value):
    def edit(meta):
        meta[section][key] = value

    return edit


def _drop_last(column):
    def edit(meta):
        meta["history"][column] = meta["history"][column][:-1]

    return edit


def _replace(key, value):
    def edit(meta):
        meta[key] = value

    return edit


CRAFTED = {
    "inf iteration count": _set("progress", "iteration", math.inf),
    "epoch as text": _set("progress", "epoch", "2"),
    "negative step": _set("progress", "step", -1),
    "huge interval": _set("progress", "interval_steps", 10**20),
    "NaN interval loss": _set("progress", "interval_loss", math.nan),
    "negative Adam step": _set("optimizer", "iter", -3),
    "learning rate as text": _set("optimizer", "lr", "0.1"),
    "history one epoch short": _drop_last("train_loss"),
    "history epochs out of order": _set("history", "epoch", [2, 1]),
    "step losses not pairs": _set("history", "step_loss", [[1]]),
    "inf epochs in the config": _set("config", "epochs", math.inf),
    "hidden sizes as text": _set("config", "hidden", ["50"]),
    "train samples as text": _set("config", "train_samples", "many"),
    "random state not a mapping": _replace("rng", []),
}


def two_epoch_run(tmp, *options):
    """The checkpoint of a 2-epoch run on 300 sample images with ``options``."""
    result = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "300",
        "--epochs",
        "2",
        *options,
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        tmp / "run",
        tmp_path=tmp,
    )
    assert result.returncode == 0, result.stderr
    return tmp / "run" / "checkpoint.npz"


def crafted_copy(checkpoint, edit, folder):
    """A copy of ``checkpoint`` in ``folder`` with ``edit(meta)`` applied to its metadata."""
    arrays, meta = read_checkpoint(checkpoint)
    edit(meta)
    crafted = folder / "crafted.npz"
    save_arrays(crafted, arrays, meta)
    return crafted


def assert_resume_refused_in_one_line(crafted, tmp_path):
    """Resuming ``crafted`` exits 2 with one line naming it, and writes no checkpoint."""
    result = run_cli(
        "train", "--resume", crafted, "--epochs", "4", "--out", tmp_path / "out", "--quiet", tmp_path=tmp_path
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and str(crafted) in lines[0], lines
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    return two_epoch_run(tmp_path_factory.mktemp("adam"), "--optimizer", "adam", "--lr", "0.001")


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_metadata_is_refused_on_resume_in_one_line(adam_run, tmp_path, kind):
    crafted = crafted_copy(adam_run, CRAFTED[kind], tmp_path)
    with pytest.raises(CheckpointError):
        from fastnet.training.checkpoint import checkpoint_config

        checkpoint_config(read_checkpoint(crafted)[1], crafted)
    assert_resume_refused_in_one_line(crafted, tmp_path)


def test_an_intact_checkpoint_passes_the_schema(adam_run):
    _, meta = read_checkpoint(adam_run)
    assert meta["optimizer"]["name"] == "Adam" and meta["progress"]["epoch"] == 2
    assert len(meta["history"]["train_loss"]) == 2

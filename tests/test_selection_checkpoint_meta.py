"""Crafted selection and schedule metadata is refused on resume in one line naming the file."""
import pytest
from fastnet_cli import run_cli, stderr_lines
from test_cli_checkpoint_meta import _drop_last, _set

from fastnet.serialization import save_arrays
from fastnet.training.checkpoint import read_checkpoint

CRAFTED = {
    "val column one epoch short": _drop_last("val_acc"),
    "lr column one epoch short": _drop_last("lr"),
    "learning rates not pairs": _set("history", "step_lr", 5),
    "validation split as text": _set("config", "val_split", "5000"),
    "unknown schedule": _set("progress", "schedule", {"name": "linear", "base_lr": 0.1, "total": 9}),
    "schedule settings not a mapping": _set("progress", "schedule", [1, 2]),
    "best epoch beyond the run": _set("progress", "selection", {"best_epoch": 7, "best_val_acc": 0.5,
                                                                "best_val_loss": 1.0, "since_best": 0}),
    "best accuracy not finite": _set("progress", "selection", {"best_epoch": 2, "best_val_acc": float("nan"),
                                                               "best_val_loss": 1.0, "since_best": 0}),
}


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("selected")
    result = run_cli("train", "--dataset", "sample", "--limit", "300", "--epochs", "2", "--val-split", "50",
                     "--lr-schedule", "step", "--backend", "numpy", "--quiet", "--out", tmp / "run", tmp_path=tmp)
    assert result.returncode == 0, result.stderr
    return tmp / "run" / "checkpoint.npz"


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_selection_metadata_is_refused_on_resume_in_one_line(selected_run, tmp_path, kind):
    arrays, meta = read_checkpoint(selected_run)
    CRAFTED[kind](meta)
    crafted = tmp_path / "crafted.npz"
    save_arrays(crafted, arrays, meta)
    result = run_cli("train", "--resume", crafted, "--epochs", "4", "--out", tmp_path / "out", "--quiet",
                     tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and str(crafted) in lines[0], lines
    assert not (tmp_path / "out" / "checkpoint.npz").exists()

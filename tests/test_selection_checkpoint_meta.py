"""Crafted selection and schedule metadata is refused on resume in one line naming the file."""

import pytest
from test_cli_checkpoint_meta import _drop_last, _set, assert_resume_refused_in_one_line, crafted_copy, two_epoch_run

CRAFTED = {
    "val column one epoch short": _drop_last("val_acc"),
    "lr column one epoch short": _drop_last("lr"),
    "learning rates not pairs": _set("history", "step_lr", 5),
    "validation split as text": _set("config", "val_split", "5000"),
    "unknown schedule": _set("progress", "schedule", {"name": "linear", "base_lr": 0.1, "total": 9}),
    "schedule settings not a mapping": _set("progress", "schedule", [1, 2]),
    "best epoch beyond the run": _set(
        "progress", "selection", {"best_epoch": 7, "best_val_acc": 0.5, "best_val_loss": 1.0, "since_best": 0}
    ),
    "best accuracy not finite": _set(
        "progress", "selection", {"best_epoch": 2, "best_val_acc": float("nan"), "best_val_loss": 1.0, "since_best": 0}
    ),
}


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory):
    return two_epoch_run(tmp_path_factory.mktemp("selected"), "--val-split", "50", "--lr-schedule", "step")


@pytest.mark.parametrize("kind", CRAFTED)
def test_crafted_selection_metadata_is_refused_on_resume_in_one_line(selected_run, tmp_path, kind):
    assert_resume_refused_in_one_line(crafted_copy(selected_run, CRAFTED[kind], tmp_path), tmp_path)

"""Model selection through the Trainer: a validation split held out of the training set, the best
epoch's checkpoint, early stopping, and a learning-rate schedule, all resumed bitwise (numpy)."""

import numpy
import pytest
from test_resume import assert_same_state, final_state, signal_during_step

from fastnet.datasets import load_dataset
from fastnet.errors import CheckpointError, InputError
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD, Adam
from fastnet.training import Trainer, TrainingInterrupted
from fastnet.training.checkpoint import read_checkpoint, restore_checkpoint
from fastnet.training.extension import called_at


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def noisy_run(sample, out_dir=None, epochs=12, val_split=100, **options):
    """Validation accuracy 0.2, 0.14, 0.3, 0.42, 0.46, 0.39, 0.41, 0.53, 0.48, ...: ups and downs."""
    net = TwoLayerNet(784, 30, 10, backend="numpy", seed=3)
    return Trainer(
        net,
        SGD(lr=1.0),
        sample.x_train[:400],
        sample.t_train[:400],
        sample.x_test[:300],
        sample.t_test[:300],
        epochs=epochs,
        batch_size=50,
        seed=5,
        out_dir=out_dir,
        progress=False,
        log=None,
        val_split=val_split,
        **options,
    )


def scheduled_run(sample, out_dir, min_lr=0.0):
    net = TwoLayerNet(784, 30, 10, backend="numpy", seed=3)
    return Trainer(
        net,
        Adam(lr=0.01, weight_decay=0.01),
        sample.x_train[:600],
        sample.t_train[:600],
        sample.x_test[:300],
        sample.t_test[:300],
        epochs=4,
        batch_size=100,
        seed=5,
        out_dir=out_dir,
        progress=False,
        log=None,
        log_every=2,
        val_split=0.2,
        keep_best=True,
        early_stop=3,
        lr_schedule="cosine",
        warmup_epochs=1,
        min_lr=min_lr,
    )


def expected_stop(val_acc, val_loss, patience):
    """The epoch early stopping must end at: ``patience`` epochs after the last improvement."""
    best, since = None, 0
    for epoch, score in enumerate(zip(val_acc, [-v for v in val_loss], strict=True), start=1):
        if best is None or score > best:
            best, since = score, 0
        else:
            since += 1
        if since >= patience:
            return epoch
    return None


def test_validation_is_held_out_of_training_and_reported_per_epoch(sample):
    trainer = noisy_run(sample, epochs=2)
    assert trainer.x_train.shape[0] == 300 and trainer.x_val.shape[0] == 100
    held_out = {row.tobytes() for row in trainer.x_val}
    assert not held_out & {row.tobytes() for row in trainer.x_train}
    history = trainer.fit().to_dict()
    assert len(history["val_acc"]) == len(history["val_loss"]) == 2
    assert all(v is not None for v in history["test_acc"])  # the test set is still reported
    assert history["lr"] == [1.0, 1.0]


def test_early_stop_ends_patience_epochs_after_the_best(sample):
    reference = noisy_run(sample).fit().to_dict()
    for patience in (2, 3):
        stop = expected_stop(reference["val_acc"], reference["val_loss"], patience)
        assert stop is not None and stop < 12  # this run's validation has ups and downs
        history = noisy_run(sample, early_stop=patience).fit().to_dict()
        assert history["epoch"][-1] == stop
        assert history["val_acc"] == reference["val_acc"][:stop]


def test_best_checkpoint_holds_the_best_validation_epoch(sample, tmp_path):
    trainer = noisy_run(sample, tmp_path, epochs=9, keep_best=True)
    weights = {}
    trainer.extend(
        called_at("end_epoch", lambda t: weights.update({t.epoch: {k: v.copy() for k, v in t.net.params.items()}}))
    )
    history = trainer.fit().to_dict()
    best = 1 + max(range(9), key=lambda i: (history["val_acc"][i], -history["val_loss"][i]))
    assert best == 8
    arrays, meta = read_checkpoint(tmp_path / "best.npz")
    assert meta["progress"]["epoch"] == best and meta["progress"]["kept_as"] == "best"
    for key, value in weights[best].items():
        assert numpy.array_equal(arrays[key], value), key
    assert not numpy.array_equal(arrays["W1"], weights[9]["W1"])
    last = read_checkpoint(tmp_path / "checkpoint.npz")[1]
    assert last["progress"]["epoch"] == 9 and "kept_as" not in last["progress"]


def test_early_stop_resumed_from_a_shorter_run_stops_where_the_straight_run_stops(sample, tmp_path):
    straight = noisy_run(sample, tmp_path / "straight", early_stop=3)
    straight.fit()
    assert straight.epoch == 11

    noisy_run(sample, tmp_path / "run", epochs=9, early_stop=3).fit()
    arrays, meta = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert meta["progress"]["selection"]["since_best"] == 1
    resumed = noisy_run(sample, tmp_path / "run", early_stop=3)
    restore_checkpoint(resumed.net, resumed.optimizer, arrays, meta, "checkpoint")
    resumed.restore_progress(meta["progress"], meta["history"])
    resumed.fit()
    assert resumed.epoch == 11
    assert_same_state(final_state(straight), final_state(resumed))


@pytest.mark.parametrize("stop_at", [3, 7], ids=["first-epoch", "second-epoch"])
def test_schedule_and_selection_resumed_after_a_signal_equal_the_straight_run(sample, tmp_path, stop_at):
    reference = scheduled_run(sample, tmp_path / "reference")
    expected = reference.fit().to_dict()
    assert len(set(expected["lr"])) == 4  # the rate really changed every epoch

    first = scheduled_run(sample, tmp_path / "run")
    signal_during_step(first.net, stop_at)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    arrays, meta = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert meta["progress"]["schedule"]["name"] == "cosine"
    resumed = scheduled_run(sample, tmp_path / "run")
    restore_checkpoint(resumed.net, resumed.optimizer, arrays, meta, "checkpoint")
    resumed.restore_progress(meta["progress"], meta["history"])
    history = resumed.fit().to_dict()

    assert_same_state(final_state(reference), final_state(resumed))
    for column in ("val_acc", "val_loss", "test_acc", "lr", "step_loss", "step_lr"):
        assert history[column] == expected[column], column
    best_a = read_checkpoint(tmp_path / "reference" / "best.npz")[0]
    best_b = read_checkpoint(tmp_path / "run" / "best.npz")[0]
    assert all(numpy.array_equal(best_a[k], best_b[k]) for k in best_a)


def test_a_longer_resumed_run_keeps_the_recorded_schedule_and_says_so(sample, tmp_path):
    said = []
    short = scheduled_run(sample, tmp_path, min_lr=0.001)  # ends above 0: the extra epochs still train
    short.fit()
    arrays, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    longer = scheduled_run(sample, tmp_path, min_lr=0.001)
    longer.epochs, longer.log = 6, said.append
    restore_checkpoint(longer.net, longer.optimizer, arrays, meta, "checkpoint")
    longer.restore_progress(meta["progress"], meta["history"])
    assert longer.schedule.total == 4 * 5
    assert any("keeps its recorded length of 4 epochs" in line for line in said)
    ended = scheduled_run(sample, tmp_path)  # the recorded one ends at rate 0: extending it is refused
    ended.epochs = 6
    meta["progress"]["schedule"] = {**meta["progress"]["schedule"], "min_lr": 0.0}
    with pytest.raises(InputError, match="ends at rate 0 after its 4 epochs"):
        ended.restore_progress(meta["progress"], meta["history"])


def test_damaged_selection_state_is_refused(sample, tmp_path):
    trainer = noisy_run(sample, tmp_path, epochs=2)
    trainer.fit()
    meta = read_checkpoint(tmp_path / "checkpoint.npz")[1]
    progress = {**meta["progress"], "selection": {**meta["progress"]["selection"], "best_epoch": 7}}
    with pytest.raises(CheckpointError, match="progress.selection"):
        noisy_run(sample).restore_progress(progress, meta["history"], source="x.npz")


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"keep_best": True, "val_split": None}, "add --val-split"),
        ({"early_stop": 2, "val_split": None}, "add --val-split"),
        ({"val_split": 1.5}, "--val-split"),
        ({"lr_schedule": "linear"}, "--lr-schedule"),
        ({"val_split": 400}, "leaves no training data"),
    ],
)
def test_bad_selection_settings_are_one_clear_error(sample, options, problem):
    with pytest.raises(InputError, match=problem):
        noisy_run(sample, **options)


@pytest.mark.parametrize(
    "accs, losses, best",
    [
        ([0.9, 0.95, 0.95], [0.3, 0.2, 0.1], 2),  # a tie in accuracy: the lower loss
        ([0.9, 0.95, 0.95], [0.3, 0.1, 0.1], 1),  # a full tie: the earlier epoch
        ([0.97, 0.95, 0.96], [0.3, 0.1, 0.1], 0),  # accuracy first, whatever the loss
    ],
)
def test_the_streaming_choice_and_the_history_choice_name_the_same_epoch(accs, losses, best):
    from fastnet.best_epoch import best_epoch_index
    from fastnet.training.selection import ModelSelection

    selection = ModelSelection()
    for epoch, (acc, loss) in enumerate(zip(accs, losses, strict=True), start=1):
        selection.observe(epoch, loss, acc)
    assert best_epoch_index({"val_acc": accs, "val_loss": losses}) == best
    assert selection.best_epoch == best + 1
    assert best_epoch_index({"val_acc": [None, None], "val_loss": [None, None]}) is None

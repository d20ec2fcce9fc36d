"""The loop's moments, its steps, and each standard extension on its own: what it is called
with, what it writes, and the state it keeps in the checkpoint."""

import json
import signal

import numpy
import pytest
from test_resume import signal_during_step

from fastnet.datasets import load_dataset
from fastnet.errors import InputError
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.training import Extension, LocalStep, Trainer, TrainingInterrupted, called_at
from fastnet.training.checkpoint import read_checkpoint
from fastnet.training.epoch_log import EpochLog
from fastnet.training.history_files import HistoryFiles
from fastnet.training.profile_once import ProfileOnce
from fastnet.training.progress_bar import ProgressBar
from fastnet.training.snapshots import Checkpoints

N_TRAIN = 500  # 5 steps of 100 per epoch


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def make_trainer(sample, out_dir=None, **options):
    net = TwoLayerNet(784, 20, 10, backend="numpy", seed=1)
    settings = dict(epochs=2, batch_size=100, seed=2, out_dir=out_dir, progress=False, log=None, log_every=2)
    return Trainer(
        net,
        SGD(lr=0.1),
        sample.x_train[:N_TRAIN],
        sample.t_train[:N_TRAIN],
        sample.x_test[:200],
        sample.t_test[:200],
        **{**settings, **options},
    )


class Recorder(Extension):
    """Notes every moment it is called at, and keeps a count in the checkpoint."""

    def __init__(self):
        self.calls, self.count = [], 0

    def start(self, trainer):
        self.calls.append(("start", trainer.iteration))

    def after_step(self, trainer):
        self.count += 1
        self.calls.append(("step", trainer.iteration, trainer.interval_mean is not None))

    def end_epoch(self, trainer):
        self.calls.append(("epoch", trainer.epoch, trainer.observation["train_acc"]))

    def stop(self, trainer, reason):
        self.calls.append(("stop", reason))

    def state(self):
        return {"recorded_steps": self.count}

    def load_state(self, trainer, progress, source=None):
        self.count = progress.get("recorded_steps", 0)


def test_the_loop_calls_each_moment_in_order(sample):
    recorder = Recorder()
    trainer = make_trainer(sample, extensions=[recorder])
    trainer.fit()
    calls = recorder.calls
    assert calls[0] == ("start", 0) and calls[-1] == ("stop", "complete")
    steps = [c for c in calls if c[0] == "step"]
    assert [c[1] for c in steps] == list(range(1, 11))
    # log_every=2 in 5-step epochs: intervals close at steps 2, 4, 5 of each epoch.
    assert [c[2] for c in steps] == [False, True, False, True, True] * 2
    epochs = [c for c in calls if c[0] == "epoch"]
    assert [c[1] for c in epochs] == [1, 2]
    history = trainer.history.to_dict()
    assert [c[2] for c in epochs] == history["train_acc"]
    assert calls.index(epochs[0]) == 1 + 5  # after the epoch's fifth step


def test_extend_adds_after_the_standard_extensions_and_returns_it(sample):
    trainer = make_trainer(sample)
    standard = list(trainer.extensions)
    recorder = trainer.extend(Recorder())
    assert trainer.extensions == [*standard, recorder]
    assert trainer.find(Recorder) is recorder


def test_an_extension_keeps_its_state_in_the_checkpoint(sample, tmp_path):
    first = make_trainer(sample, tmp_path / "run", extensions=[Recorder()])
    signal_during_step(first.net, 7)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    assert first.find(Recorder).calls[-1] == ("stop", "signal")
    _arrays, meta = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert meta["progress"]["recorded_steps"] == 7 and meta["progress"]["iteration"] == 7

    resumed = make_trainer(sample, extensions=[Recorder()])
    resumed.restore_progress(meta["progress"], meta["history"])
    assert resumed.find(Recorder).count == 7
    resumed.fit()
    assert resumed.find(Recorder).count == 10


def test_an_extension_can_end_the_run_after_an_epoch(sample):
    class OneEpoch(Extension):
        def should_stop(self, trainer):
            return trainer.epoch >= 1

    trainer = make_trainer(sample, epochs=5, extensions=[OneEpoch()])
    assert trainer.fit().to_dict()["epoch"] == [1]


def test_called_at_wraps_a_function_and_refuses_an_unknown_moment(sample):
    seen = []
    make_trainer(sample, extensions=[called_at("end_epoch", lambda t: seen.append(t.epoch))]).fit()
    assert seen == [1, 2]
    with pytest.raises(InputError, match="unknown moment 'after_epoch'"):
        called_at("after_epoch", print)


def test_the_step_object_makes_every_update(sample):
    class CountingStep(LocalStep):
        updates = 0

        def update(self, trainer, rows):
            CountingStep.updates += 1
            assert len(rows) == trainer.batch_size
            super().update(trainer, rows)

    reference = make_trainer(sample)
    reference.fit()
    counted = make_trainer(sample, step=CountingStep())
    counted.fit()
    assert CountingStep.updates == 10
    for key, value in reference.net.params.items():
        assert numpy.array_equal(value, counted.net.params[key]), key


def test_the_step_keeps_the_schedule_state(sample):
    trainer = make_trainer(sample, lr_schedule="cosine")
    assert trainer.schedule is trainer.updater.schedule is not None
    assert trainer.progress()["schedule"] == trainer.schedule.to_dict()
    assert "schedule" not in make_trainer(sample).progress()  # the classic constant rate


def test_checkpoints_and_history_files_are_written_each_epoch(sample, tmp_path):
    seen = []

    def look(trainer):
        _arrays, meta = read_checkpoint(tmp_path / "checkpoint.npz")
        written = json.loads((tmp_path / "history.json").read_text())
        seen.append((meta["progress"]["epoch"], written["history"]["epoch"], trainer.last_good_where))

    trainer = make_trainer(sample, tmp_path, extensions=[called_at("end_epoch", look)])
    assert any(isinstance(e, Checkpoints) for e in trainer.extensions)
    assert any(isinstance(e, HistoryFiles) for e in trainer.extensions)
    trainer.fit()
    assert seen == [(1, [1], "end of epoch 1"), (2, [1, 2], "end of epoch 2")]
    assert (tmp_path / "curves.png").stat().st_size > 0  # when the run completes


def test_no_output_folder_means_no_files_extensions(sample):
    trainer = make_trainer(sample)
    assert not any(isinstance(e, (Checkpoints, HistoryFiles)) for e in trainer.extensions)


def test_epoch_log_says_one_line_per_epoch_after_the_files(sample, tmp_path):
    said = []
    trainer = make_trainer(sample, tmp_path, log=lambda line: said.append((line, (tmp_path / "history.json").exists())))
    trainer.fit()
    assert [line.split(":")[0] for line, _ in said] == ["epoch 1/2", "epoch 2/2"]
    assert all(written for _line, written in said)
    acc = trainer.history.to_dict()["test_acc"][-1]
    assert "test loss" in said[-1][0] and f"acc {acc:.4f}" in said[-1][0]


def test_epoch_log_marks_the_best_validation_epoch(sample):
    said = []
    make_trainer(sample, val_split=100, log=said.append).fit()
    assert all("val loss" in line for line in said) and "(best)" in said[0]


def test_progress_bar_draws_nothing_when_disabled_and_closes_each_epoch(sample, capsys):
    make_trainer(sample, epochs=1).fit()
    assert capsys.readouterr().err == ""
    bar = ProgressBar(enabled=True)
    trainer = make_trainer(sample, epochs=1, extensions=[bar])
    trainer.fit()
    assert bar.bar is None  # closed at the epoch's end


def test_profile_once_prints_after_the_first_epoch_only(sample):
    said = []
    make_trainer(sample, epochs=2, extensions=[ProfileOnce(said.append)]).fit()
    assert said[0] == "profile of a training step after epoch 1:"
    assert len(said) == 2 and "Affine1" in said[1]


def test_a_signal_saves_through_the_extensions(sample, tmp_path):
    trainer = make_trainer(sample, tmp_path)
    signal_during_step(trainer.net, 3, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="resume with: fastnet train --resume") as stopped:
        trainer.fit()
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    assert json.loads((tmp_path / "history.json").read_text())["history"]["step_loss"] == [
        [2, pytest.approx(trainer.history.to_dict()["step_loss"][0][1])]
    ]
    assert not (tmp_path / "curves.png").exists()  # only a completed run draws its curves


def test_epoch_log_alone(sample):
    said = []
    trainer = make_trainer(sample)
    trainer.epoch, trainer.observation = (
        1,
        dict(
            train_loss=0.5,
            train_acc=0.75,
            val_loss=None,
            val_acc=None,
            test_loss=None,
            test_acc=None,
            epoch_seconds=2.0,
            samples_per_second=250.0,
        ),
    )
    EpochLog(said.append).end_epoch(trainer)
    assert said == ["epoch 1/2: train loss 0.5000 acc 0.7500 (2.0 s, 250 samples/s)"]


def test_the_data_parallel_step_on_one_rank_trains_like_the_local_step(sample, tmp_path):
    """The step of a job, met here on one process (the real jobs run under mpiexec in
    test_distributed*.py): the same weights, and the checkpoint names the ranks."""
    from fastnet.distributed.base import SingleProcess
    from fastnet.training import DataParallelStep

    local = make_trainer(sample)
    local.fit()
    step = DataParallelStep(SingleProcess(), "mpi")
    ranked = make_trainer(sample, tmp_path, step=step)
    step.join(ranked)
    assert step.resume_options == ("--distributed", "mpi") and step.launcher == ("mpiexec", "-n", "1")
    ranked.fit()
    for key, value in local.net.params.items():
        numpy.testing.assert_array_equal(ranked.net.params[key], value, err_msg=key)
    _arrays, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["progress"]["ranks"] == 1 and meta["progress"]["rank_layer_states"] == [{}]

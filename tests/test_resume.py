"""An interrupted run, resumed from its checkpoint, ends bitwise where the uninterrupted run ends
(numpy backend): same weights, optimizer state, BatchNorm statistics and dropout masks."""

import os
import signal

import numpy
import pytest
from fastnet_cli import Child, run_cli

from fastnet.datasets import load_dataset
from fastnet.nets import MultiLayerNet, TwoLayerNet
from fastnet.optim import SGD, Adam
from fastnet.training import Trainer, TrainingInterrupted
from fastnet.training.checkpoint import read_checkpoint, restore_checkpoint

N_TRAIN = 600  # 6 steps of 100 per epoch


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def two_layer():
    return TwoLayerNet(784, 30, 10, backend="numpy", seed=3), SGD(lr=0.1)


def mlp_adam_dropout_batchnorm():
    net = MultiLayerNet(
        784,
        [40, 30],
        10,
        use_dropout=True,
        dropout_ratio=0.3,
        use_batchnorm=True,
        weight_decay_lambda=1e-3,
        backend="numpy",
        seed=3,
    )
    return net, Adam(lr=0.003)


def trainer_for(make, sample, out_dir):
    net, optimizer = make()
    return Trainer(
        net,
        optimizer,
        sample.x_train[:N_TRAIN],
        sample.t_train[:N_TRAIN],
        sample.x_test[:300],
        sample.t_test[:300],
        epochs=3,
        batch_size=100,
        seed=5,
        out_dir=out_dir,
        progress=False,
        log=None,
        log_every=4,
    )


def signal_during_step(net, step, signum=signal.SIGINT):
    """Deliver a real signal to this process while the net computes training step ``step``."""
    gradient, calls = net.gradient, [0]

    def gradient_then_signal(x, t):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signum)
        return gradient(x, t)

    net.gradient = gradient_then_signal


def final_state(trainer):
    optimizer_info, optimizer_arrays = trainer.optimizer.state_dict()
    return ({k: v.copy() for k, v in trainer.net.state_arrays().items()}, optimizer_arrays, optimizer_info["iter"])


def assert_same_state(a, b):
    (net_a, opt_a, iter_a), (net_b, opt_b, iter_b) = a, b
    assert iter_a == iter_b
    assert net_a.keys() == net_b.keys() and opt_a.keys() == opt_b.keys()
    for key in net_a:
        assert numpy.array_equal(net_a[key], net_b[key]), key
    for key in opt_a:
        assert numpy.array_equal(opt_a[key], opt_b[key]), key


@pytest.mark.parametrize("make", [two_layer, mlp_adam_dropout_batchnorm], ids=["sgd", "adam-dropout-bn"])
@pytest.mark.parametrize("stop_at", [4, 6, 9], ids=["mid-epoch", "epoch-end", "second-epoch"])
def test_interrupted_and_resumed_equals_uninterrupted(make, stop_at, sample, tmp_path):
    reference = trainer_for(make, sample, tmp_path / "reference")
    reference_history = reference.fit().to_dict()

    first = trainer_for(make, sample, tmp_path / "run")
    signal_during_step(first.net, stop_at)
    with pytest.raises(TrainingInterrupted) as stopped:
        first.fit()
    assert stopped.value.exit_code == 130
    assert first.iteration == stop_at  # the step under way when the signal came was finished

    arrays, meta = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert meta["progress"]["iteration"] == stop_at
    resumed = trainer_for(make, sample, tmp_path / "run")
    restore_checkpoint(resumed.net, resumed.optimizer, arrays, meta, "checkpoint")
    resumed.restore_progress(meta["progress"], meta["history"])
    history = resumed.fit().to_dict()

    assert_same_state(final_state(reference), final_state(resumed))
    for column in ("train_loss", "train_acc", "test_loss", "test_acc", "step_loss"):
        assert history[column] == reference_history[column], column


def test_signal_handlers_are_restored_after_fit(sample, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    trainer = trainer_for(two_layer, sample, None)
    signal_during_step(trainer.net, 2, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.fit()
    assert stopped.value.exit_code == 143
    assert "no checkpoint" in str(stopped.value)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_cli_resume_after_sigint_matches_uninterrupted_cli_run(tmp_path):
    common = [
        "--dataset",
        "sample",
        "--limit",
        "1000",
        "--backend",
        "numpy",
        "--net",
        "mlp",
        "--hidden",
        "40",
        "30",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--dropout",
        "0.2",
        "--batchnorm",
        "--batch-size",
        "100",
        "--quiet",
    ]
    child = Child("train", *common, "--epochs", "1000", "--out", tmp_path / "interrupted", tmp_path=tmp_path)
    child.wait_for("epoch 1/1000")
    child.proc.send_signal(signal.SIGINT)
    code, stderr = child.finish()
    assert code == 130, stderr
    checkpoint = tmp_path / "interrupted" / "checkpoint.npz"
    finished = read_checkpoint(checkpoint)[1]["progress"]["epoch"]
    epochs = finished + 2  # resume into the middle of the run, whatever epoch the signal hit

    resumed = run_cli(
        "train", "--resume", checkpoint, "--epochs", epochs, "--backend", "numpy", "--quiet", tmp_path=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    straight = run_cli("train", *common, "--epochs", epochs, "--out", tmp_path / "straight", tmp_path=tmp_path)
    assert straight.returncode == 0, straight.stderr

    a, meta_a = read_checkpoint(checkpoint)
    b, meta_b = read_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    assert meta_a["progress"]["epoch"] == meta_b["progress"]["epoch"] == epochs
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for key in a:
        assert numpy.array_equal(a[key], b[key]), key
    assert meta_a["history"]["test_acc"] == meta_b["history"]["test_acc"]

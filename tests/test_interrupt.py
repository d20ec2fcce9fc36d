"""Ctrl-C, SIGTERM and SIGKILL never lose work: a checkpoint of the last finished step is saved
(or, when killed outright, the previous checkpoint is intact), and the exit is clean."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy
import pytest
from fastnet_cli import PATIENCE, Child, cli_env

from fastnet.datasets import load_dataset
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD, Adam
from fastnet.training import Trainer, TrainingInterrupted
from fastnet.training.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from fastnet.training.trainer import StopNow

SLOW_RUN = ["train", "--dataset", "sample", "--limit", "2000", "--epochs", "1000", "--backend", "numpy", "--quiet"]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"])
def test_signal_saves_checkpoint_and_says_how_to_resume(signum, code, tmp_path):
    child = Child(*SLOW_RUN, "--out", tmp_path / "run", tmp_path=tmp_path)
    child.wait_for("epoch 1/1000")  # surely inside the training loop now
    child.proc.send_signal(signum)
    exit_code, stderr = child.finish()

    assert exit_code == code
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert signal.Signals(signum).name in lines[0] and "--resume" in lines[0]
    path = lines[0].split("--resume ")[1].strip()
    arrays, meta = read_checkpoint(path)
    progress = meta["progress"]
    where = re.search(r"epoch (\d+), step (\d+)/20|end of epoch (\d+)", lines[0])
    if where.group(3):
        assert (progress["epoch"], progress["step"]) == (int(where.group(3)), 0)
    else:
        assert (progress["epoch"] + 1, progress["step"]) == (int(where.group(1)), int(where.group(2)))
    assert progress["epoch"] >= 1 and progress["iteration"] == progress["epoch"] * 20 + progress["step"]
    net = TwoLayerNet(784, 50, 10, backend="numpy")
    restore_checkpoint(net, SGD(0.1), arrays, meta, path)


def test_two_quick_signals_still_exit_cleanly(tmp_path):
    child = Child(*SLOW_RUN, "--out", tmp_path / "run", tmp_path=tmp_path)
    child.wait_for("epoch 1/1000")
    child.proc.send_signal(signal.SIGINT)
    child.proc.send_signal(signal.SIGINT)
    exit_code, stderr = child.finish()
    assert exit_code == 130
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    read_checkpoint(tmp_path / "run" / "checkpoint.npz")  # whatever happened, the file is whole


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def small_trainer(sample, out_dir, epochs=3):
    net = TwoLayerNet(784, 20, 10, backend="numpy", seed=0)
    return Trainer(
        net,
        SGD(0.1),
        sample.x_train[:500],
        sample.t_train[:500],
        sample.x_test[:200],
        sample.t_test[:200],
        epochs=epochs,
        batch_size=100,
        out_dir=out_dir,
        progress=False,
        log=None,
    )


def signal_during_evaluation(net, signum=signal.SIGINT, count=1):
    """Send ``count`` signals during the first test-mode forward pass (the epoch-end evaluation)."""
    forward, sent = net._forward, [False]

    def forward_then_signal(x, train_flg):
        if not train_flg and not sent[0]:
            sent[0] = True
            for _ in range(count):
                os.kill(os.getpid(), signum)
        return forward(x, train_flg)

    net._forward = forward_then_signal


def test_signal_during_epoch_end_evaluation_is_honoured_right_after(sample, tmp_path):
    trainer = small_trainer(sample, tmp_path)
    signal_during_evaluation(trainer.net)
    with pytest.raises(TrainingInterrupted, match="end of epoch 1"):
        trainer.fit()
    assert (trainer.epoch, trainer.step, trainer.iteration) == (1, 0, 5)
    meta = read_checkpoint(tmp_path / "checkpoint.npz")[1]
    assert meta["progress"]["epoch"] == 1 and meta["history"]["epoch"] == [1]


def test_signal_during_the_last_evaluation_still_stops(sample, tmp_path):
    trainer = small_trainer(sample, tmp_path, epochs=1)
    signal_during_evaluation(trainer.net)
    with pytest.raises(TrainingInterrupted, match="run is complete") as stopped:
        trainer.fit()
    assert stopped.value.exit_code == 130
    assert read_checkpoint(tmp_path / "checkpoint.npz")[1]["progress"]["epoch"] == 1


def test_second_signal_stops_at_once_without_saving(sample, tmp_path):
    trainer = small_trainer(sample, tmp_path)
    signal_during_evaluation(trainer.net, count=2)
    with pytest.raises(StopNow):
        trainer.fit()
    assert trainer.epoch == 0  # stopped inside the evaluation of epoch 1, before recording it
    assert not list(tmp_path.iterdir())  # nothing half-written


WRITER = textwrap.dedent("""
    import sys
    from fastnet.nets import TwoLayerNet
    from fastnet.optim import Adam
    from fastnet.training.checkpoint import save_checkpoint

    net = TwoLayerNet(784, 1500, 10, backend="numpy", seed=0)   # about 19 MB with Adam's moments
    opt = Adam()
    opt.update(net.params, {k: v * 0 for k, v in net.params.items()})
    for i in range(1, 100000):
        net.params["b1"][0] = i
        save_checkpoint(sys.argv[1], net, opt, {"epoch": 0, "step": i, "iteration": i}, {}, {})
        print(i, flush=True)
""")


def leftovers(folder):
    return sorted(p.name for p in folder.glob(".checkpoint.npz.*.tmp"))


def test_sigkill_while_writing_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    killed_mid_write = False
    for _attempt in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=cli_env(tmp_path)
        )
        try:
            done = int(child.stdout.readline())  # one checkpoint is complete
            deadline = time.monotonic() + PATIENCE
            while not leftovers(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.0005)  # the next write has begun once its temporary file exists
            child.kill()
        finally:
            child.kill()
            child.wait()
        done = max([done] + [int(line) for line in child.stdout.read().split()])

        arrays, meta = read_checkpoint(path)  # intact, never a half-written file
        saved = meta["progress"]["step"]
        assert saved in (done, done + 1)  # the last completed save, or one renamed just before the kill
        assert arrays["b1"][0] == saved
        restore_checkpoint(TwoLayerNet(784, 1500, 10, backend="numpy"), Adam(), arrays, meta, path)
        if leftovers(tmp_path):
            killed_mid_write = True
            break
    assert killed_mid_write, "the kill never landed during a write"

    # The next save, by another process, removes the dead writer's temporary file.
    net = TwoLayerNet(784, 10, 10, backend="numpy")
    save_checkpoint(path, net, SGD(0.1), {"epoch": 0, "step": 0, "iteration": 0}, {}, {})
    assert leftovers(tmp_path) == []
    assert numpy.array_equal(read_checkpoint(path)[0]["W1"], net.params["W1"])


def _signalled(then):
    """A command that receives SIGTERM inside library code, which then does ``then(exc)``."""

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException as exc:  # noqa: BLE001 - what a library may do with the interrupt
            return then(exc)
        return 0

    return run


def _turn_into_import_error(exc):
    raise ImportError("initialization failed") from exc


@pytest.mark.parametrize("then", [_turn_into_import_error, lambda exc: 0], ids=["import error", "swallowed"])
def test_a_stop_signal_caught_inside_a_library_still_stops_the_command(then, capsys):
    """SIGTERM while matplotlib initialises (drawing curves.png) once surfaced as "ImportError:
    initialization failed" (exit 1) or was swallowed (exit 0); it is the stop the user asked for."""
    import argparse

    from fastnet.cli.main import run_command

    assert run_command(argparse.Namespace(run=_signalled(then))) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "fastnet: stopped by SIGTERM"


def test_a_second_signal_says_the_step_was_not_saved(sample, tmp_path):
    trainer = small_trainer(sample, tmp_path)
    signal_during_evaluation(trainer.net, count=2)
    with pytest.raises(StopNow) as stopped:
        trainer.fit()
    assert stopped.value.said == (
        "stopped at once by a second SIGINT at epoch 1, step 5/5: no checkpoint was saved for it (nor before it)"
    )


def test_a_second_signal_in_the_command_names_the_checkpoint_to_resume_from(tmp_path):
    """SIGINT then SIGTERM at once: the second stops before the first's checkpoint is written.
    Sent together, the two may be handled in either order; the line names the one handled second."""
    child = Child(*SLOW_RUN, "--out", tmp_path / "run", tmp_path=tmp_path)
    child.wait_for("epoch 1/1000")
    child.proc.send_signal(signal.SIGINT)
    child.proc.send_signal(signal.SIGTERM)
    exit_code, stderr = child.finish()
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    second = re.match(r"fastnet: stopped at once by a second (SIGINT|SIGTERM) ", line)
    assert second, line
    assert exit_code == 128 + signal.Signals[second.group(1)], line
    said = re.fullmatch(
        r"fastnet: stopped at once by a second SIG(?:INT|TERM) at (epoch \d+, step \d+/20|end of epoch \d+): "
        r"no checkpoint was saved for it; the last one \(end of epoch (\d+)\) is kept: (\S+); "
        r"resume with: fastnet train --resume (\S+)",
        line,
    )
    assert said, line
    assert said.group(3) == said.group(4) == str(tmp_path / "run" / "checkpoint.npz")
    assert read_checkpoint(said.group(3))[1]["progress"]["epoch"] == int(said.group(2))

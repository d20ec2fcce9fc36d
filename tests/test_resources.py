"""Memory and disk: a batch that cannot fit is refused before it is allocated, and a full disk
ends the run with one line while the earlier checkpoint survives."""

import os
import resource
import subprocess

import numpy
import pytest
from fastnet_cli import PATIENCE, cli_env, command, run_cli, stderr_lines
from tmpfs import small_tmpfs

from fastnet.datasets import load_dataset
from fastnet.errors import ResourceError
from fastnet.nets import DeepConvNet, MultiLayerNet, TwoLayerNet
from fastnet.optim import SGD
from fastnet.training import Trainer
from fastnet.training.checkpoint import read_checkpoint
from fastnet.training.memory import bytes_per_sample, check_batch_fits

MiB = 2**20


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample", flatten=False)


def test_batch_that_does_not_fit_is_refused_with_a_batch_that_does(sample):
    net = DeepConvNet((1, 28, 28), backend="numpy", seed=0)
    per_sample = bytes_per_sample(net, (1, 28, 28))
    free = int(per_sample * 300)  # room for about 240 samples after the 80% headroom
    with pytest.raises(ResourceError) as refused:
        Trainer(
            net,
            SGD(0.01),
            sample.x_train[:2000],
            sample.t_train[:2000],
            batch_size=1000,
            free_memory=free,
            progress=False,
            log=None,
        )
    message = str(refused.value)
    assert "batch size 1000 needs about" in message and "GiB" in message
    suggested = int(message.split("--batch-size ")[1].split()[0])
    assert suggested == 128  # the largest power of two under ~240
    check_batch_fits(net, (1, 28, 28), suggested, free=free)  # and it does fit
    trainer = Trainer(
        net,
        SGD(0.01),
        sample.x_train[:2000],
        sample.t_train[:2000],
        batch_size=suggested,
        free_memory=free,
        progress=False,
        log=None,
    )
    assert trainer.eval_batch_size < 1000  # evaluation batches shrink to fit too


def test_probing_memory_leaves_the_net_as_it_was():
    net = MultiLayerNet(20, [16, 16], 10, use_batchnorm=True, use_dropout=True, backend="numpy", seed=1)
    before = {k: v.copy() for k, v in net.state_arrays().items()}
    rng_before = {name: state["rng"] for name, state in net.layer_state().items() if "rng" in state}
    check_batch_fits(net, (20,), 100, free=10**12)
    assert {name: state["rng"] for name, state in net.layer_state().items() if "rng" in state} == rng_before
    assert len(rng_before) == 2  # both dropout layers were covered
    for key, value in net.state_arrays().items():
        assert numpy.array_equal(value, before[key]), key
    assert any(k.startswith("BatchNorm") for k in before)  # the running statistics were covered


def test_a_net_too_big_for_memory_is_named_not_blamed_on_the_batch():
    net = TwoLayerNet(784, 2000, 10, backend="numpy", seed=0)
    params = sum(v.nbytes for v in net.params.values())
    free = int(params * 2.2)  # room for the gradients (1x) but not for Adam's two slots too (3x)
    check_batch_fits(net, (784,), 1, free=free, optimizer_slots=0)
    with pytest.raises(ResourceError) as refused:
        check_batch_fits(net, (784,), 1, free=free, optimizer_slots=2)
    message = str(refused.value)
    assert "the TwoLayerNet (1,590,010 parameters; W1 is 784x2000) needs about" in message
    assert "for the net alone (parameters, gradients and 2 optimizer slot(s))" in message
    assert "use a smaller net" in message and "--batch-size" not in message


def test_the_net_counts_against_the_batch_budget():
    net = TwoLayerNet(784, 2000, 10, backend="numpy", seed=0)
    params = sum(v.nbytes for v in net.params.values())
    per_sample = bytes_per_sample(net, (784,))
    free = int((params * 3 + per_sample * 100) / 0.8)  # Adam's state and 100 samples, exactly
    check_batch_fits(net, (784,), 100, free=free, optimizer_slots=2)
    with pytest.raises(ResourceError, match="use --batch-size 64 or smaller"):
        check_batch_fits(net, (784,), 200, free=free, optimizer_slots=2)


# Written into the child's start-up (sitecustomize): at exit it records its own VmHWM, the peak of
# the memory it touched.  ru_maxrss from wait4 would not do: it keeps the high-water mark across
# fork and exec, so it reports whatever the test process held when it forked the child.
PEAK_HOOK = """
import atexit, os
def _record_peak(path=os.environ["FASTNET_TEST_PEAK_FILE"]):
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(peak)
atexit.register(_record_peak)
"""


def run_measured(args, tmp_path, preexec_fn):
    """Run the CLI; returns (exit code, stderr, the child's own peak resident memory in bytes)."""
    hook = tmp_path / "peak_hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PEAK_HOOK)
    env = cli_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env.get("PYTHONPATH", "")])
    env["FASTNET_TEST_PEAK_FILE"] = str(tmp_path / "peak_kib")
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        child = subprocess.run(command(*args), stdout=out, stderr=err, cwd=tmp_path, env=env, preexec_fn=preexec_fn)
    return child.returncode, (tmp_path / "stderr").read_text(), int((tmp_path / "peak_kib").read_text()) * 1024


def test_cli_refuses_a_huge_batch_before_allocating_it(tmp_path):
    def limit_address_space():  # a 4 GiB process, whatever the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    code, stderr, peak = run_measured(
        [
            "train",
            "--dataset",
            "sample",
            "--net",
            "deep-conv",
            "--batch-size",
            10**7,
            "--epochs",
            "1",
            "--backend",
            "numpy",
            "--quiet",
            "--out",
            tmp_path / "run",
        ],
        tmp_path,
        limit_address_space,
    )
    assert code == 2, stderr
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.strip()]
    assert "needs about" in line and "--batch-size" in line
    needed = float(line.split("needs about ")[1].split(" GiB")[0])
    assert needed > 4
    assert peak < 1024 * MiB  # the estimate came from a probe, not from trying


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: room for one small checkpoint, not for its replacement beside it."""
    with small_tmpfs(tmp_path, "256k") as mount_point:
        yield mount_point


SMALL_RUN = ["--dataset", "sample", "--limit", "300", "--backend", "numpy", "--quiet"]


def assert_disk_error_keeps_epoch_one(result, checkpoint, why):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = stderr_lines(result)
    assert "cannot write" in line and why in line and "unchanged" in line
    arrays, meta = read_checkpoint(checkpoint)
    assert meta["progress"]["epoch"] == 1
    TwoLayerNet(784, 50, 10, backend="numpy").load_params(checkpoint)


def test_full_disk_keeps_the_earlier_checkpoint(tiny_disk, tmp_path):
    result = run_cli("train", *SMALL_RUN, "--epochs", "3", "--out", tiny_disk / "run", tmp_path=tmp_path)
    assert_disk_error_keeps_epoch_one(result, tiny_disk / "run" / "checkpoint.npz", "the disk is full")
    assert not list((tiny_disk / "run").glob(".*.tmp"))  # the failed temporary file was removed


def test_file_size_limit_keeps_the_earlier_checkpoint(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    first = run_cli("train", *SMALL_RUN, "--epochs", "1", "--out", tmp_path / "run", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    before = checkpoint.read_bytes()
    assert len(before) > 100_000

    def limit_file_size():  # writes past 64 KiB fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = subprocess.run(
        command("train", "--resume", checkpoint, "--epochs", "2", "--backend", "numpy", "--quiet"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path),
        preexec_fn=limit_file_size,
        timeout=PATIENCE,
    )
    assert_disk_error_keeps_epoch_one(result, checkpoint, "file size limit")
    assert checkpoint.read_bytes() == before

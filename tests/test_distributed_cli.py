"""``mpiexec -n N fastnet train --distributed mpi``, as a user runs it: real jobs with a timeout.

Compared with the same run in one process (float64 on the embedded sample: equal to 1e-10).
Skipped with the reason where mpi4py or mpiexec is missing.
"""

import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy
import pytest
from fastnet_cli import cli_env, command

MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="mpi4py or mpiexec is missing (pip install 'fastnet[mpi]')",
)

# Batch 201 over 2 ranks: slices of 101 and 100 rows.
RUN = ("--dataset", "sample", "--dtype", "float64", "--limit", "1000", "--batch-size", "201", "--quiet")
TIMEOUT = 180


def mpi_command(n, *args):
    return [MPIEXEC, "-n", str(n), *command(*args)]


def run(cmd, tmp_path):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path, env=cli_env(tmp_path))


def arrays(path):
    with numpy.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if data[k].dtype.kind == "f"}


def assert_same_checkpoint(path, expected_path):
    got, expected = arrays(path), arrays(expected_path)
    assert got.keys() == expected.keys() and got
    for key in expected:
        numpy.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-10, err_msg=key)


def pasted(line, tmp_path):
    """The resume command printed on ``line``, run as the user would paste it."""
    words = shlex.split(line.split("resume with: ", 1)[1])
    start = words.index("fastnet")
    launcher = [MPIEXEC, *words[1:start]] if start else []
    return run([*launcher, *command(*words[start + 1 :])], tmp_path)


def interrupted_in_epoch_2(cmd, tmp_path, signum=signal.SIGINT, delay=0.0):
    """Start ``cmd``, send ``signum`` ``delay`` seconds after epoch 1 is logged; (exit status,
    stdout, stderr)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=cli_env(tmp_path)
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("epoch 1/"):
                break
        time.sleep(delay)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(seen) + stdout, stderr


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The oracle: two epochs in one process, without --distributed."""
    folder = tmp_path_factory.mktemp("single")
    proc = run(command("train", *RUN, "--epochs", "2", "--out", "one"), folder)
    assert proc.returncode == 0, proc.stderr
    return folder / "one" / "checkpoint.npz"


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ranks")
    proc = run(mpi_command(2, "train", *RUN, "--epochs", "2", "--out", "two", "--distributed", "mpi"), folder)
    assert proc.returncode == 0, proc.stderr
    return proc, folder / "two"


def test_two_ranks_write_the_checkpoint_of_one_process(single, two_ranks):
    _proc, out = two_ranks
    assert_same_checkpoint(out / "checkpoint.npz", single)


def test_outputs_are_written_once_with_one_report(two_ranks):
    proc, out = two_ranks
    assert sorted(p.name for p in out.iterdir() if p.name != ".fastnet.lock") == [
        "checkpoint.npz",
        "curves.png",
        "history.csv",
        "history.json",
    ]
    for once in ("final accuracy:", "epoch 1/2:", "epoch 2/2:", "outputs:", "data:", "net:"):
        assert sum(line.startswith(once) for line in proc.stdout.splitlines()) == 1, (once, proc.stdout)
    assert "rank 0 of 2" in proc.stdout
    assert [line for line in proc.stderr.splitlines() if line.strip()] == []
    history = json.loads((out / "history.json").read_text())
    assert history["history"]["epoch"] == [1, 2]
    assert history["config"]["ranks"] == 2 and history["config"]["distributed"] == "mpi"


def test_a_two_rank_checkpoint_resumes_in_one_process(single, tmp_path):
    proc = run(mpi_command(2, "train", *RUN, "--epochs", "1", "--out", "half", "--distributed", "mpi"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = run(command("train", "--resume", "half/checkpoint.npz", "--epochs", "2", "--quiet"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_same_checkpoint(tmp_path / "half" / "checkpoint.npz", single)


def test_sigint_to_mpiexec_saves_once_and_the_printed_resume_command_finishes_the_run(single, tmp_path):
    # Small batches make the epoch long enough to be interrupted in its middle.
    args = ("--dataset", "sample", "--dtype", "float64", "--limit", "1000", "--batch-size", "5", "--quiet")
    returncode, stdout, stderr = interrupted_in_epoch_2(
        mpi_command(2, "train", *args, "--epochs", "4", "--out", "stop", "--distributed", "mpi"), tmp_path
    )
    assert returncode == 130, stderr
    said = [line for line in stderr.splitlines() if "interrupted by SIGINT" in line]
    assert len(said) == 1 and "checkpoint saved" in said[0], stderr
    assert "resume with: mpiexec -n 2 fastnet train --resume stop/checkpoint.npz --distributed mpi" in said[0]
    assert "epoch 4/4" not in stdout  # stopped inside the run, not after it
    resumed = pasted(said[0], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    oracle = run(command("train", *args, "--epochs", "4", "--out", "straight"), tmp_path)
    assert oracle.returncode == 0, oracle.stderr
    assert_same_checkpoint(tmp_path / "stop" / "checkpoint.npz", tmp_path / "straight" / "checkpoint.npz")


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            kids = [int(k) for k in task.read_text().split()]
            found += kids
            todo += kids
    return found


def rank_of(pid):
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(b"PMI_RANK="):
            return int(entry.split(b"=", 1)[1])
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the ranks")
def test_a_rank_killed_during_training_ends_the_job_nonzero(tmp_path):
    args = ("--dataset", "sample", "--limit", "1000", "--batch-size", "5", "--epochs", "50", "--quiet")
    proc = subprocess.Popen(
        mpi_command(2, "train", *args, "--out", "killed", "--distributed", "mpi"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    try:
        said = {}
        for line in proc.stdout:
            if line.startswith("process ids by rank: "):
                said = dict(pair.split(": ") for pair in line.split(": ", 1)[1].strip().split(", "))
            if line.startswith("threads:"):
                break
        victims = [pid for pid in descendants(proc.pid) if rank_of(pid) == 1]
        assert victims, "rank 1 not found"
        assert said == {"0": said.get("0"), "1": str(victims[-1])}  # the launcher's banner names only the PID
        started = time.monotonic()
        os.kill(victims[-1], signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode != 0 and time.monotonic() - started < 60
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_job_without_mpi_is_one_line(tmp_path):
    env = cli_env(tmp_path, MPI4PY_LIBMPI="/nonexistent/libmpi.so")
    proc = subprocess.run(
        command("train", *RUN, "--epochs", "1", "--out", "x", "--distributed", "mpi"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env=env,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("fastnet: error: communicator 'mpi' is unavailable: cannot load MPI library")
    assert not (tmp_path / "x").exists()


def test_bench_distributed_writes_both_sides_to_json(tmp_path):
    from fastnet.distributed.threads import available_cores, threads_per_rank

    proc = run(
        command(
            "bench",
            "--distributed",
            "2",
            "--workloads",
            "mlp_step",
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--out",
            "bench",
        ),
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "bench" / "distributed.json").read_text())
    assert result["kind"] == "distributed" and result["ranks"] == 2 and "machine" in result
    entry = result["workloads"]["mlp_step"]
    one, two = entry["one_process"], entry["2_ranks"]
    assert (one["ranks"], two["ranks"]) == (1, 2)
    assert one["threads"] == available_cores() and two["threads"] == threads_per_rank(2)
    assert one["samples_per_s"] > 0 and two["samples_per_s"] > 0
    assert entry["speedup"] == pytest.approx(two["samples_per_s"] / one["samples_per_s"])
    assert 0 < two["comm_share"] < 1 and one["comm_share"] < 0.01  # one process sends nothing
    assert "MLP 784-1000-1000-10" in proc.stdout and "comm share" in proc.stdout


def test_bench_distributed_refuses_an_inference_workload_in_one_line(tmp_path):
    proc = run(command("bench", "--distributed", "--workloads", "two_layer_infer", "--out", "b"), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--distributed times training steps" in lines[0]


def test_a_mistake_every_rank_finds_is_one_line_from_rank_0(two_ranks, tmp_path):
    _proc, out = two_ranks  # a folder that already holds a run
    proc = run(mpi_command(2, "train", *RUN, "--epochs", "1", "--out", str(out), "--distributed", "mpi"), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("fastnet: error: rank 0 (and 1 other rank(s)): ") and "already holds a run" in lines[0]


def test_sigterm_to_mpiexec_stops_every_rank_at_one_step_and_lr_scale_is_announced(tmp_path):
    args = ("--dataset", "sample", "--limit", "1000", "--batch-size", "5", "--epochs", "20", "--quiet")
    returncode, stdout, stderr = interrupted_in_epoch_2(
        mpi_command(2, "train", *args, "--out", "term", "--distributed", "mpi", "--lr-scale", "linear"),
        tmp_path,
        signal.SIGTERM,
    )
    assert "learning rate scaled linearly with the ranks: 0.1 x 2 = 0.2\n" in stdout
    said = [line for line in stderr.splitlines() if line.strip()]
    assert returncode == 143 and len(said) == 1 and "interrupted by SIGTERM" in said[0], stderr
    assert json.loads((tmp_path / "term" / "history.json").read_text())["config"]["lr_scale"] == "linear"


def test_dropout_streams_resume_exactly_on_as_many_ranks_and_one_process_says_it_differs(tmp_path):
    args = (
        "--net",
        "mlp",
        "--dropout",
        "0.3",
        "--dataset",
        "sample",
        "--dtype",
        "float64",
        "--limit",
        "600",
        "--batch-size",
        "100",
        "--quiet",
        "--distributed",
        "mpi",
    )
    straight = run(mpi_command(2, "train", *args, "--epochs", "2", "--out", "straight"), tmp_path)
    half = run(mpi_command(2, "train", *args, "--epochs", "1", "--out", "half"), tmp_path)
    assert straight.returncode == 0 and half.returncode == 0, straight.stderr + half.stderr
    shutil.copytree(tmp_path / "half", tmp_path / "alone")
    resumed = run(
        mpi_command(2, "train", "--resume", "half/checkpoint.npz", "--epochs", "2", "--quiet", "--distributed", "mpi"),
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "not bitwise" not in resumed.stdout
    got, expected = arrays(tmp_path / "half" / "checkpoint.npz"), arrays(tmp_path / "straight" / "checkpoint.npz")
    assert all(numpy.array_equal(got[k], expected[k]) for k in expected)
    alone = run(command("train", "--resume", "alone/checkpoint.npz", "--epochs", "2", "--quiet"), tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert "note: the checkpoint was written by 2 ranks" in alone.stdout


def test_dropout_streams_resume_exactly_after_a_signal_in_the_middle_of_an_epoch(tmp_path):
    # The stream states are gathered at epoch ends and when a signal stops the run: this stop
    # falls inside epoch 2 (600 steps; the signal comes a moment after epoch 1 is logged, so
    # it does not meet the ranks still at the epoch's end), so the saved states must be those
    # of the step it stopped after.
    args = (
        "--net",
        "mlp",
        "--dropout",
        "0.3",
        "--dataset",
        "sample",
        "--dtype",
        "float64",
        "--limit",
        "3000",
        "--batch-size",
        "5",
        "--quiet",
        "--distributed",
        "mpi",
    )
    returncode, _stdout, stderr = interrupted_in_epoch_2(
        mpi_command(2, "train", *args, "--epochs", "3", "--out", "stop"), tmp_path, delay=0.3
    )
    said = [line for line in stderr.splitlines() if "interrupted by SIGINT" in line]
    assert returncode == 130 and len(said) == 1 and "at epoch 2, step" in said[0], stderr
    resumed = pasted(said[0], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not bitwise" not in resumed.stdout
    straight = run(mpi_command(2, "train", *args, "--epochs", "3", "--out", "straight"), tmp_path)
    assert straight.returncode == 0, straight.stderr
    got, expected = arrays(tmp_path / "stop" / "checkpoint.npz"), arrays(tmp_path / "straight" / "checkpoint.npz")
    assert got.keys() == expected.keys() and all(numpy.array_equal(got[k], expected[k]) for k in expected)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="needs a machine where CuPy is missing")
def test_nccl_failing_on_every_rank_is_one_line_from_rank_0(tmp_path):
    started = time.monotonic()
    proc = run(mpi_command(2, "train", *RUN, "--epochs", "1", "--out", "x", "--distributed", "nccl"), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and time.monotonic() - started < 60, proc.stderr
    assert lines == [
        "fastnet: error: communicator 'nccl' is unavailable: rank 0 (and 1 other rank(s)): "
        "CuPy is not installed; pip install 'fastnet[cuda12]' or 'fastnet[cuda13]' "
        "(CuPy and the nvidia-nccl wheel)"
    ], lines
    assert not (tmp_path / "x").exists()


def test_a_busy_output_folder_ends_the_job_with_one_line_and_no_abort(tmp_path):
    # Only rank 0 takes the folder's lock, after the ranks have met: its refusal is shared, so
    # every rank leaves alike instead of rank 0 aborting the job (MPI's abort text).
    from fastnet.training.lock import output_folder_lock

    with output_folder_lock(tmp_path / "busy"):
        proc = run(mpi_command(2, "train", *RUN, "--epochs", "1", "--out", "busy", "--distributed", "mpi"), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("fastnet: error: rank 0: ") and "in use by another fastnet run" in lines[0]
    assert not (tmp_path / "busy" / "checkpoint.npz").exists()


def test_lr_scale_without_distributed_is_one_line(tmp_path):
    proc = run(command("train", *RUN, "--epochs", "1", "--out", "x", "--lr-scale", "linear"), tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [
        "fastnet: error: --lr-scale scales by the number of ranks: it needs --distributed (under mpiexec)"
    ]


def mpmd_command(rank0_args, rank1_args):
    """``mpiexec -n 1 fastnet A : -n 1 fastnet B``: two ranks started with different options."""
    return [MPIEXEC, "-n", "1", *command(*rank0_args), ":", "-n", "1", *command(*rank1_args)]


def one_line_within(cmd, tmp_path, seconds=60):
    started = time.monotonic()
    proc = run(cmd, tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and time.monotonic() - started < seconds, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    "option",
    [("--seed", "1"), ("--epochs", "2"), ("--batch-size", "100"), ("--dtype", "float32"), ("--val-split", "0.2")],
    ids=lambda option: option[0],
)
def test_ranks_started_with_different_options_stop_with_one_line_from_rank_0(tmp_path, option):
    # Before: wrong weights with exit 0, MPICH's "Message truncated" stack, a hang or a traceback.
    args = ("train", *RUN, "--epochs", "1", "--out", "x", "--distributed", "mpi")
    line = one_line_within(mpmd_command(args, (*args, *option)), tmp_path)
    assert line.startswith(f"fastnet: error: rank 1 was started with other settings than rank 0: {option[0]} ")
    assert line.endswith("start every rank with the same options")
    assert not (tmp_path / "x" / "checkpoint.npz").exists()


def test_resume_on_one_rank_only_stops_with_one_line(tmp_path):
    args = ("train", *RUN, "--out", "run", "--distributed", "mpi")
    assert run(mpi_command(2, *args, "--epochs", "1"), tmp_path).returncode == 0
    resumed = ("train", "--resume", "run/checkpoint.npz", "--epochs", "2", "--quiet", "--distributed", "mpi")
    fresh = ("train", *RUN, "--epochs", "2", "--out", "other", "--distributed", "mpi")
    line = one_line_within(mpmd_command(resumed, fresh), tmp_path)
    assert "rank 1 was started with other settings than rank 0: --resume (none)" in line
    assert "(rank 0: a checkpoint at epoch 1, step 0)" in line


@pytest.mark.parametrize("lone_rank", [0, 1])
def test_distributed_on_one_rank_only_stops_with_one_line(tmp_path, lone_rank):
    args = ("train", *RUN, "--epochs", "1", "--out", "x")
    pair = [(*args, "--distributed", "mpi"), (*args, "--distributed", "mpi")]
    pair[lone_rank] = args
    line = one_line_within(mpmd_command(*pair), tmp_path)
    assert line == (
        f"fastnet: error: rank {lone_rank}: started without --distributed, unlike the other ranks; "
        f"start every rank with the same options"
    )
    assert not (tmp_path / "x" / "checkpoint.npz").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket", "dangling link", "link loop"])
def test_a_lock_file_that_is_not_a_file_is_one_line_from_rank_0(tmp_path, kind):
    import socket

    lock = tmp_path / "out" / ".fastnet.lock"
    lock.parent.mkdir()
    if kind == "directory":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(lock))
    elif kind == "dangling link":
        lock.symlink_to(tmp_path / "nowhere")
    else:
        lock.symlink_to(lock)
    line = one_line_within(
        mpi_command(2, "train", *RUN, "--epochs", "1", "--out", "out", "--distributed", "mpi"), tmp_path
    )
    assert line.startswith("fastnet: error: rank 0: ") and "lock file" in line and "remove it and run again" in line
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


def test_a_damaged_dropout_state_of_one_rank_is_one_line(tmp_path):
    from fastnet.serialization import save_arrays
    from fastnet.training.checkpoint import read_checkpoint

    args = ("--net", "mlp", "--dropout", "0.3", "--dataset", "sample", "--limit", "400", "--batch-size", "100")
    made = run(
        mpi_command(2, "train", *args, "--epochs", "1", "--quiet", "--out", "run", "--distributed", "mpi"), tmp_path
    )
    assert made.returncode == 0, made.stderr
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    arrays, meta = read_checkpoint(checkpoint)
    for state in meta["progress"]["rank_layer_states"][1].values():
        state["rng"]["state"]["state"] = -1  # a PCG64 state out of its range
    save_arrays(checkpoint, arrays, meta)
    resumed = ("train", "--resume", "run/checkpoint.npz", "--epochs", "2", "--quiet", "--distributed", "mpi")
    line = one_line_within(mpi_command(2, *resumed), tmp_path)
    assert line.startswith("fastnet: error: rank 1: the checkpoint's dropout state of this rank is damaged (")

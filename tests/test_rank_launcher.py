"""``fastnet train --ranks N``: the supervised job, with real mpiexec jobs and real signals.

Each test is bounded (a killed job ends within a few seconds; a hung one fails at the timeout).
Skipped with the reason where mpi4py or mpiexec is missing.
"""

import importlib.util
import os
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
# Small batches: 200 steps an epoch, long enough to be stopped in the middle of one.
LONG = ("--dataset", "sample", "--dtype", "float64", "--limit", "1000", "--batch-size", "5", "--quiet")
TIMEOUT = 60


def run(cmd, tmp_path):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path, env=cli_env(tmp_path))


def arrays(path):
    with numpy.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if data[k].dtype.kind == "f"}


class Launched:
    """``fastnet train --ranks 2 ...`` running, its stdout read up to a line, its ranks known."""

    def __init__(self, tmp_path, *args, env=None):
        self.proc = subprocess.Popen(
            command("train", "--ranks", "2", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env or cli_env(tmp_path),
        )
        self.stdout = []
        self.pids = {}

    def read_until(self, prefix):
        for line in self.proc.stdout:
            self.stdout.append(line)
            if line.startswith("process ids by rank: "):
                pairs = line.split(": ", 1)[1].strip().split(", ")
                self.pids = {int(rank): int(pid) for rank, pid in (pair.split(": ") for pair in pairs)}
            if line.startswith(prefix):
                return line
        raise AssertionError(f"ended before {prefix!r}: {''.join(self.stdout)} {self.proc.stderr.read()}")

    def finish(self):
        try:
            stdout, stderr = self.proc.communicate(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.proc.returncode, "".join(self.stdout) + stdout, stderr


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def running(pid):
    """Alive and not a zombie (a reaper may be slow to collect the dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize(
    "signum", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS], ids=lambda s: s.name
)
def test_a_dead_rank_is_named_in_one_last_line_with_its_signal_and_the_checkpoint(tmp_path, signum):
    job = Launched(tmp_path, *LONG, "--epochs", "50", "--out", "killed")
    job.read_until("epoch 1/")
    victim = job.pids[1]
    started = time.monotonic()
    os.kill(victim, signum)
    code, stdout, stderr = job.finish()
    name = signal.Signals(signum).name
    assert code == 128 + signum and time.monotonic() - started < 20, stderr
    said = lines(stderr)
    # A SIGKILLed rank's status may be reaped before it is read; the line then says what kills that way.
    died = f"died of {name}" + (" (kill -9 or the out-of-memory killer)" if signum == signal.SIGKILL else "")
    assert said[-1] in {
        f"fastnet: rank 1 (PID {victim}) {how}, and the job was ended; the last whole checkpoint is "
        f"killed/checkpoint.npz (end of epoch 1); resume with: fastnet train --ranks 2 --resume killed/checkpoint.npz"
        for how in {f"died of {name}", died}
    }, stderr
    assert sum("fastnet:" in line for line in said) == 1, stderr
    assert "BAD TERMINATION" not in stdout and "EXIT STRING" not in stdout, stdout
    from fastnet.training.checkpoint import read_checkpoint

    _arrays, meta = read_checkpoint(tmp_path / "killed" / "checkpoint.npz")
    assert meta["progress"]["epoch"] == 1


def test_a_second_sigint_ends_the_job_at_once_in_one_line_with_nothing_left_running(tmp_path):
    job = Launched(tmp_path, *LONG, "--epochs", "50", "--out", "stop")
    job.read_until("epoch 1/")
    everyone = descendants(job.proc.pid)  # mpiexec, its proxy and the ranks
    assert set(job.pids.values()) <= set(everyone)
    # Rank 0 stopped (as a hung rank would be): the first SIGINT cannot finish the step, so the
    # second always finds the job running.  (Two signals sent at once would arrive as one.)
    os.kill(job.pids[0], signal.SIGSTOP)
    started = time.monotonic()
    job.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    job.proc.send_signal(signal.SIGINT)
    code, stdout, stderr = job.finish()
    assert code == 130 and time.monotonic() - started < 10, stderr
    said = lines(stderr)
    assert len(said) == 1, stderr
    assert said[0].startswith("fastnet: stopped at once by a second SIGINT: the job was ended without saving")
    assert said[0].endswith(
        "the last whole checkpoint is stop/checkpoint.npz (end of epoch 1); "
        "resume with: fastnet train --ranks 2 --resume stop/checkpoint.npz"
    ), said
    assert "assert" not in (stdout + stderr).lower() and "BAD TERMINATION" not in stdout
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in everyone) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in everyone if running(pid)]


def test_a_first_sigint_saves_once_and_its_resume_command_finishes_the_run(tmp_path):
    job = Launched(tmp_path, *LONG, "--epochs", "3", "--out", "stop")
    job.read_until("epoch 1/")
    job.proc.send_signal(signal.SIGINT)
    code, stdout, stderr = job.finish()
    said = lines(stderr)
    assert code == 130 and len(said) == 1 and "interrupted by SIGINT" in said[0], stderr
    resume = "resume with: fastnet train --ranks 2 --resume stop/checkpoint.npz"
    assert said[0].endswith(resume) and "checkpoint saved" in said[0], said
    assert "epoch 3/3" not in stdout
    resumed = run(command(*said[0].split("resume with: fastnet ", 1)[1].split()), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    oracle = run(command("train", *LONG, "--epochs", "3", "--out", "straight"), tmp_path)
    assert oracle.returncode == 0, oracle.stderr
    got, expected = arrays(tmp_path / "stop" / "checkpoint.npz"), arrays(tmp_path / "straight" / "checkpoint.npz")
    assert got.keys() == expected.keys() and got
    for key in expected:
        numpy.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-10, err_msg=key)


def test_a_normal_run_is_the_run_of_mpiexec_by_hand(tmp_path):
    supervised = run(command("train", "--ranks", "2", *RUN, "--epochs", "2", "--out", "ranks"), tmp_path)
    by_hand = run(
        [MPIEXEC, "-n", "2", *command("train", *RUN, "--epochs", "2", "--out", "hand", "--distributed", "mpi")],
        tmp_path,
    )
    assert supervised.returncode == 0 and by_hand.returncode == 0, supervised.stderr + by_hand.stderr
    assert lines(supervised.stderr) == [] and lines(by_hand.stderr) == []
    got, expected = arrays(tmp_path / "ranks" / "checkpoint.npz"), arrays(tmp_path / "hand" / "checkpoint.npz")
    assert got.keys() == expected.keys() and all(numpy.array_equal(got[k], expected[k]) for k in expected)

    def shape(text, out):  # what differs by design: the process ids, the times, the folder
        keep = ("process ids", "epoch ", "time:", "BLAS:")
        return [line.replace(out, "OUT") for line in text.splitlines() if not line.startswith(keep)]

    assert shape(supervised.stdout, "ranks") == shape(by_hand.stdout, "hand")


@pytest.mark.parametrize("count", ["0", "-1", "many", "100000"])
def test_a_silly_rank_count_is_one_line(tmp_path, count):
    proc = run(command("train", "--ranks", count, *RUN, "--epochs", "1"), tmp_path)
    said = lines(proc.stderr)
    assert proc.returncode == 2 and len(said) == 1 and "--ranks" in said[0] and "a rank count from 1 to" in said[0]


def test_ranks_under_mpiexec_is_one_line(tmp_path):
    proc = run([MPIEXEC, "-n", "2", *command("train", "--ranks", "2", *RUN, "--epochs", "1", "--out", "x")], tmp_path)
    said = lines(proc.stderr)
    assert proc.returncode == 2 and said == [
        "fastnet: error: --ranks N starts mpiexec itself: run 'fastnet train --ranks N ...' without mpiexec, "
        "or 'mpiexec -n N fastnet train --distributed mpi ...' without --ranks"
    ], proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_rank_that_exits_without_a_word_ends_the_job_in_one_line(tmp_path):
    # MPICH ends the job only when a rank dies of a signal: a rank that exits 5 on its own would
    # leave the others waiting in the allreduce forever.  Rank 1 exits once the test says so.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, threading, time\n"
        "def _exit_when_told(flag):\n"
        "    while not os.path.exists(flag):\n"
        "        time.sleep(0.02)\n"
        "    os._exit(5)\n"
        "if os.environ.get('PMI_RANK') == '1' and os.environ.get('EXIT_FLAG'):\n"
        "    threading.Thread(target=_exit_when_told, args=(os.environ['EXIT_FLAG'],), daemon=True).start()\n"
    )
    env = cli_env(tmp_path, EXIT_FLAG=str(tmp_path / "exit-now"))
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    job = Launched(tmp_path, *LONG, "--epochs", "50", "--out", "quit", env=env)
    job.read_until("epoch 1/")
    victim = job.pids[1]
    started = time.monotonic()
    (tmp_path / "exit-now").touch()
    code, _stdout, stderr = job.finish()
    assert code == 4 and time.monotonic() - started < 20, stderr
    # Its exit code is read from the process table while the launcher of MPICH has not reaped it yet.
    last = lines(stderr)[-1]
    assert last.startswith(
        (
            f"fastnet: rank 1 (PID {victim}) exited with code 5 without saying why",
            f"fastnet: rank 1 (PID {victim}) exited without saying why",
        )
    ), stderr
    assert "the last whole checkpoint is quit/checkpoint.npz (end of epoch 1)" in last, stderr

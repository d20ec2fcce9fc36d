"""One run per output folder, with real concurrent ``fastnet train`` processes."""
import signal
import socket
import subprocess

import pytest
from fastnet_cli import PATIENCE, Child, cli_env, command, run_cli, stderr_lines

from fastnet.errors import InputError
from fastnet.training.lock import LOCK_NAME, output_folder_lock
from fastnet.training.checkpoint import read_checkpoint

LONG = ["--dataset", "sample", "--backend", "numpy", "--hidden", "30", "--quiet"]


def test_two_runs_started_together_into_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "out"
    args = ["train", *LONG, "--epochs", "3", "--out", out]
    procs = [subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path, env=cli_env(tmp_path)) for _ in range(2)]
    results = [(p.wait(timeout=PATIENCE), p.stdout.read(), p.stderr.read(), p.pid) for p in procs]
    codes = sorted(code for code, *_ in results)
    assert codes == [0, 2], results
    (_, _, _, winner), = [r for r in results if r[0] == 0]
    (_, _, refused, _), = [r for r in results if r[0] == 2]
    lines = [line for line in refused.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    # Refused by the lock while the winner ran, or by the finished run it left (both name the folder).
    assert (f"in use by another fastnet run (pid {winner} on {socket.gethostname()}" in lines[0]
            or "already holds a run" in lines[0]), lines
    assert str(out) in lines[0]
    assert read_checkpoint(out / "checkpoint.npz")[1]["progress"]["epoch"] == 3
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_a_run_into_a_busy_folder_exits_2_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    holder = Child("train", *LONG, "--limit", "300", "--epochs", "100000", "--out", out, tmp_path=tmp_path)
    try:
        holder.wait_for("epoch 1/")
        assert str(holder.proc.pid) in (out / LOCK_NAME).read_text()
        second = run_cli("train", *LONG, "--limit", "300", "--epochs", "1", "--out", out, "--overwrite",
                         tmp_path=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        lines = stderr_lines(second)
        assert len(lines) == 1 and f"pid {holder.proc.pid} on {socket.gethostname()}" in lines[0], lines
        assert "choose another --out" in lines[0]
    finally:
        holder.proc.send_signal(signal.SIGINT)
        code, _ = holder.finish()
    assert code == 130  # the holder was not disturbed: it saved and stopped as asked


def test_the_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "out"
    killed = Child("train", *LONG, "--limit", "300", "--epochs", "100000", "--out", out, tmp_path=tmp_path)
    killed.wait_for("epoch 1/")
    killed.proc.kill()  # SIGKILL: no cleanup, the lock file stays behind
    killed.finish()
    assert f"pid {killed.proc.pid}" in (out / LOCK_NAME).read_text()
    epoch = read_checkpoint(out / "checkpoint.npz")[1]["progress"]["epoch"]
    resumed = run_cli("train", "--resume", out / "checkpoint.npz", "--epochs", epoch + 1, "--quiet",
                      tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"took over the stale lock of {out} (pid {killed.proc.pid} on" in resumed.stdout
    assert not (out / LOCK_NAME).exists()


def test_the_lock_is_reentrant_in_one_process_and_leaves_no_empty_folder(tmp_path):
    folder = tmp_path / "new"
    with output_folder_lock(folder):
        with output_folder_lock(folder):  # the command, then its trainer
            assert (folder / LOCK_NAME).exists()
        assert (folder / LOCK_NAME).exists()
    assert not folder.exists()  # created for the lock, nothing written: removed again
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(InputError, match="cannot create the output folder"):
        with output_folder_lock(tmp_path / "file.txt" / "x"):
            pass

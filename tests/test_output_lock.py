"""One run per output folder, with real concurrent ``fastnet train`` processes."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastnet_cli import PATIENCE, Child, cli_env, command, run_cli, stderr_lines

from fastnet.errors import InputError
from fastnet.training.checkpoint import read_checkpoint
from fastnet.training.lock import LOCK_NAME, output_folder_lock

LONG = ["--dataset", "sample", "--backend", "numpy", "--hidden", "30", "--quiet"]


def test_two_runs_started_together_into_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "out"
    args = ["train", *LONG, "--epochs", "3", "--out", out]
    procs = [
        subprocess.Popen(
            command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=cli_env(tmp_path),
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=PATIENCE), p.stdout.read(), p.stderr.read(), p.pid) for p in procs]
    codes = sorted(code for code, *_ in results)
    assert codes == [0, 2], results
    ((_, _, _, winner),) = [r for r in results if r[0] == 0]
    ((_, _, refused, _),) = [r for r in results if r[0] == 2]
    lines = [line for line in refused.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    # Refused by the lock while the winner ran, or by the finished run it left (both name the folder).
    assert (
        f"in use by another fastnet run (pid {winner} on {socket.gethostname()}" in lines[0]
        or "already holds a run" in lines[0]
    ), lines
    assert str(out) in lines[0]
    assert read_checkpoint(out / "checkpoint.npz")[1]["progress"]["epoch"] == 3
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_a_run_into_a_busy_folder_exits_2_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    holder = Child("train", *LONG, "--limit", "300", "--epochs", "100000", "--out", out, tmp_path=tmp_path)
    try:
        holder.wait_for("epoch 1/")
        assert str(holder.proc.pid) in (out / LOCK_NAME).read_text()
        second = run_cli(
            "train", *LONG, "--limit", "300", "--epochs", "1", "--out", out, "--overwrite", tmp_path=tmp_path
        )
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
    resumed = run_cli("train", "--resume", out / "checkpoint.npz", "--epochs", epoch + 1, "--quiet", tmp_path=tmp_path)
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


def test_a_symlinked_lock_file_is_refused_and_the_linked_file_is_untouched(tmp_path):
    """A link planted as the lock must not make the run write outside --out."""
    out, notes = tmp_path / "run", tmp_path / "notes.txt"
    out.mkdir()
    notes.write_text("my notes\n")
    (out / LOCK_NAME).symlink_to(notes)
    result = run_cli("train", *LONG, "--limit", "200", "--epochs", "1", "--out", out, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = stderr_lines(result)
    assert "is a symbolic link" in line and "remove it" in line, line
    assert notes.read_text() == "my notes\n"
    assert (out / LOCK_NAME).is_symlink()  # left as the user made it
    assert not (out / "checkpoint.npz").exists()


def _plant(kind, path, tmp_path):
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        return server
    elif kind == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "symlink loop":
        path.symlink_to(path)
    return None


@pytest.mark.parametrize(
    "kind, says",
    [
        ("directory", "a directory"),
        ("FIFO", "a FIFO"),
        ("socket", "a socket"),
        ("dangling symlink", "symbolic link"),
        ("symlink loop", "symbolic link"),
    ],
)
def test_a_lock_file_that_is_not_a_file_is_one_clear_error(tmp_path, kind, says):
    folder = tmp_path / "run"
    folder.mkdir()
    keep = _plant(kind, folder / LOCK_NAME, tmp_path)
    try:
        with pytest.raises(InputError, match=f"lock file .*{says}.*remove it") as raised:
            with output_folder_lock(folder):
                pass
        assert "\n" not in str(raised.value)
        assert not (tmp_path / "nowhere").exists()  # a dangling link is not followed to create its target
    finally:
        if keep is not None:
            keep.close()


def test_a_taken_over_lock_holds_only_the_new_holder_line(tmp_path):
    """Reading the old holder moved the file offset; the new line must still start at byte 0."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("pid 999999 on elsewhere, since 2026-01-01 00:00:00 and some more words\n")
    heard = []
    with output_folder_lock(folder, say=heard.append):
        content = (folder / LOCK_NAME).read_bytes()
    assert b"\0" not in content and content.startswith(f"pid {os.getpid()} on ".encode()), content
    assert "took over the stale lock" in heard[0]


def test_the_windows_branch_locks_without_fcntl(tmp_path):
    """No fcntl on Windows: the lock takes msvcrt's byte-range branch, away from the holder line,
    and a second process is refused while the first holds it (simulated: ``tests/windows_sim.py``)."""
    folder = tmp_path / "run"
    hold = (
        "import sys, windows_sim; windows_sim.enter()\n"
        "from fastnet.training.lock import output_folder_lock\n"
        f"with output_folder_lock({str(folder)!r}):\n"
        "    print('locked', flush=True); sys.stdin.readline()\n"
        "print('released', flush=True)"
    )
    env = cli_env(tmp_path, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), cli_env()["PYTHONPATH"]]))
    holder = subprocess.Popen(
        [sys.executable, "-c", hold],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        assert (folder / LOCK_NAME).read_text().startswith(f"pid {holder.pid} on ")  # readable while held
        second = subprocess.run(
            [sys.executable, "-c", hold], input="", capture_output=True, text=True, env=env, timeout=PATIENCE
        )
        assert second.returncode == 1 and f"in use by another fastnet run (pid {holder.pid}" in second.stderr
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=PATIENCE) == 0, holder.stderr.read()
    assert holder.stdout.read().strip() == "released"
    assert not (folder / LOCK_NAME).exists()  # removed after unlocking, as Windows requires


def test_removing_the_lock_file_during_a_run_does_not_free_the_folder(tmp_path):
    """The lock is on the folder itself: ``rm .fastnet.lock`` leaves it held, and a second run,
    even with --overwrite, is still refused."""
    out = tmp_path / "out"
    holder = Child("train", *LONG, "--limit", "300", "--epochs", "100000", "--out", out, tmp_path=tmp_path)
    try:
        holder.wait_for("epoch 1/")
        (out / LOCK_NAME).unlink()
        second = run_cli(
            "train", *LONG, "--limit", "300", "--epochs", "1", "--out", out, "--overwrite", tmp_path=tmp_path
        )
        assert second.returncode == 2, second.stderr
        (line,) = stderr_lines(second)
        assert f"{out} is in use by another fastnet run" in line, line
    finally:
        holder.proc.send_signal(signal.SIGINT)
        holder.finish()


@pytest.mark.parametrize("below", ["", "run"])
def test_an_output_folder_in_a_symlink_loop_is_one_line(tmp_path, below):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    out = tmp_path / "loop" / below if below else tmp_path / "loop"
    result = run_cli("train", *LONG, "--limit", "200", "--epochs", "1", "--out", out, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = stderr_lines(result)
    assert "choose another --out" in line and "Symlink loop" in line, line

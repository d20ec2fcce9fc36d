"""A resume uses what the checkpoint recorded (backend, settings, data folder), the printed
resume command works when pasted into a shell, and a checkpoint's recorded data folder is read,
never written, and never silently replaced by other data."""

import shlex
import shutil
import signal
import sys

import numpy
from fastnet_cli import Child, cli_env, run_cli, stderr_lines

from fastnet.serialization import save_arrays
from fastnet.training.checkpoint import read_checkpoint

TWO_LAYER = ["--dataset", "sample", "--limit", "10000", "--hidden", "30", "--quiet"]


def test_pasted_resume_command_continues_bitwise_on_the_recorded_backend(tmp_path):
    """The numpy run resumes on numpy although --backend auto would pick numba, and the quoted
    command survives an --out with spaces and a quote in it."""
    out = tmp_path / "my runs" / "it's here"
    child = Child("train", *TWO_LAYER, "--backend", "numpy", "--epochs", "4", "--out", out, tmp_path=tmp_path)
    child.wait_for("epoch 1/4")
    child.proc.send_signal(signal.SIGINT)
    code, stderr = child.finish()
    assert code == 130, stderr
    printed = stderr.strip().splitlines()[-1].split("resume with: ", 1)[1]
    words = shlex.split(printed)
    assert words[:3] == ["fastnet", "train", "--resume"] and words[3] == str(out / "checkpoint.npz")

    import subprocess

    resumed = subprocess.run(
        [sys.executable, "-m", "fastnet", *words[1:], "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(tmp_path),
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "backend: numpy" in resumed.stdout and "resuming" in resumed.stdout
    straight = run_cli(
        "train", *TWO_LAYER, "--backend", "numpy", "--epochs", "4", "--out", tmp_path / "straight", tmp_path=tmp_path
    )
    assert straight.returncode == 0, straight.stderr
    a, meta_a = read_checkpoint(out / "checkpoint.npz")
    b, meta_b = read_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    assert meta_a["backend"] == meta_b["backend"] == "numpy"
    assert meta_a["progress"]["epoch"] == 4 and a.keys() == b.keys()
    for key in a:
        assert numpy.array_equal(a[key], b[key]), key


def test_a_resume_on_another_backend_says_so(tmp_path):
    first = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        tmp_path / "run",
        tmp_path=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    again = run_cli(
        "train",
        "--resume",
        tmp_path / "run" / "checkpoint.npz",
        "--epochs",
        "2",
        "--backend",
        "numba",
        "--quiet",
        tmp_path=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "trained on the numpy backend and continues on numba" in again.stdout


def _copy_mnist(mnist_dir, folder):
    folder.mkdir(parents=True)
    for path in mnist_dir.iterdir():
        if path.name.endswith(".gz"):
            shutil.copy(path, folder / path.name)


def test_recorded_data_folder_is_absolute_and_a_missing_one_is_refused(tmp_path, mnist_dir):
    _copy_mnist(mnist_dir, tmp_path / "data")
    trained = run_cli(
        "train",
        "--data-dir",
        "data",
        "--limit",
        "1000",
        "--epochs",
        "1",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        "run",
        tmp_path=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    assert read_checkpoint(checkpoint)[1]["config"]["data_source"] == str((tmp_path / "data").resolve())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scored = run_cli("eval", checkpoint, "--backend", "numpy", tmp_path=tmp_path, cwd=elsewhere)
    assert scored.returncode == 0, scored.stderr
    assert "mnist test set from " + str((tmp_path / "data").resolve()) in scored.stdout
    assert "(10,000 images)" in scored.stdout

    (tmp_path / "data").rename(tmp_path / "moved")
    for args in (("eval", checkpoint), ("train", "--resume", checkpoint, "--epochs", "2", "--quiet")):
        refused = run_cli(*args, "--backend", "numpy", tmp_path=tmp_path, cwd=elsewhere)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = stderr_lines(refused)
        assert len(lines) == 1, lines
        assert str((tmp_path / "data").resolve()) in lines[0] and "--data-dir" in lines[0]
        assert "sample" not in refused.stdout
    moved = run_cli(
        "eval", checkpoint, "--data-dir", tmp_path / "moved", "--backend", "numpy", tmp_path=tmp_path, cwd=elsewhere
    )
    assert moved.returncode == 0, moved.stderr


def test_a_checkpoint_never_names_the_folder_downloads_go_to(tmp_path):
    """A crafted data folder (an existing, empty one) is refused without a download attempt."""
    run = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        tmp_path / "run",
        tmp_path=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    arrays, meta = read_checkpoint(checkpoint)
    victim = tmp_path / "victim"
    victim.mkdir()
    meta["config"].update(dataset="mnist", data_source=str(victim), data_name="mnist")
    save_arrays(checkpoint, arrays, meta)
    for args in (("eval", checkpoint), ("train", "--resume", checkpoint, "--epochs", "2")):
        refused = run_cli(*args, "--backend", "numpy", tmp_path=tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = stderr_lines(refused)
        assert len(lines) == 1 and str(victim) in lines[0] and "--data-dir" in lines[0], lines
        assert "download" not in refused.stderr.lower() and "127.0.0.1" not in refused.stderr
        assert list(victim.iterdir()) == []

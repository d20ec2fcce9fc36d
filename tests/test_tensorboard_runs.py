"""``fastnet train --tensorboard DIR`` as users run it: one writer per run, in a folder of its own.

Real runs in child processes; the event files are read back record by record with their
checksums, and by TensorBoard itself where it is installed.
"""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from fastnet_cli import PATIENCE, cli_env, command, run_cli, stderr_lines
from tmpfs import small_tmpfs

pytest.importorskip("tensorboardX", reason="tensorboardX is an optional extra")
from test_tensorboard_log import read_events  # noqa: E402  (needs tensorboardX)

REPO = Path(__file__).resolve().parents[1]
RUN = ("--dataset", "sample", "--limit", "300", "--epochs", "2", "--backend", "numpy", "--quiet")
EPOCH_TAGS = ("loss/train", "accuracy/train", "accuracy/test", "learning_rate")


def scalar_steps(folder):
    """[(tag, step)] of every scalar in the folder, repeats kept."""
    return [(v.tag, e.step) for e in read_events(folder) for v in e.summary.value if v.HasField("simple_value")]


def assert_one_complete_run(folder, epochs=2):
    steps = scalar_steps(folder)
    for tag in EPOCH_TAGS:
        assert sorted(step for t, step in steps if t == tag) == list(range(1, epochs + 1)), (tag, steps)


def test_each_run_gets_its_own_version_folder_and_its_own_events(tmp_path):
    for name in ("a", "b"):
        result = run_cli("train", *RUN, "--out", tmp_path / name, "--tensorboard", tmp_path / "tb", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
    assert f"tensorboard: {tmp_path / 'tb' / 'version_1'}" in result.stdout
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["version_0", "version_1"]
    for version in ("version_0", "version_1"):
        assert_one_complete_run(tmp_path / "tb" / version)


def test_runs_started_together_never_share_an_event_file(tmp_path):
    """Started in the same second they once wrote one file name, and one run's events were lost."""
    children = [
        subprocess.Popen(
            command("train", *RUN, "--out", tmp_path / name, "--tensorboard", tmp_path / "tb"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=cli_env(tmp_path),
        )
        for name in ("a", "b", "c")
    ]
    for child in children:
        _, err = child.communicate(timeout=PATIENCE)
        assert child.returncode == 0, err
    folders = sorted((tmp_path / "tb").iterdir())
    assert [p.name for p in folders] == ["version_0", "version_1", "version_2"]
    for folder in folders:
        assert_one_complete_run(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "cache", "tb"]  # nothing elsewhere


def test_tensorboard_itself_shows_runs_sharing_a_folder_as_separate_runs(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is installed by the [tensorboard] extra")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    for name in ("a", "b"):
        result = run_cli("train", *RUN, "--out", tmp_path / name, "--tensorboard", tmp_path / "tb", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
    runs = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "tb"))
    runs.Reload()
    assert sorted(runs.Runs()) == ["version_0", "version_1"]
    for run in ("version_0", "version_1"):
        assert [event.step for event in runs.Scalars(run, "loss/train")] == [1, 2]
        assert "pictures/curves" in runs.Runs()[run]["images"]


@pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None,
    reason="mpi4py or mpiexec is missing (pip install 'fastnet[mpi]')",
)
def test_a_two_rank_job_writes_one_event_file_from_rank_0(tmp_path):
    cmd = [
        shutil.which("mpiexec"),
        "-n",
        "2",
        *command("train", *RUN, "--distributed", "mpi", "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in (tmp_path / "tb").iterdir()] == ["version_0"]
    files = sorted(p.name for p in (tmp_path / "tb" / "version_0").iterdir())
    assert len(files) == 1, files  # rank 0's alone (the two-layer net draws no filters)
    assert_one_complete_run(tmp_path / "tb" / "version_0")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 96 KiB tmpfs: room for the first events of a run, not for all of them."""
    with small_tmpfs(tmp_path, "96k") as mount_point:
        yield mount_point


def test_a_full_disk_under_the_events_ends_the_run_in_one_line_with_exit_2(tiny_disk, tmp_path):
    result = run_cli(
        "train", *RUN, "--epochs", "6", "--out", tmp_path / "run", "--tensorboard", tiny_disk, tmp_path=tmp_path
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = stderr_lines(result)
    assert line.startswith(f"fastnet: error: cannot write TensorBoard events in {tiny_disk / 'version_0'}: ")
    assert "the disk is full" in line and "without --tensorboard" in line
    # What was written stays readable: the file was cut back to its last complete records.
    steps = scalar_steps(tiny_disk / "version_0")
    assert ("loss/train", 1) in steps
    assert (tmp_path / "run" / "checkpoint.npz").exists()


def test_the_tensorboard_extra_installs_tensorboard_to_view_the_events():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {requirement.split(">")[0].split("=")[0].split("[")[0].strip() for requirement in extras["tensorboard"]}
    assert {"tensorboardX", "tensorboard"} <= names

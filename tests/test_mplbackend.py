"""``MPLBACKEND`` naming no backend: fastnet's pictures are Figures drawn by Agg outside pyplot,
so train and eval still write every picture, with one note on stderr, and exit 0."""

import subprocess

from fastnet_cli import PATIENCE, cli_env, command, stderr_lines

PNG = b"\x89PNG\r\n\x1a\n"


def run(*args, tmp_path, **env):
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=PATIENCE, cwd=tmp_path, env=cli_env(tmp_path, **env)
    )


def test_an_unknown_mplbackend_is_set_aside_and_the_pictures_are_drawn(tmp_path):
    small = ("--dataset", "sample", "--limit", "200", "--epochs", "1", "--backend", "numpy", "--quiet")
    trained = run("train", *small, "--out", tmp_path / "run", tmp_path=tmp_path, MPLBACKEND="garbage")
    assert trained.returncode == 0, trained.stderr
    assert stderr_lines(trained) == [
        "fastnet: note: MPLBACKEND='garbage' is not a matplotlib backend; ignored (fastnet's pictures need none)"
    ]
    scored = run("eval", tmp_path / "run" / "checkpoint.npz", "--backend", "numpy", tmp_path=tmp_path, MPLBACKEND="x")
    assert scored.returncode == 0, scored.stderr
    assert len(stderr_lines(scored)) == 1 and "Traceback" not in scored.stderr
    for name in ("curves.png", "confusion.png", "errors.png"):
        assert (tmp_path / "run" / name).read_bytes()[:8] == PNG, name


def test_a_usable_mplbackend_is_left_to_matplotlib(tmp_path):
    script = (
        "import os, sys\n"
        "from fastnet.plots.figure import set_aside_unusable_mplbackend\n"
        "assert set_aside_unusable_mplbackend() is None\n"
        "import matplotlib\n"
        "print(matplotlib.get_backend(), os.environ['MPLBACKEND'])\n"
    )
    result = subprocess.run(
        [command()[0], "-c", script],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        cwd=tmp_path,
        env=cli_env(tmp_path, MPLBACKEND="svg"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "svg"]

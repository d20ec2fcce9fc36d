"""``fastnet train --overwrite`` replaces a run: nothing of the old run is left that could pass for
the new one's, nothing else in the folder is touched, and a resumed run keeps its own files.

Also ``fastnet eval`` of best.npz and of checkpoint.npz draws two sets of pictures, not one."""

import json

from fastnet_cli import run_cli

from fastnet.training.checkpoint import read_checkpoint

SAMPLE = ["--dataset", "sample", "--limit", "400", "--backend", "numpy", "--quiet"]
KEEP_BEST = ["--val-split", "100", "--keep-best"]


def train(*args, tmp_path):
    result = run_cli("train", *SAMPLE, *args, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def evaluate(checkpoint, tmp_path):
    result = run_cli("eval", checkpoint, "--backend", "numpy", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_overwrite_removes_the_old_runs_files_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    train("--epochs", "2", *KEEP_BEST, "--out", out, tmp_path=tmp_path)
    evaluate(out / "best.npz", tmp_path)
    evaluate(out / "checkpoint.npz", tmp_path)
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "best.npz").write_bytes(b"not fastnet's")
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes(b"linked")
    (out / "confusion-linked.png").symlink_to(outside)

    result = train("--epochs", "1", "--seed", "1", "--out", out, "--overwrite", tmp_path=tmp_path)
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("--overwrite:")]
    assert "best.npz" in line and "confusion-best.png" in line and "checkpoint.npz" in line
    # The new run never writes best.npz (no --keep-best), nor pictures of eval: none are left.
    assert not (out / "best.npz").exists()
    pictures = [*out.glob("confusion*.png"), *out.glob("errors*.png")]
    assert [p.name for p in pictures if not p.is_symlink()] == []
    _, meta = read_checkpoint(out / "checkpoint.npz")
    assert meta["progress"]["epoch"] == 1 and meta["config"]["seed"] == 1
    assert len(json.loads((out / "history.json").read_text())["history"]["epoch"]) == 1
    # What fastnet did not write stays, and a link is never followed.
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "mine" / "best.npz").read_bytes() == b"not fastnet's"
    assert (out / "confusion-linked.png").is_symlink() and outside.read_bytes() == b"linked"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz",
        "confusion-linked.png",
        "curves.png",
        "history.csv",
        "history.json",
        "mine",
        "notes.txt",
    ]


def test_overwrite_while_resuming_the_same_run_keeps_its_files(tmp_path):
    out = tmp_path / "run"
    train("--epochs", "1", *KEEP_BEST, "--out", out, tmp_path=tmp_path)
    best = (out / "best.npz").read_bytes()
    result = train("--resume", out / "checkpoint.npz", "--epochs", "2", "--overwrite", tmp_path=tmp_path)
    assert "--overwrite:" not in result.stdout
    assert (out / "best.npz").exists()
    assert read_checkpoint(out / "checkpoint.npz")[1]["progress"]["epoch"] == 2
    # best.npz is this run's: rewritten only when epoch 2 was better
    assert (out / "best.npz").read_bytes() == best or read_checkpoint(out / "best.npz")[1]["progress"]["epoch"] == 2


def test_overwrite_from_another_runs_best_keeps_the_checkpoint_being_resumed(tmp_path):
    out = tmp_path / "run"
    train("--epochs", "2", *KEEP_BEST, "--out", out, tmp_path=tmp_path)
    best_epoch = read_checkpoint(out / "best.npz")[1]["progress"]["epoch"]
    result = train("--resume", out / "best.npz", "--epochs", "3", "--out", out, "--overwrite", tmp_path=tmp_path)
    assert f"resuming {out / 'best.npz'}" in result.stdout
    assert read_checkpoint(out / "checkpoint.npz")[1]["progress"]["epoch"] == 3
    assert best_epoch <= 3


def test_eval_of_best_and_of_checkpoint_keeps_both_sets_of_pictures(tmp_path):
    out = tmp_path / "run"
    train("--epochs", "2", *KEEP_BEST, "--out", out, tmp_path=tmp_path)
    of_best = evaluate(out / "best.npz", tmp_path)
    of_last = evaluate(out / "checkpoint.npz", tmp_path)
    assert f"picture: {out / 'confusion-best.png'}" in of_best.stdout
    assert f"picture: {out / 'errors-best.png'}" in of_best.stdout
    assert f"picture: {out / 'confusion.png'}" in of_last.stdout
    for name in ("confusion-best.png", "errors-best.png", "confusion.png", "errors.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

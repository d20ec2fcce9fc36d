"""fastnet train/eval with model selection, schedules, weight decay, pictures and TensorBoard,
run as a user runs them: real child processes, real files."""

import importlib.util
import re
import shlex
from pathlib import Path

import numpy
import pytest
from classic_recipes import COMMON, RECIPES, recorded, sketch, weights
from fastnet_cli import run_cli, stderr_lines
from tolerances import probable_gamma

from fastnet.training.checkpoint import read_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL = ["--dataset", "sample", "--backend", "numpy", "--quiet"]


@pytest.mark.parametrize("name", list(RECIPES))
def test_classic_recipes_train_the_same_weights_as_before(name, tmp_path):
    """The recorded weights again, within the bound another BLAS kernel's rounding allows
    (``tests/classic_recipes.py`` says how it is derived)."""
    options, steps, longest_sum = RECIPES[name]
    result = run_cli("train", *COMMON, *options, "--out", tmp_path / "run", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    arrays, expected = weights(tmp_path / "run" / "checkpoint.npz"), recorded()[name]
    assert sorted(arrays) == sorted(expected)
    relative = steps * 2 * probable_gamma(longest_sum, numpy.float32)
    for key, want in expected.items():
        got = arrays[key]
        assert [list(got.shape), str(got.dtype)] == [want["shape"], want["dtype"]], key
        allowed = relative * want["norm"]
        # The sketch of a difference has about the difference's norm; 2x leaves room for its spread.
        moved = float(numpy.linalg.norm(sketch(got) - numpy.array(want["sketch"])))
        assert moved <= 2 * allowed, f"{key}: moved {moved:.3g}, allowed {2 * allowed:.3g}"
        assert abs(numpy.linalg.norm(got.astype(numpy.float64)) - want["norm"]) <= allowed, key


def test_weight_decay_reaches_every_optimizer(tmp_path):
    norms = {}
    for decay in ("0", "5"):
        result = run_cli(
            "train",
            *SMALL,
            "--limit",
            "300",
            "--epochs",
            "1",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--weight-decay",
            decay,
            "--out",
            tmp_path / decay,
            tmp_path=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        norms[decay] = float(numpy.linalg.norm(read_checkpoint(tmp_path / decay / "checkpoint.npz")[0]["W1"]))
    assert norms["5"] < 0.95 * norms["0"]


def readme_commands():
    text = README.read_text()
    block = re.search(r"```bash\n(fastnet train --net simple-conv --val-split.*?)```", text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.startswith("fastnet ")]


def assert_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100 and pixels.std() > 0, path


def test_readme_picture_commands_write_valid_pngs_and_tensorboard_events(tmp_path):
    train, evaluate = readme_commands()
    assert train[:2] == ["fastnet", "train"] and evaluate[:2] == ["fastnet", "eval"]
    # --tensorboard needs the optional extra; without it the pictures are still checked.
    with_events = importlib.util.find_spec("tensorboardX") is not None
    if not with_events:
        at = train.index("--tensorboard")
        train = train[:at] + train[at + 2 :]
    # The README's commands, on the embedded sample and shortened (later options win).
    trained = run_cli(*train[1:], *SMALL, "--limit", "300", "--epochs", "2", "--val-split", "100", tmp_path=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = tmp_path / "runs" / "simple-conv"
    for name in ("curves.png", "filters.png"):
        assert_png(run / name)
    assert re.search(r"best validation epoch \d, \S*best\.npz: val acc", trained.stdout)
    assert re.search(r"final accuracy: train \S+, test \S+ \(last epoch 2, \S*checkpoint\.npz\)", trained.stdout)

    scored = run_cli(*evaluate[1:], "--backend", "numpy", tmp_path=tmp_path)
    assert scored.returncode == 0, scored.stderr
    best_epoch = read_checkpoint(run / "best.npz")[1]["progress"]["epoch"]
    assert f"(simple-conv, best validation epoch {best_epoch})" in scored.stdout
    for name in ("confusion-best.png", "errors-best.png"):  # best.npz's own, beside checkpoint.npz's
        assert f"picture: {Path('runs/simple-conv') / name}" in scored.stdout
        assert_png(run / name)

    elsewhere = run_cli(
        "eval", run / "checkpoint.npz", "--out", tmp_path / "pictures", "--backend", "numpy", tmp_path=tmp_path
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "(simple-conv, epoch 2)" in elsewhere.stdout
    assert_png(tmp_path / "pictures" / "errors.png")

    if not with_events:
        pytest.skip("tensorboardX not installed (pip install 'fastnet[tensorboard]'): events not checked")
    from test_tensorboard_log import read_events

    events = read_events(tmp_path / "runs" / "tb" / "version_0")  # the run's own folder
    scalars = {(v.tag, e.step) for e in events for v in e.summary.value if v.HasField("simple_value")}
    images = {(v.tag, e.step) for e in events for v in e.summary.value if v.HasField("image")}
    for tag in ("loss/train", "loss/val", "accuracy/val", "accuracy/test", "learning_rate"):
        assert {(tag, 1), (tag, 2)} <= scalars, tag
    assert {("pictures/curves", 1), ("pictures/curves", 2), ("pictures/filters", 2)} <= images


def test_early_stop_resumed_after_a_shorter_run_ends_like_the_straight_run(tmp_path):
    # Validation accuracy of this run: 0.18, 0.44, 0.25, 0.46, 0.40, 0.40, 0.55, ...: with patience 2
    # it ends after epoch 6; the shorter run stops after epoch 5, one epoch into the patience.
    common = [
        *SMALL,
        "--limit",
        "400",
        "--val-split",
        "100",
        "--hidden",
        "30",
        "--lr",
        "1.0",
        "--batch-size",
        "50",
        "--seed",
        "3",
        "--early-stop",
        "2",
        "--keep-best",
    ]
    straight = run_cli("train", *common, "--epochs", "15", "--out", tmp_path / "straight", tmp_path=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert "early stop: validation accuracy has not improved for 2 epochs (best: epoch 4" in straight.stdout
    short = run_cli("train", *common, "--epochs", "5", "--out", tmp_path / "run", tmp_path=tmp_path)
    assert short.returncode == 0, short.stderr
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    extended = run_cli("train", "--resume", checkpoint, "--epochs", "15", "--quiet", tmp_path=tmp_path)
    assert extended.returncode == 0, extended.stderr

    a, meta_a = read_checkpoint(checkpoint)
    b, meta_b = read_checkpoint(tmp_path / "straight" / "checkpoint.npz")
    assert meta_a["progress"]["epoch"] == meta_b["progress"]["epoch"] == 6
    for key in a:
        assert numpy.array_equal(a[key], b[key]), key
    assert meta_a["history"]["val_acc"] == meta_b["history"]["val_acc"]
    best_a = read_checkpoint(tmp_path / "run" / "best.npz")[0]
    assert all(
        numpy.array_equal(best_a[k], v) for k, v in read_checkpoint(tmp_path / "straight" / "best.npz")[0].items()
    )

    again = run_cli("train", "--resume", checkpoint, "--epochs", "20", "--quiet", tmp_path=tmp_path)
    assert again.returncode == 2 and "give a larger --early-stop" in again.stderr
    assert len(stderr_lines(again)) == 1


def test_cosine_run_resumed_with_more_epochs_keeps_its_schedule(tmp_path):
    common = [*SMALL, "--limit", "300", "--lr-schedule", "cosine", "--warmup-epochs", "1", "--min-lr", "0.01"]
    first = run_cli("train", *common, "--epochs", "2", "--out", tmp_path / "run", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    more = run_cli(
        "train", "--resume", tmp_path / "run" / "checkpoint.npz", "--epochs", "3", "--quiet", tmp_path=tmp_path
    )
    assert more.returncode == 0, more.stderr
    assert "cosine learning-rate schedule keeps its recorded length of 2 epochs" in more.stdout
    history = read_checkpoint(tmp_path / "run" / "checkpoint.npz")[1]["history"]
    assert history["lr"][1] > history["lr"][2] == 0.01  # the last epoch runs at the final rate


def test_a_schedule_that_ended_at_rate_0_is_not_extended_and_its_checkpoint_stays_readable(tmp_path):
    """Cosine without --min-lr ends at rate 0: its checkpoint (lr 0.0) loads, and a resume with more
    epochs is refused in one line instead of overwriting it with epochs that cannot train."""
    run = tmp_path / "run"
    first = run_cli(
        "train", *SMALL, "--limit", "300", "--lr-schedule", "cosine", "--epochs", "2", "--out", run, tmp_path=tmp_path
    )
    assert first.returncode == 0, first.stderr
    written = (run / "checkpoint.npz").read_bytes()
    assert run_cli("eval", run / "checkpoint.npz", tmp_path=tmp_path).returncode == 0
    more = run_cli("train", "--resume", run / "checkpoint.npz", "--epochs", "3", "--quiet", tmp_path=tmp_path)
    assert more.returncode == 2
    (line,) = stderr_lines(more)
    assert "ends at rate 0 after its 2 epochs" in line and "start a new run with --epochs 3" in line, line
    assert (run / "checkpoint.npz").read_bytes() == written


def test_a_step_schedule_that_underflows_to_0_writes_a_checkpoint_it_can_read(tmp_path):
    run = tmp_path / "run"
    first = run_cli(
        "train",
        *SMALL,
        "--limit",
        "300",
        "--lr-schedule",
        "step",
        "--step-epochs",
        "1",
        "--lr-gamma",
        "1e-320",
        "--epochs",
        "3",
        "--out",
        run,
        tmp_path=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert read_checkpoint(run / "checkpoint.npz")[1]["optimizer"]["lr"] == 0.0  # 0.1 * 1e-320 ** 2
    assert run_cli("eval", run / "checkpoint.npz", tmp_path=tmp_path).returncode == 0
    again = run_cli("train", "--resume", run / "checkpoint.npz", "--epochs", "4", "--quiet", tmp_path=tmp_path)
    assert again.returncode == 2 and "ends at rate 0 after its 3 epochs" in again.stderr, again.stderr


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--keep-best"], "add --val-split"),
        (["--early-stop", "2"], "add --val-split"),
        (["--val-split", "1.5"], "a fraction in (0, 1), got"),
        (["--val-split", "5000"], "leaves no training data"),
        (["--lr-schedule", "step", "--lr-gamma", "2"], "--lr-gamma must be in (0, 1]"),
    ],
)
def test_selection_mistakes_are_one_line(args, problem, tmp_path):
    result = run_cli(
        "train", *SMALL, "--limit", "300", "--epochs", "1", *args, "--out", tmp_path / "run", tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert len(stderr_lines(result)) == 1 and problem in result.stderr, result.stderr

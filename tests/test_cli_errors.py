"""Every user mistake ends in exactly one line on stderr and exit code 2, never a traceback;
divergence ends with exit code 3 and keeps the last good checkpoint."""

import json
import warnings

import pytest
from fastnet_cli import run_cli, stderr_lines

from fastnet.backends import unavailable_reason
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.training.checkpoint import read_checkpoint, save_checkpoint

SAMPLE = ["--dataset", "sample", "--limit", "300", "--epochs", "1", "--backend", "numpy", "--quiet"]

MISTAKES = {
    "unknown command": ["fly"],
    "unknown net": ["train", "--net", "resnet"],
    "unknown backend": ["train", "--backend", "tpu"],
    "unknown optimizer": ["train", "--optimizer", "lbfgs"],
    "unknown dataset": ["train", "--dataset", "cifar"],
    "unknown option": ["train", "--learning-rate", "0.1"],
    "epochs zero": ["train", "--epochs", "0"],
    "epochs not a number": ["train", "--epochs", "ten"],
    "batch size negative": ["train", "--batch-size", "-5"],
    "lr negative": ["train", "--lr", "-0.1"],
    "lr nan": ["train", "--lr", "nan"],
    "lr inf": ["train", "--lr", "inf"],
    "dropout one": ["train", "--dropout", "1"],
    "weight decay negative": ["train", "--weight-decay", "-1"],
    "hidden zero": ["train", "--hidden", "0"],
    "seed negative": ["train", "--seed", "-1"],
    "dtype": ["train", "--dtype", "float16"],
    "eval without checkpoint": ["eval"],
    "eval batch size zero": ["eval", "x.npz", "--batch-size", "0"],
    "gradcheck batch negative": ["gradcheck", "--batch", "-1"],
    "gradcheck max entries negative": ["gradcheck", "--max-entries", "-1"],
    "gradcheck seed negative": ["gradcheck", "--seed", "-1"],
    "gradcheck tolerance nan": ["gradcheck", "--tolerance", "nan"],
    # counts past a C int reached ctypes, numpy or the BLAS as overflow tracebacks
    "threads past any machine": ["train", *SAMPLE, "--threads", "99999999999999999999"],
    "threads past openblas": ["profile", "--threads", "100000"],
    "epochs past a C int": ["train", "--epochs", "99999999999999999999"],
    "batch size past a C int": ["train", "--batch-size", "99999999999999999999"],
    "profile batch past a C int": ["profile", "--batch-size", "100000000000000000000"],
    "profile steps past a C int": ["profile", "--steps", "100000000000000000000"],
    "profile steps that would run for days": ["profile", "--steps", "2000000000"],
    "bench repeats that would run for days": ["bench", "--repeats", "2000000000"],
    "train eval neither a count nor full": ["train", *SAMPLE, "--train-eval", "most"],
    "check batch past a C int": ["check", "--batch", "100000000000000000000"],
    "gradcheck batch past a C int": ["gradcheck", "--batch", "100000000000000000000"],
    "validation split under one image": ["train", *SAMPLE, "--val-split", "1e-300"],
    "gradcheck tolerance below float64": ["gradcheck", "--tolerance", "1e-320"],
    "warm-up longer than the run": ["train", *SAMPLE, "--lr-schedule", "cosine", "--warmup-epochs", "1e300"],
}


@pytest.mark.parametrize("args", MISTAKES.values(), ids=MISTAKES.keys())
def test_bad_options_give_one_line_and_exit_2(args, tmp_path):
    result = run_cli(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(stderr_lines(result)) == 1, result.stderr
    assert not list(tmp_path.glob("runs"))  # refused before anything was written


def one_line_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = stderr_lines(result)
    return line


def test_missing_resume_file(tmp_path):
    line = one_line_error(run_cli("train", "--resume", tmp_path / "nope.npz", tmp_path=tmp_path))
    assert "nope.npz" in line and "no such file" in line


def test_missing_data_dir(tmp_path):
    line = one_line_error(run_cli("train", "--data-dir", tmp_path / "nowhere", tmp_path=tmp_path))
    assert "--data-dir" in line and "nowhere" in line and "no such folder" in line
    checkpoint = tmp_path / "checkpoint.npz"
    save_checkpoint(
        checkpoint,
        TwoLayerNet(784, 50, 10, backend="numpy"),
        SGD(0.1),
        {"epoch": 0, "step": 0, "iteration": 0},
        {"net": "two-layer", "hidden": [50]},
        {},
    )
    line = one_line_error(run_cli("eval", checkpoint, "--data-dir", tmp_path / "nowhere", tmp_path=tmp_path))
    assert "--data-dir" in line and "no such folder" in line


def test_data_dir_without_the_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_error(run_cli("train", "--data-dir", empty, "--quiet", tmp_path=tmp_path))
    assert str(empty) in line and "train-images" in line


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("")
    line = one_line_error(run_cli("train", *SAMPLE, "--out", tmp_path / "taken" / "run", tmp_path=tmp_path))
    assert "is a file" in line


def test_out_holding_a_run_is_not_overwritten_unless_asked(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", *SAMPLE, "--out", out, tmp_path=tmp_path).returncode == 0
    before = (out / "checkpoint.npz").read_bytes()
    line = one_line_error(run_cli("train", *SAMPLE, "--seed", "1", "--out", out, tmp_path=tmp_path))
    assert "--resume" in line and "--overwrite" in line
    assert (out / "checkpoint.npz").read_bytes() == before
    again = run_cli("train", *SAMPLE, "--seed", "1", "--out", out, "--overwrite", tmp_path=tmp_path)
    assert again.returncode == 0 and (out / "checkpoint.npz").read_bytes() != before


needs_no_gpu = pytest.mark.skipif(unavailable_reason("cupy") is None, reason="a GPU is usable here")


@needs_no_gpu
def test_strict_backend_without_gpu(tmp_path):
    line = one_line_error(
        run_cli("train", *SAMPLE, "--backend", "cupy", "--strict-backend", "--out", tmp_path / "run", tmp_path=tmp_path)
    )
    assert "cupy" in line and unavailable_reason("cupy").split(";")[0] in line
    assert not (tmp_path / "run").exists()


@needs_no_gpu
def test_cupy_without_gpu_falls_back_with_one_warning(tmp_path):
    result = run_cli("train", *SAMPLE, "--backend", "cupy", "--out", tmp_path / "run", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    (warning,) = stderr_lines(result)
    assert "cupy" in warning and unavailable_reason("cupy").split(";")[0] in warning
    used = warning.split("falling back to ")[1].strip("'")
    assert used in ("numba", "numpy")
    assert f"backend used: {used}" in result.stdout
    assert json.loads((tmp_path / "run" / "history.json").read_text())["backend"] == used
    assert read_checkpoint(tmp_path / "run" / "checkpoint.npz")[1]["backend"] == used


def test_divergence_exits_3_naming_the_step_without_warning_noise(tmp_path):
    result = run_cli("train", *SAMPLE, "--limit", "2000", "--lr", "1e8", "--out", tmp_path / "run", tmp_path=tmp_path)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    (line,) = stderr_lines(result)
    assert "diverged" in line and "epoch 1, step" in line and "lower the learning rate" in line
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    good = run_cli("train", *SAMPLE, "--out", tmp_path / "run", tmp_path=tmp_path)
    assert good.returncode == 0, good.stderr
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    before = checkpoint.read_bytes()

    result = run_cli(
        "train",
        "--resume",
        checkpoint,
        "--epochs",
        "3",
        "--lr",
        "1e12",
        "--backend",
        "numpy",
        "--quiet",
        tmp_path=tmp_path,
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    (line,) = stderr_lines(result)
    assert "epoch 2, step" in line and "e.g. --lr 0.1 (the two-layer recipe's rate)" in line and str(checkpoint) in line
    assert checkpoint.read_bytes() == before
    assert read_checkpoint(checkpoint)[1]["progress"]["epoch"] == 1


def test_no_runtime_warnings_escape_a_diverging_trainer():
    from fastnet.datasets import load_dataset
    from fastnet.errors import DivergenceError
    from fastnet.training import Trainer

    data = load_dataset("sample")
    trainer = Trainer(
        TwoLayerNet(784, 50, 10, backend="numpy", seed=0),
        SGD(1e8),
        data.x_train[:1000],
        data.t_train[:1000],
        epochs=1,
        progress=False,
        log=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        with pytest.raises(DivergenceError, match=r"epoch 1, step \d+"):
            trainer.fit()


def test_an_idx_set_with_zero_images_is_one_line_not_a_traceback(tmp_path):
    import numpy
    from idx_factory import write_idx

    data = tmp_path / "empty-set"
    data.mkdir()
    for prefix in ("train", "t10k"):
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", numpy.zeros((0, 28, 28), numpy.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", numpy.zeros((0,), numpy.uint8))
    line = one_line_error(
        run_cli(
            "train", "--data-dir", data, "--backend", "numpy", "--quiet", "--out", tmp_path / "out", tmp_path=tmp_path
        )
    )
    assert str(data) in line


def test_a_huge_warm_up_is_named_in_epochs_not_as_a_300_digit_count(tmp_path):
    line = one_line_error(run_cli("train", *SAMPLE, "--warmup-epochs", "1e300", tmp_path=tmp_path))
    assert "warm-up epochs (up to the run's epochs) must be in [0, 1]; got 1e+300" in line and len(line) < 200

"""A loss that explodes but stays finite stops the run (exit 3) like a NaN does, and the
classic recipes on MNIST and Fashion-MNIST never come near the limit."""

import json
import math
from pathlib import Path

import pytest
from fastnet_cli import run_cli, stderr_lines

from fastnet.training.explosion import EXPLODED

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "accuracy"


def test_a_huge_learning_rate_stops_with_exit_3_and_the_hint(tmp_path):
    result = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "1000",
        "--lr",
        "1e6",
        "--backend",
        "numpy",
        "--quiet",
        "--out",
        tmp_path / "out",
        tmp_path=tmp_path,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    (line,) = stderr_lines(result)
    assert "training diverged: mean loss exploded to" in line
    assert "lower the learning rate (now 1e+06), e.g. --lr 0.1 (the two-layer recipe's rate)" in line


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_learning_rate_the_hint_suggests_trains(tmp_path, optimizer):
    """A tenth of a wild rate once came as the hint (--lr 1e6: 1e5), and diverged as well."""
    run = ["--dataset", "sample", "--limit", "1000", "--epochs", "2", "--optimizer", optimizer, "--backend", "numpy"]
    wild = run_cli("train", *run, "--lr", "1e6", "--quiet", "--out", tmp_path / "wild", tmp_path=tmp_path)
    assert wild.returncode == 3, wild.stderr
    (line,) = stderr_lines(wild)
    hinted = line.split("e.g. --lr ")[1].split()[0]
    tamed = run_cli("train", *run, "--lr", hinted, "--quiet", "--out", tmp_path / "tamed", tmp_path=tmp_path)
    assert tamed.returncode == 0, (hinted, tamed.stderr)
    history = json.loads((tmp_path / "tamed" / "history.json").read_text())["history"]
    assert history["train_loss"][-1] < history["train_loss"][0] < math.log(10) + 0.1  # it learns


@pytest.mark.parametrize("net", ["two-layer", "simple-conv", "deep-conv"])
def test_recorded_classic_mnist_runs_stay_far_below_the_limit(net):
    history = json.loads((RESULTS / net / "history.json").read_text())["history"]
    interval_means = [loss for _, loss in history["step_loss"]]
    limit = EXPLODED * max(interval_means[0], math.log(10))  # the first interval stands in for step 1
    assert max(interval_means + history["train_loss"]) < limit / 8


@pytest.mark.parametrize("net", ["two-layer", "simple-conv"])
def test_classic_recipes_train_on_fashion_mnist_without_being_stopped(tmp_path, mnist_dir, net):
    """The first epoch is where the loss is highest; the recipe's own lr and optimizer."""
    folder = mnist_dir.parent / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found in {folder}")
    result = run_cli(
        "train",
        "--net",
        net,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        folder,
        "--limit",
        "4000",
        "--epochs",
        "1",
        "--backend",
        "numba",
        "--quiet",
        "--out",
        tmp_path / "out",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    history = json.loads((tmp_path / "out" / "history.json").read_text())["history"]
    assert max(loss for _, loss in history["step_loss"]) < EXPLODED * math.log(10) / 5

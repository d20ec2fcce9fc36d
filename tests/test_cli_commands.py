"""The commands' success paths, run as a user would: train, eval, info, gradcheck, bench."""

import json

import numpy
import pytest
from fastnet_cli import run_cli

from fastnet.backends import unavailable_reason
from fastnet.datasets import load_dataset
from fastnet.gradcheck import check_net_gradients
from fastnet.layers import Affine
from fastnet.nets import TwoLayerNet
from fastnet.training.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    result = run_cli(
        "train",
        "--dataset",
        "sample",
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--out",
        tmp / "out",
        "--quiet",
        tmp_path=tmp,
    )
    return tmp, result


def test_train_prints_the_summary_and_writes_every_output(trained_run):
    tmp, result = trained_run
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "backend used: numpy" in out
    assert "final accuracy: train" in out and "samples/s" in out and "per epoch" in out
    history = json.loads((tmp / "out" / "history.json").read_text())
    assert history["backend"] == "numpy"
    assert history["history"]["epoch"] == [1, 2]
    assert history["history"]["test_acc"][-1] > 0.8  # the classic net learns the real sample
    png = (tmp / "out" / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    _, meta = read_checkpoint(tmp / "out" / "checkpoint.npz")
    assert meta["backend"] == "numpy" and meta["progress"]["epoch"] == 2


def test_eval_reports_the_accuracy_and_confusion_matrix_of_the_checkpoint(trained_run):
    tmp, train = trained_run
    result = run_cli("eval", tmp / "out" / "checkpoint.npz", "--dataset", "sample", "--backend", "numpy", tmp_path=tmp)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    accuracy = float(next(line for line in lines if line.startswith("test accuracy:")).split()[-1])
    history = json.loads((tmp / "out" / "history.json").read_text())["history"]
    assert accuracy == pytest.approx(history["test_acc"][-1], abs=1e-4)
    start = lines.index(next(line for line in lines if line.startswith("true\\pred")))
    matrix = numpy.array([[int(v) for v in line.split()[1:]] for line in lines[start + 1 : start + 11]])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == 2000  # the sample's test set
    assert matrix.sum(axis=1).tolist() == [200] * 10  # 200 test images per digit
    assert numpy.trace(matrix) / matrix.sum() == pytest.approx(accuracy, abs=1e-4)


def test_info_lists_every_backend_and_why_one_is_unavailable(tmp_path):
    result = run_cli("info", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The backend lines follow "backends:"; the version lines above them may also say
    # "not available" (CuPy or PyTorch missing) and must not be mistaken for them.
    backends = lines[lines.index("backends:") + 1 :]
    for name in ("numpy", "numba", "cupy"):
        reason = unavailable_reason(name)
        line = next(line for line in backends if line.split()[0] == name)
        assert line.split()[1] in ("available", "unavailable:")
        assert ("unavailable: " + reason) in line if reason else line.strip() == f"{name:<6} available".strip()
    assert "BLAS:" in result.stdout and "GPU:" in result.stdout


@pytest.mark.parametrize("net", ["two-layer", "simple-conv"])
def test_gradcheck_command_passes_on_correct_nets(tmp_path, net):
    result = run_cli("gradcheck", "--net", net, "--backend", "numpy", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("ok: worst relative error")


def test_gradient_check_catches_a_wrong_backward():
    """The check must be able to fail: a 1% error in one weight gradient is reported."""

    class SlightlyWrongAffine(Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.dW = self.dW * 1.01
            return dx

    net = TwoLayerNet(6, 5, 3, weight_init_std=0.5, dtype="float64", seed=0)
    good = net.layers["Affine2"]
    net.layers["Affine2"] = wrong = SlightlyWrongAffine(good.W, good.b, dtype="float64")
    net._param_index["W2"] = (wrong, "W")
    net._param_index["b2"] = (wrong, "b")
    rng = numpy.random.default_rng(0)
    report = {
        r.name: r.max_relative_error
        for r in check_net_gradients(net, rng.standard_normal((4, 6)), rng.integers(0, 3, 4))
    }
    assert report["W2"] > 1e-3
    assert max(report["W1"], report["b1"], report["b2"]) < 1e-6


def test_bench_command_prints_ratios_and_saves_json_and_png(tmp_path):
    result = run_cli(
        "bench",
        "--workloads",
        "two_layer_step",
        "--backends",
        "numpy",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--no-torch",
        "--out",
        tmp_path / "bench",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "vs matmul" in result.stdout
    saved = json.loads((tmp_path / "bench" / "cpu.json").read_text())
    timings = saved["workloads"]["two_layer_step"]["results"]
    assert set(timings) >= {"numpy", "matmul bound"}
    assert all(r["median_s"] > 0 for r in timings.values())
    assert (tmp_path / "bench" / "cpu.png").read_bytes().startswith(b"\x89PNG")


def test_sample_is_what_the_default_train_falls_back_to_offline(tmp_path):
    result = run_cli("train", "--epochs", "1", "--limit", "500", "--backend", "numpy", "--quiet", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "embedded sample" in result.stderr
    assert "data: mnist-sample from embedded sample" in result.stdout
    assert load_dataset("sample").x_train.shape == (10_000, 784)
    # The default folder is named after the data the run trained on, not the data it asked for.
    runs = [p.name for p in (tmp_path / "runs").iterdir()]
    assert len(runs) == 1 and runs[0].startswith("two-layer-sample-"), runs


def test_gradcheck_help_states_its_own_backend_default(tmp_path):
    result = run_cli("gradcheck", "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "(default: numpy)" in text and "numpy = cupy" not in text
    train = " ".join(run_cli("train", "--help", tmp_path=tmp_path).stdout.split())
    assert "the backend a resumed run recorded, else auto" in train


def test_gradcheck_reports_the_same_error_whatever_the_tolerance_and_shows_rows_as_it_goes(tmp_path):
    worst = {}
    for tolerance in ("1e-3", "1e-6", "1e-9"):
        result = run_cli("gradcheck", "--net", "mlp", "--tolerance", tolerance, tmp_path=tmp_path)
        lines = result.stdout.splitlines()
        assert lines[1].startswith("checking ") and "each row appears when its parameter is done" in lines[1]
        worst[tolerance] = lines[-1].split("worst relative error ")[1].split()[0]
    assert len(set(worst.values())) == 1, worst


def test_every_option_of_every_command_says_what_it_is_in_help():
    import argparse

    from fastnet.cli.main import build_parser

    silent = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                silent += [
                    f"{command} {'/'.join(a.option_strings) or a.dest}"
                    for a in sub._actions
                    if not a.help and not isinstance(a, argparse._HelpAction)
                ]
    assert silent == []

"""The per-layer profiler: book names, fused passes attributed honestly, bytes, and no trace left."""

import mmap
import sys
import time

import numpy
import pytest
from fastnet_cli import run_cli

from fastnet.layers import Affine, Relu
from fastnet.nets import Sequential, SimpleConvNet, TwoLayerNet
from fastnet.optim import SGD
from fastnet.profiling.layer_timer import WRAPPED, timing_layers
from fastnet.profiling.step import format_profile, profile_copy, profile_step


def data(rng, n, shape):
    return rng.random((n, *shape), dtype=numpy.float32), rng.integers(0, 10, n)


class Slow:
    """A user's own book-style layer that takes a known time."""

    def forward(self, x):
        time.sleep(0.03)
        return x

    def backward(self, dout):
        return dout


def test_rows_use_the_book_names_and_a_fused_pass_is_one_unit(rng):
    x, t = data(rng, 8, (1, 28, 28))
    result = profile_step(SimpleConvNet(seed=0, backend="numpy"), SGD(0.01), x, t, steps=2, warmup=1)
    assert [r["unit"] for r in result["rows"]] == [
        "Conv1+Relu1",
        "Pool1",
        "Affine1+Relu2",
        "Affine2",
        "SoftmaxWithLoss",
        "update (SGD)",
        "other (checks, glue)",
    ]
    for row in result["rows"][:5]:
        assert row["forward_s"] > 0 and row["backward_s"] > 0, row


def test_a_slow_layer_gets_its_time_and_the_largest_share(rng):
    net = Sequential(backend="numpy")
    net.add("Affine1", Affine(0.01 * rng.standard_normal((784, 50)), numpy.zeros(50), dtype="float32"), suffix="1")
    net.add("Relu1", Relu())
    net.add("Slow", Slow())
    net.add("Affine2", Affine(0.01 * rng.standard_normal((50, 10)), numpy.zeros(10), dtype="float32"), suffix="2")
    x, t = data(rng, 10, (784,))
    result = profile_step(net, SGD(0.01), x, t, steps=3, warmup=1)
    slow = next(r for r in result["rows"] if r["unit"] == "Slow")
    assert 0.03 <= slow["forward_s"] < 0.2
    assert slow["forward_s"] >= 0.8 * result["step_s"] - 0.01
    assert sum(r["forward_s"] + r["backward_s"] for r in result["rows"]) <= result["step_s"] * 1.05


def test_bytes_count_outputs_caches_and_gradients_but_not_views_of_the_input(rng):
    n = 100
    x, t = data(rng, n, (784,))
    result = profile_step(TwoLayerNet(784, 50, 10, seed=0, backend="numpy"), SGD(0.01), x, t, steps=1, warmup=1)
    affine2 = next(r for r in result["rows"] if r["unit"] == "Affine2")
    # forward: scores (n x 10); backward: dW (50 x 10), db (10), dx (n x 50); its cached x is a view.
    assert affine2["bytes"] == 4 * (n * 10 + 50 * 10 + 10 + n * 50)


def test_the_wrappers_leave_no_trace_and_change_no_result(rng):
    x, t = data(rng, 16, (784,))
    net, twin = (TwoLayerNet(784, 50, 10, seed=0, backend="numpy") for _ in range(2))
    layers = list(net.layers.values()) + [net.lastLayer]
    with timing_layers(net) as record:
        record.new_step()
        grads = net.gradient(x, t)
    assert all(method not in vars(layer) for layer in layers for method in WRAPPED)
    expected = twin.gradient(x, t)
    assert all(numpy.array_equal(grads[k], expected[k]) for k in expected)


def test_profiling_a_copy_leaves_the_run_untouched(rng):
    x, t = data(rng, 16, (784,))
    net = TwoLayerNet(784, 50, 10, seed=0, backend="numpy")
    before = {k: v.copy() for k, v in net.params.items()}
    profile_copy(net, SGD(0.5), x, t, steps=2, warmup=1)
    assert all(numpy.array_equal(net.params[k], before[k]) for k in before)


class FreshMemory:
    """A book-style layer that maps 128 MiB of new memory every forward and writes a byte to each
    page: a page fault each.  A mapping of its own, as malloc makes for a large block: malloc itself
    may serve even a large block from free heap memory a long process left behind (it did, late in
    the whole suite), and then nothing faults."""

    def forward(self, x):
        with mmap.mmap(-1, 128 << 20) as fresh:
            pages = numpy.frombuffer(fresh, dtype=numpy.uint8)
            pages[:: mmap.PAGESIZE] = 1
            del pages  # the mapping closes only when no array views it
        return x

    def backward(self, dout):
        return dout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page faults are counted as on Linux")
def test_the_profile_counts_page_faults_and_system_time_per_step(rng):
    net = Sequential(backend="numpy")
    net.add("Affine1", Affine(0.01 * rng.standard_normal((784, 10)), numpy.zeros(10), dtype="float32"), suffix="1")
    quiet = profile_step(net, SGD(0.01), *data(rng, 4, (784,)), steps=3, warmup=1)
    net.add("Fresh", FreshMemory())
    result = profile_step(net, SGD(0.01), *data(rng, 4, (784,)), steps=3, warmup=1)
    # One fault per page: 32,768 of 4 KiB, or 64 where the kernel maps 2 MiB pages.
    assert result["page_faults_per_step"] >= quiet["page_faults_per_step"] + 32
    assert result["system_s_per_step"] > 0.0005  # the kernel zeroing 128 MiB, every step
    assert "page faults" in format_profile(result)


def test_profile_command_prints_the_table(tmp_path):
    result = run_cli(
        "profile", "--net", "two-layer", "--backend", "numpy", "--steps", "2", "--warmup", "1", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    units = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert units[1:5] == ["Affine1+Relu1", "Affine2", "SoftmaxWithLoss", "update"]
    assert "threads: 1 BLAS" in result.stdout and "whole step" in result.stdout
    assert sys.platform != "linux" or "page faults" in result.stdout


def test_profile_out_saves_the_rows_the_table_and_how_to_make_them_again(tmp_path):
    import json

    out = tmp_path / "profiles" / "two-layer.json"  # its folder does not exist yet
    args = ("profile", "--net", "two-layer", "--backend", "numpy", "--steps", "2", "--warmup", "1")
    result = run_cli(*args, "--out", out, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["text"] in result.stdout  # the very table printed
    assert [r["unit"] for r in saved["profile"]["rows"]][:3] == ["Affine1+Relu1", "Affine2", "SoftmaxWithLoss"]
    assert saved["profile"]["step_s"] > 0 and saved["threads"].startswith("threads: 1 BLAS")
    assert saved["command"].startswith("fastnet profile --net two-layer --backend numpy --batch-size 100")
    assert saved["machine"]["blas"] is not None and saved["optimizer"]
    assert [p.name for p in out.parent.iterdir()] == ["two-layer.json"]  # no temporary left


def test_train_profile_prints_the_table_once_after_the_first_epoch(tmp_path):
    result = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "200",
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--quiet",
        "--profile",
        "--threads",
        "1",
        "--out",
        tmp_path / "run",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "threads: 1 BLAS, 1 numba/conv (--threads)" in lines
    start = lines.index("profile of a training step after epoch 1:")
    assert lines[start - 1].startswith("epoch 1/2") and lines[start + 3].split()[0] == "Affine1+Relu1"
    assert sum(line.startswith("profile of") for line in lines) == 1


def test_the_profile_script_saves_one_profile_per_net(tmp_path):
    import json
    import subprocess

    from fastnet_cli import REPO, cli_env

    out = tmp_path / "profiles"
    script = REPO / "benchmarks" / "profile_step.py"
    args = ["--nets", "two-layer", "mlp", "--backend", "numpy", "--steps", "1", "--warmup", "1", "--save", str(out)]
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=cli_env(tmp_path), timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["profile_mlp.json", "profile_two-layer.json"]
    assert json.loads((out / "profile_mlp.json").read_text())["command"].startswith("fastnet profile --net mlp")


def test_the_one_image_profile_names_each_step_and_saves_them(tmp_path):
    import json
    import subprocess

    from fastnet_cli import REPO, cli_env

    out = tmp_path / "predict.json"
    script = REPO / "benchmarks" / "profile_predict.py"
    args = ["--nets", "two-layer", "--backend", "numpy", "--calls", "5", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=cli_env(tmp_path), timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["profiles"][0]["rows"]
    parts = [r["part"] for r in rows]
    assert parts == [
        "net.predict, whole",
        "the door (structure, values)",
        "finding the plan",
        "step: Affine1+Relu1",
        "step: Affine2",
        "the bare matrix products",
    ]
    assert all(r["us"] > 0 for r in rows)


def test_profile_out_naming_a_folder_is_refused_before_the_work(tmp_path):
    from fastnet_cli import stderr_lines

    folder = tmp_path / "a folder"
    folder.mkdir()
    result = run_cli("profile", "--net", "two-layer", "--backend", "numpy", "--out", folder, tmp_path=tmp_path)
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1 and "is a folder" in lines[0] and "profile.json" in lines[0], lines
    assert "whole step" not in result.stdout  # refused before minutes of profiling, not after
    assert list(folder.iterdir()) == []

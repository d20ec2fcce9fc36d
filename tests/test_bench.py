"""fastnet bench and the one benchmark harness: what is timed, under which load, and what is said."""

import json
import os
import subprocess
import sys
import time

import pytest
from fastnet_cli import REPO, cli_env, command, run_cli, stderr_lines

from fastnet.benchmarking import run_benchmarks
from fastnet.benchmarking.load import busy_processes
from fastnet.benchmarking.runner import _time
from fastnet.benchmarking.workloads import WORKLOADS, Contender, fastnet_contender, make_fastnet_net, step_workload
from fastnet.errors import InputError
from fastnet.profiling.shapes import forward_products

QUICK = dict(repeats=3, warmup=1, progress=False, sample_s=0.002)


def test_an_unknown_backend_is_one_line_and_exit_2(tmp_path):
    result = run_cli("bench", "--backends", "foo", tmp_path=tmp_path)
    assert result.returncode == 2
    lines = stderr_lines(result)
    assert len(lines) == 1 and "'foo'" in lines[0] and "numba" in lines[0], lines
    with pytest.raises(InputError, match="unknown backend 'foo'"):
        run_benchmarks(["two_layer_step"], ["foo"], **QUICK)


def test_the_fastnet_contenders_keep_the_api_defaults():
    for name in ("two_layer_step", "two_layer_infer"):
        contender = fastnet_contender(WORKLOADS[name], "numpy")
        assert contender.net.validate_inputs is True
        contender.step()


def test_the_sync_hook_brackets_every_sample():
    calls = []

    def sync():
        calls.append(time.perf_counter())
        time.sleep(0.01)

    per_step = _time(Contender(step=lambda: None, sync=sync), 2)
    assert len(calls) == 2
    assert per_step >= 0.01 / 2  # the closing sync is inside the clock: queued GPU work is counted


def test_deep_convnet_products_are_the_books_shapes():
    net = make_fastnet_net(WORKLOADS["deep_convnet_step"], "numpy")
    assert forward_products(net, (1, 28, 28), 100) == [
        (78400, 9, 16),
        (78400, 144, 16),
        (19600, 144, 32),
        (25600, 288, 32),
        (6400, 288, 64),
        (6400, 576, 64),
        (100, 1024, 50),
        (100, 50, 10),
    ]


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read CPU time")
def test_busy_processes_spin_during_the_block_and_are_gone_after():
    with busy_processes(2) as pids:
        time.sleep(0.5)
        assert len(pids) == 2 and all(_cpu_seconds(pid) > 0.05 for pid in pids)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_contention_case_times_fastnet_and_torch_under_the_same_load_and_against_quiet():
    pytest.importorskip("torch")
    result = run_benchmarks(["two_layer_step", "two_layer_contended"], ["numpy"], **QUICK)
    loaded = result["workloads"]["two_layer_contended"]
    assert loaded["busy_processes"] == 2
    assert set(loaded["results"]) == {"numpy", "pytorch"}
    assert set(loaded["ratios"]["vs_quiet"]) == {"numpy", "pytorch"}
    assert set(loaded["ratios"]["vs_pytorch"]) == {"numpy"}
    assert "1 BLAS" in loaded["results"]["numpy"]["threads"]


def test_without_pytorch_the_blank_column_is_explained(tmp_path):
    fake = tmp_path / "no_torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = cli_env(tmp_path, PYTHONPATH=os.pathsep.join([str(fake.parent), str(REPO)]))
    result = subprocess.run(
        command(
            "bench",
            "--workloads",
            "two_layer_step",
            "--backends",
            "numpy",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--out",
            tmp_path / "bench",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "vs torch: blank, PyTorch is not installed (pip install torch)" in result.stdout.splitlines()
    saved = json.loads((tmp_path / "bench" / "cpu.json").read_text())
    assert saved["missing_contenders"] == {"pytorch": "PyTorch is not installed (pip install torch)"}


def test_gpu_benchmark_runs_on_the_same_harness(tmp_path):
    pytest.importorskip("torch")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_gpu.py"),
            "--fastnet-backend",
            "numpy",
            "--torch-device",
            "cpu",
            "--quick",
            "--nets",
            "two-layer",
            "--batches",
            "8",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "bench_gpu.json").read_text())
    entry = saved["workloads"][step_workload("two-layer", 8).name]
    assert set(entry["results"]) == {"numpy", "pytorch"} and entry["batch"] == 8
    assert "TwoLayerNet 784-50-10, SGD step, batch 8" in result.stdout


def test_wide_spreads_a_busy_machine_and_oversubscribed_ranks_are_warned_about():
    from fastnet.benchmarking.noise import busy_warning, oversubscribed_warning, spread_warnings

    def timing(low, high):
        return {"min_s": low, "max_s": high, "median_s": (low + high) / 2}

    result = {
        "workloads": {
            "two-layer": {"busy_processes": 0, "results": {"numba": timing(1.0, 1.4), "pytorch": timing(1.0, 3.0)}},
            "two-layer-busy": {"busy_processes": 2, "results": {"numba": timing(1.0, 9.0)}},
        }
    }
    lines = spread_warnings(result)
    assert len(lines) == 1 and lines[0].startswith("two-layer, pytorch: repeats spread 3.0x")
    assert busy_warning(0.2, 2) is None and busy_warning(None, 2) is None
    assert "load average 1.5 on 2 usable cores" in busy_warning(1.5, 2)
    assert oversubscribed_warning(2, 2) is None
    assert "3 ranks on 2 usable cores" in oversubscribed_warning(3, 2)


def test_a_run_records_its_warnings_beside_its_figures(tmp_path):
    from fastnet.benchmarking import run_benchmarks

    result = run_benchmarks(
        ["two_layer_step"],
        ["numpy"],
        repeats=3,
        warmup=1,
        include_torch=False,
        out_dir=tmp_path,
        progress=False,
        plot=False,
        matmul_bound=False,
    )
    assert isinstance(result["warnings"], list)
    assert json.loads((tmp_path / "cpu.json").read_text())["warnings"] == result["warnings"]


def _time_to_accuracy_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("time_to_accuracy", REPO / "benchmarks" / "time_to_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_to_accuracy_bounds_a_ratio_when_a_program_never_reaches_the_target():
    """A program that never reached 99% would have needed longer than its whole run: the seed's
    ratio is then a bound, and the median over seeds a range, not a number made up."""
    tta = _time_to_accuracy_module()

    def run(to_target, total, epoch_s=5.0):
        return {"seconds_to_target": to_target, "total_s": total, "epoch_s": epoch_s}

    both = tta._compare({"fastnet": run(40.0, 40.0), "pytorch": run(80.0, 80.0, 6.25)})
    assert both["ratio_bounds"] == (0.5, 0.5) and both["fastnet_vs_pytorch"] == 0.5
    assert both["epoch_pace_ratio"] == 0.8
    only_fastnet = tta._compare({"fastnet": run(60.0, 60.0), "pytorch": run(None, 100.0)})
    assert only_fastnet["ratio_bounds"] == (0.0, 0.6) and only_fastnet["fastnet_vs_pytorch"] is None
    only_torch = tta._compare({"fastnet": run(None, 90.0), "pytorch": run(60.0, 60.0)})
    assert only_torch["ratio_bounds"] == (1.5, None)
    summary = tta.summarise([both, only_fastnet, {**only_torch, "ratio_bounds": [0.9, 0.9]}])
    assert summary["median_ratio_bounds"] == (0.5, 0.6)  # lows 0.5, 0, 0.9; highs 0.5, 0.6, 0.9
    assert summary["fastnet_vs_pytorch"] is None
    assert tta._bounds((0.5, 0.6)) == "0.50-0.60x" and tta._bounds((0.0, 0.6)) == "below 0.60x"
    assert tta._bounds((1.5, None)) == "above 1.50x"
    assert tta.summarise([both, only_torch])["median_ratio_bounds"] == (1.0, None)  # highs 0.5, inf

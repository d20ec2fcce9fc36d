"""benchmarks/gpu_check.sh and bench_gpu.py on a machine without a GPU.

The dry run goes through every step of the script (environment, benchmark, GPU tests, NCCL
run, summary) and must say there is no GPU, stay within the 8 files a GPU run can return, and
exit non-zero: a run without GPU figures is never a success.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastnet.backends import unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_gpu  # noqa: E402

needs_shell = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and coreutils timeout"
)


@needs_shell
@pytest.mark.skipif(unavailable_reason("cupy") is None, reason="a GPU is usable here: run the script for real")
def test_dry_run_without_a_gpu(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert took < 60, f"the dry run took {took:.0f} s"
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(files) <= 8, files
    assert {"gpu_check.log", "summary.json", "bench_gpu.json"} <= set(files), files
    log = (out / "gpu_check.log").read_text()
    assert proc.stdout in log or log.strip().endswith(proc.stdout.strip().splitlines()[-1])
    assert "NO GPU usable here" in log
    order = [
        log.index(marker)
        for marker in ("=== environment", "=== bench", "=== gpu_tests", "=== kernel_tests", "nccl_smoke", "=== summary")
    ]
    assert order == sorted(order), "the steps ran out of order"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["gpu"] is False and summary["dry_run"] is True
    assert "no GPU: the cupy backend is unavailable here" in summary["failed"]
    assert set(summary["steps"]) == {"bench", "gpu_tests", "kernel_tests", "nccl_smoke"}
    assert summary["steps"]["kernel_tests"]["status"] == "ok", summary
    bench = json.loads((out / "bench_gpu.json").read_text())
    if bench_gpu_torch_reason() is None:  # the benchmark path really measured something
        assert summary["steps"]["bench"]["status"] == "ok", summary
        assert set(bench["workloads"]) == {"two-layer_b8", "simple-conv_b8"}
        assert all(w["loss_agreement"]["agree"] for w in bench["workloads"].values())


def bench_gpu_torch_reason():
    from fastnet.benchmarking.torch_models import torch_missing_reason

    return torch_missing_reason("cpu")


@pytest.mark.skipif(unavailable_reason("cupy") is None, reason="a GPU is usable here")
def test_bench_gpu_fails_when_nothing_is_measured(tmp_path, capsys):
    assert bench_gpu.main(["--quick", "--out", str(tmp_path), "--no-plot"]) == 1
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert result["workloads"] == {}
    assert len(result["not_measured"]) == 8  # 4 nets x 2 batches
    assert result["problems"] and unavailable_reason("cupy") in result["problems"][0]
    assert f"nothing measured: backend cupy unavailable: {unavailable_reason('cupy')}" in capsys.readouterr().out


def test_bench_gpu_counts_a_workload_past_its_deadline_as_a_failure(tmp_path):
    assert (
        bench_gpu.main(
            [
                "--fastnet-backend",
                "numpy",
                "--torch-device",
                "cpu",
                "--quick",
                "--nets",
                "two-layer",
                "--batches",
                "4",
                "--deadline",
                "0",
                "--out",
                str(tmp_path),
                "--no-plot",
            ]
        )
        == 1
    )
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert result["not_measured"] == {"two-layer_b4": "out of time (--deadline 0 s)"}


def test_bench_gpu_compares_losses_with_pytorch(tmp_path):
    if bench_gpu_torch_reason() is not None:
        pytest.skip(bench_gpu_torch_reason())
    assert (
        bench_gpu.main(
            [
                "--fastnet-backend",
                "numpy",
                "--torch-device",
                "cpu",
                "--quick",
                "--nets",
                "two-layer",
                "deep-conv",
                "--batches",
                "4",
                "--out",
                str(tmp_path),
                "--no-plot",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    for entry in result["workloads"].values():
        agreement = entry["loss_agreement"]
        assert agreement["agree"] and len(agreement["fastnet"]) == bench_gpu.LOSS_STEPS
        assert agreement["fastnet"][-1] < agreement["fastnet"][0]  # it trains: the match means something

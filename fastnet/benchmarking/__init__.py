"""Benchmarks: fastnet's backends against PyTorch and against the bare matrix products.

``run_benchmarks`` times every contender in one process, interleaved, each sample between two
device synchronisations; ``format_table`` prints the result.  ``fastnet bench``,
``benchmarks/bench_cpu.py`` and the GPU benchmark ``benchmarks/bench_gpu.py`` are thin
wrappers around these: one harness for CPU and GPU figures.
"""

from fastnet.benchmarking.report import format_table, save_json, save_plot
from fastnet.benchmarking.runner import run_benchmarks
from fastnet.benchmarking.workloads import WORKLOADS, Workload, step_workload

__all__ = ["WORKLOADS", "Workload", "format_table", "run_benchmarks", "save_json", "save_plot", "step_workload"]

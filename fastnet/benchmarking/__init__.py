"""CPU benchmarks: fastnet's backends against PyTorch and against the bare matrix products.

``run_benchmarks`` times every contender in one process, interleaved; ``format_table`` prints
the result.  ``fastnet bench`` and ``benchmarks/bench_cpu.py`` are thin wrappers around these.
"""
from fastnet.benchmarking.report import format_table, save_json, save_plot
from fastnet.benchmarking.runner import run_benchmarks
from fastnet.benchmarking.workloads import WORKLOADS

__all__ = ["WORKLOADS", "format_table", "run_benchmarks", "save_json", "save_plot"]

"""CPU benchmark: fastnet's backends against PyTorch CPU and the bare matrix products.

Writes benchmarks/results/cpu.json (times, ratios, machine and BLAS details) and cpu.png.
OpenBLAS tuning variables from the environment change which kernel runs; for comparable
numbers run it without them (the BLAS kernel actually used is recorded in the JSON):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cpu.py
    python benchmarks/bench_cpu.py --workloads two_layer_step mlp_step --repeats 31

PyTorch runs with its default thread count; the JSON records it.
"""

import sys
from pathlib import Path

from fastnet.cli.main import main

RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    # The same benchmark as `fastnet bench`, saving into benchmarks/results by default.
    sys.exit(main(["bench", "--out", str(RESULTS), *sys.argv[1:]]))

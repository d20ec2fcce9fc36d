"""CPU benchmark: fastnet's backends against PyTorch CPU and the bare matrix products.

Writes benchmarks/results/cpu.json (times, ratios, machine and BLAS details) and cpu.png.
OpenBLAS tuning variables from the environment change which kernel runs; for comparable
numbers run it without them (the BLAS kernel actually used is recorded in the JSON):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cpu.py
    python benchmarks/bench_cpu.py --workloads two_layer_step mlp_step --repeats 31

PyTorch runs with its default thread count; the JSON records it.
"""
import argparse
from pathlib import Path

from fastnet.blas import describe_blas
from fastnet.benchmarking import WORKLOADS, format_table, run_benchmarks

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=None)
    parser.add_argument("--backends", nargs="+", default=None, help="fastnet backends (default numpy numba)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args()
    result = run_benchmarks(args.workloads, args.backends, repeats=args.repeats, warmup=args.warmup,
                            include_torch=not args.no_torch, out_dir=args.out_dir)
    print()
    print(format_table(result))
    print(f"\nBLAS: {describe_blas(result['machine']['blas'])}")
    print(f"results: {Path(args.out_dir) / 'cpu.json'}, {Path(args.out_dir) / 'cpu.png'}")


if __name__ == "__main__":
    main()

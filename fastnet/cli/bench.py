"""fastnet bench: time training steps on every backend (and PyTorch CPU when installed)."""
from fastnet.cli.parser import positive_int


def register(sub):
    p = sub.add_parser("bench", help="benchmark the backends against each other and PyTorch",
                       description="Times training steps of the classic nets on each fastnet backend, "
                                   "PyTorch CPU (when installed) and the bare matrix products, "
                                   "interleaved in one process; prints medians and ratios.")
    p.add_argument("--workloads", nargs="+", default=None,
                   help="two_layer_step, mlp_step, convnet_step, two_layer_infer (default: all)")
    p.add_argument("--backends", nargs="+", default=None, help="fastnet backends (default: numpy numba)")
    p.add_argument("--repeats", type=positive_int, default=15)
    p.add_argument("--warmup", type=positive_int, default=5)
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--out", default="runs/bench", help="folder for cpu.json and cpu.png (default: %(default)s)")
    p.set_defaults(run=run)


def run(args):
    from pathlib import Path

    from fastnet.benchmarking import format_table, run_benchmarks
    from fastnet.blas import describe_blas

    result = run_benchmarks(args.workloads, args.backends, repeats=args.repeats, warmup=args.warmup,
                            include_torch=not args.no_torch, out_dir=args.out)
    print()
    print(format_table(result))
    print(f"\nBLAS: {describe_blas(result['machine']['blas'])}")
    print(f"results: {Path(args.out) / 'cpu.json'}, {Path(args.out) / 'cpu.png'}")
    return 0

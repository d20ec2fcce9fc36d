"""fastnet bench: time training steps on every backend (and PyTorch CPU when installed)."""

from fastnet.cli.parser import positive_int, timing_rounds
from fastnet.cli.profile import add_threads_option


def register(sub):
    from fastnet.backends import BACKEND_NAMES
    from fastnet.benchmarking import WORKLOADS

    p = sub.add_parser(
        "bench",
        help="benchmark the backends against each other and PyTorch",
        description="Times the classic nets on each fastnet backend through the public API "
        "with its defaults, PyTorch CPU (when installed) and the bare matrix "
        "products, interleaved in one process; prints medians and ratios.",
    )
    p.add_argument(
        "--workloads",
        nargs="+",
        default=None,
        choices=list(WORKLOADS),
        metavar="WORKLOAD",
        help=f"{', '.join(WORKLOADS)} (default: all)",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        default=None,
        choices=BACKEND_NAMES[::-1],
        metavar="BACKEND",
        help=f"fastnet backends: {', '.join(BACKEND_NAMES[::-1])} (default: numpy numba)",
    )
    p.add_argument(
        "--repeats",
        type=timing_rounds,
        default=15,
        help="timed rounds per workload; the medians are printed (default: %(default)s)",
    )
    p.add_argument(
        "--warmup",
        type=timing_rounds,
        default=5,
        help="untimed rounds first: compilation, caches and thread pools (default: %(default)s)",
    )
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    add_threads_option(p)
    p.add_argument(
        "--distributed",
        type=positive_int,
        nargs="?",
        const=2,
        default=None,
        metavar="N",
        help="instead: training samples/s of 1 process (all cores) vs N MPI ranks (default N: 2), "
        "SimpleConvNet and the wide MLP unless --workloads; writes distributed.json",
    )
    p.add_argument("--out", default="runs/bench", help="folder for cpu.json and cpu.png (default: %(default)s)")
    p.set_defaults(run=run)


def run(args):
    from pathlib import Path

    from fastnet.benchmarking import format_table, run_benchmarks
    from fastnet.blas import describe_blas

    if args.distributed:
        from fastnet.benchmarking.distributed import bench_command

        return bench_command(args)
    result = run_benchmarks(
        args.workloads,
        args.backends,
        repeats=args.repeats,
        warmup=args.warmup,
        include_torch=not args.no_torch,
        out_dir=args.out,
        threads=args.threads,
    )
    print()
    print(format_table(result))
    for line in result["warnings"]:  # again under the table, where the ratios are read
        print(f"warning: {line}")
    print(f"\nBLAS: {describe_blas(result['machine']['blas'])}")
    print(f"results: {Path(args.out) / 'cpu.json'}, {Path(args.out) / 'cpu.png'}")
    return 0

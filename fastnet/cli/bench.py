"""fastnet bench: time training steps on every backend (and PyTorch CPU when installed)."""


def register(sub):
    p = sub.add_parser("bench", help="benchmark the backends against each other and PyTorch")
    p.add_argument("--workloads", nargs="+", default=None, help="subset of workloads to run")
    p.add_argument("--backends", nargs="+", default=None, help="subset of fastnet backends")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON and PNG")
    p.set_defaults(run=run)


def run(args):
    from fastnet.benchmarking import cli_run

    return cli_run(args)

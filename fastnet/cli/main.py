"""The ``fastnet`` command: train, eval, info, gradcheck, bench.

Exit codes: 0 ok, 2 usage or input error, 3 training diverged, 130 interrupted (SIGINT),
143 terminated (SIGTERM).  User mistakes print one line on stderr, never a traceback.
"""
from __future__ import annotations

import sys

from fastnet.cli.parser import OneLineParser
from fastnet.errors import FastnetError

COMMANDS = ("train", "eval", "info", "gradcheck", "bench")


def build_parser():
    from fastnet import __version__
    from fastnet.cli import bench, evaluate, gradcheck, info, train

    parser = OneLineParser(prog="fastnet", description="Layer-based neural networks on NumPy, Numba or CuPy.")
    parser.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for module in (train, evaluate, info, gradcheck, bench):
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except FastnetError as exc:
        print(f"fastnet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fastnet: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("fastnet: error: out of memory; use a smaller --batch-size", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

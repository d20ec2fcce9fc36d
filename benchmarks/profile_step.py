"""Where a training step's time goes, layer by layer: ``fastnet profile`` for several nets.

python benchmarks/profile_step.py [--backend numba] [--nets two-layer simple-conv deep-conv]
    [--save DIR]   (each net's profile also saved as DIR/profile_<net>.json)
"""

import argparse
import sys

from fastnet.catalog import NET_NAMES
from fastnet.cli.main import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", choices=NET_NAMES, default=list(NET_NAMES))
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--save", metavar="DIR", default=None, help="save each profile as DIR/profile_<net>.json")
    args, rest = parser.parse_known_args()

    def saving(net):
        return ["--out", f"{args.save}/profile_{net}.json"] if args.save else []

    codes = [main(["profile", "--net", net, "--backend", args.backend, *saving(net), *rest]) for net in args.nets]
    sys.exit(max(codes))

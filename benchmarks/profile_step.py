"""Where a training step's time goes, layer by layer: ``fastnet profile`` for several nets.

python benchmarks/profile_step.py [--backend numba] [--nets two-layer simple-conv deep-conv]
"""

import argparse
import sys

from fastnet.cli.main import main
from fastnet.training.config import NET_NAMES

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", choices=NET_NAMES, default=list(NET_NAMES))
    parser.add_argument("--backend", default="numba")
    args, rest = parser.parse_known_args()
    codes = [main(["profile", "--net", net, "--backend", args.backend, *rest]) for net in args.nets]
    sys.exit(max(codes))

"""The --backend / --strict-backend options shared by the commands."""
import sys

from fastnet.backends import BACKEND_NAMES, select_backend


def add_backend_options(parser, default="auto"):
    parser.add_argument("--backend", default=default, choices=("auto",) + BACKEND_NAMES[::-1],
                        help="array backend (default: %(default)s = cupy if a GPU is usable, else numba, else numpy)")
    parser.add_argument("--strict-backend", action="store_true",
                        help="fail (exit 2) instead of falling back when the backend cannot be used")


def choose_backend(args, quiet=False):
    """Resolve --backend; fallbacks print one warning line with the recorded reason."""
    selection = select_backend(args.backend, strict=args.strict_backend)
    if selection.fell_back:
        print(f"fastnet: {selection.message()}", file=sys.stderr)
    elif not quiet:
        print(selection.message())
    return selection

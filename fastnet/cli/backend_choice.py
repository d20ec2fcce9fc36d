"""The --backend / --strict-backend options shared by the commands."""

import sys

from fastnet.backends import BACKEND_NAMES, select_backend

AUTO_HELP = "auto = cupy if a GPU is usable, else numba, else numpy"


def add_backend_options(parser, default="auto"):
    """``default`` None: a resumed run's recorded backend, else auto."""
    if default is None:
        shown = f"the backend a resumed run recorded, else auto ({AUTO_HELP})"
    elif default == "auto":
        shown = AUTO_HELP
    else:
        shown = default
    parser.add_argument(
        "--backend", default=default, choices=("auto",) + BACKEND_NAMES[::-1], help=f"array backend (default: {shown})"
    )
    parser.add_argument(
        "--strict-backend",
        action="store_true",
        help="fail (exit 2) instead of falling back when the backend cannot be used",
    )


def choose_backend(args, quiet=False, recorded=None):
    """Resolve --backend; fallbacks print one warning line with the recorded reason.

    Not given (None): the ``recorded`` backend of the checkpoint being resumed, else auto.  A
    backend other than the recorded one is announced: the run then is not bitwise the same.
    """
    name = args.backend or (recorded if recorded in BACKEND_NAMES else None) or "auto"
    selection = select_backend(name, strict=args.strict_backend)
    if selection.fell_back:
        print(f"fastnet: {selection.message()}", file=sys.stderr)
    elif not quiet:
        print(selection.message())
    used = selection.backend.name
    if recorded is not None and used != recorded:
        print(
            f"note: the checkpoint was trained on the {recorded} backend and continues on {used}; "
            f"the weights will not be bitwise those of an uninterrupted {recorded} run"
        )
    return selection

"""The ``fastnet`` command: train, eval, info, gradcheck, bench, profile, check.

Exit codes:
    0    success
    1    gradcheck found a gradient beyond its tolerance, or check found a backend that disagrees (or an unexpected bug: a traceback)
    2    usage or input error: a bad option, missing or damaged files, a backend that cannot be
         used with --strict-backend, a batch that would not fit in memory, a full disk
    3    training diverged (the loss became non-finite); the last good checkpoint is kept
    130  interrupted by SIGINT (Ctrl-C); training saved a checkpoint to resume from
    143  terminated by SIGTERM; same as SIGINT

Anything a user can cause prints exactly one line on stderr, never a traceback.
"""
from __future__ import annotations

import signal
import sys

from fastnet.cli.parser import OneLineParser
from fastnet.errors import FastnetError

COMMANDS = ("train", "eval", "predict", "serve", "export", "info", "gradcheck", "bench", "profile", "check")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser():
    from fastnet import __version__
    from fastnet.cli import bench, check, evaluate, gradcheck, info, profile, train
    from fastnet.cli import export, predict, serve

    parser = OneLineParser(prog="fastnet", description="Layer-based neural networks on NumPy, Numba or CuPy.")
    parser.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for module in (train, evaluate, predict, serve, export, info, gradcheck, bench, profile, check):
        module.register(sub)
    return parser


def _stop(signum, frame):
    """Outside the training loop a stop signal ends the command at once (the loop saves first)."""
    from fastnet.training.stopping import StopNow

    raise StopNow(signum)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    previous = {s: signal.signal(s, _stop) for s in STOP_SIGNALS}
    try:
        return _run(args)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args) -> int:
    from fastnet.training.stopping import TrainingInterrupted

    try:
        try:
            return args.run(args) or 0
        finally:
            # The outcome is decided: a late signal must not turn it into a traceback.
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)
    except TrainingInterrupted as exc:
        return _say(f"fastnet: {exc}", exc.exit_code)
    except FastnetError as exc:
        return _say(f"fastnet: error: {exc}", exc.exit_code)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        return _say(f"fastnet: stopped by {signal.Signals(signum).name}", 128 + signum)
    except MemoryError:
        return _say("fastnet: error: out of memory: the net, the data or a batch did not fit; "
                    "use a smaller --batch-size or a smaller net", 2)
    except BrokenPipeError:
        return 0  # the reader went away (e.g. piped into head): nothing left to say
    except OSError as exc:  # the file system said no: name what and why, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        return _say(f"fastnet: error: {exc.strerror or exc}{where}", 2)


def _say(line, code) -> int:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

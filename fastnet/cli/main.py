"""The ``fastnet`` command: train, eval, info, gradcheck, bench, profile, check.

Exit codes:
    0    success
    1    gradcheck found a gradient beyond its tolerance, or check found a backend that disagrees
         (or an unexpected bug: a traceback)
    2    usage or input error: a bad option, missing or damaged files, a backend that cannot be
         used with --strict-backend, a batch that would not fit in memory, a full disk
    3    training diverged (the loss became non-finite); the last good checkpoint is kept
    4    fastnet train --ranks N: a rank exited with an exit code, without a signal or a word
         (the launcher's line names it, the last whole checkpoint and the resume command)
    130  interrupted by SIGINT (Ctrl-C); training saved a checkpoint to resume from (a second
         signal stops at once, and the line names the last checkpoint saved before it)
    143  terminated by SIGTERM; same as SIGINT
    128+S  fastnet train --ranks N: a rank died of signal S (137 SIGKILL, 139 SIGSEGV, 134
         SIGABRT, 135 SIGBUS); the launcher's last line names the rank, its PID, the signal, the
         last whole checkpoint and the resume command.  A second SIGINT/SIGTERM to the launcher
         ends the job at once: 130/143, with one line naming the last whole checkpoint

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
    from fastnet.cli import bench, check, evaluate, export, gradcheck, info, predict, profile, serve, train

    parser = OneLineParser(prog="fastnet", description="Layer-based neural networks on NumPy, Numba or CuPy.")
    parser.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    for module in (train, evaluate, predict, serve, export, info, gradcheck, bench, profile, check):
        module.register(sub)
    return parser


_received: list[int] = []  # stop signals taken by _stop during this command


def stop_handled() -> None:
    """A command whose normal end is a stop signal (``fastnet serve``'s Ctrl-C) says it took it."""
    _received.clear()


def _stop(signum, frame):
    """Outside the training loop a stop signal ends the command at once (the loop saves first)."""
    from fastnet.training.stopping import StopNow

    _received.append(signum)
    raise StopNow(signum)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what fastnet train --ranks runs on each rank
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args)


def run_command(args) -> int:
    """``args.run(args)`` with stop signals ending it in one line and exit 128 + the signal."""
    from fastnet.plots.figure import set_aside_unusable_mplbackend

    note = set_aside_unusable_mplbackend()  # before any command draws or imports matplotlib
    if note:
        print(note, file=sys.stderr)
    _received.clear()
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
            code = args.run(args) or 0
        finally:
            # The outcome is decided: a late signal must not turn it into a traceback.
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)
        if _received:  # a library swallowed the interrupt (e.g. inside an import): it still stops
            return _stopped(_received[0])
        return code
    except BaseException as exc:
        if _received and not isinstance(exc, (TrainingInterrupted, SystemExit)):
            # The signal landed inside other code, which turned it into its own error (an import
            # that "failed to initialise"): the user asked to stop, and that is what is said.
            return _stopped(_received[0])
        return _outcome(exc)


def _stopped(signum) -> int:
    return _say(f"fastnet: stopped by {signal.Signals(signum).name}", 128 + signum)


def _outcome(exc) -> int:
    """The one line and exit code for what ended the command; anything else is a bug: re-raised."""
    from fastnet.training.stopping import TrainingInterrupted

    if isinstance(exc, TrainingInterrupted):
        return _say(f"fastnet: {exc}", exc.exit_code)
    if isinstance(exc, FastnetError):
        return _say(f"fastnet: error: {exc}", exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", signal.SIGINT)
        if getattr(exc, "said", None):  # a second signal inside training: what was not saved
            return _say(f"fastnet: {exc.said}", 128 + signum)
        return _stopped(signum)
    if isinstance(exc, MemoryError):
        return _say(
            "fastnet: error: out of memory: the net, the data or a batch did not fit; "
            "use a smaller --batch-size or a smaller net",
            2,
        )
    if isinstance(exc, BrokenPipeError):
        return 0  # the reader went away (e.g. piped into head): nothing left to say
    if isinstance(exc, OSError):  # the file system said no: name what and why, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        return _say(f"fastnet: error: {exc.strerror or exc}{where}", 2)
    raise exc


def _say(line, code) -> int:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

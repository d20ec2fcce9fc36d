"""Stopping a run cleanly: SIGINT/SIGTERM finish the current step, a second one stops at once."""
from __future__ import annotations

import shlex
import signal
import threading
from contextlib import contextmanager

from fastnet.errors import FastnetError


class TrainingInterrupted(FastnetError):
    """SIGINT or SIGTERM arrived; a checkpoint of the last finished step was saved."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class StopNow(KeyboardInterrupt):
    """A second SIGINT/SIGTERM while the first was being handled: stop without saving."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def resume_command(checkpoint, *extra, launcher=()) -> str:
    """The command that continues a run, quoted so it can be pasted into a shell as it is.

    The checkpoint records the backend, dtype, data folder and every other setting, so the
    path is all a resume needs; ``launcher`` starts it on several ranks (``mpiexec -n 4``).
    """
    return shlex.join([*map(str, launcher), "fastnet", "train", "--resume", str(checkpoint), *map(str, extra)])


@contextmanager
def stop_signals(on_first):
    """While inside, SIGINT/SIGTERM call ``on_first(signum)``; a second one raises ``StopNow``.

    Only the main thread can take signals: elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = []

    def handler(signum, frame):
        if seen:
            raise StopNow(signum)
        seen.append(signum)
        on_first(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

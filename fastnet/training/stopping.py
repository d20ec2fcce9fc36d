"""Stopping a run cleanly: SIGINT/SIGTERM finish the current step, a second one stops at once."""

from __future__ import annotations

import shlex
import signal
import threading
from contextlib import contextmanager

from fastnet.errors import FastnetError


class TrainingInterrupted(FastnetError):
    """SIGINT or SIGTERM arrived; a checkpoint of the last finished step was saved."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class StopNow(KeyboardInterrupt):
    """A second SIGINT/SIGTERM while the first was being handled: stop without saving.

    ``said`` (set by ``explain``, where the loop knows its position) is the command's one line:
    that the current step has no checkpoint, and which checkpoint is the one to resume from."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.said: str | None = None

    def explain(self, where, checkpoint=None, checkpoint_where="", resume_options=(), launcher=()):
        name = signal.Signals(self.signum).name
        said = f"stopped at once by a second {name} at {where}: no checkpoint was saved for it"
        if checkpoint is None:
            said += " (nor before it)"
        else:
            resume = resume_command(checkpoint, *resume_options, launcher=launcher)
            said += f"; the last one ({checkpoint_where}) is kept: {checkpoint}; resume with: {resume}"
        self.said = said
        return self


def supervised_launch(ranks: int, communicator: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(launcher, options)`` that resume a job started by ``fastnet train --ranks``: ``--ranks``
    means ``--distributed auto`` (mpi unless --backend cupy), so only nccl is named."""
    options = ("--distributed", communicator) if communicator != "mpi" else ()
    return ("fastnet", "train", "--ranks", str(ranks)), options


def resume_command(checkpoint, *extra, launcher=()) -> str:
    """The command that continues a run, quoted so it can be pasted into a shell as it is.

    The checkpoint records the backend, dtype, data folder and every other setting, so the
    path is all a resume needs; ``launcher`` starts it on several ranks: the words before
    ``fastnet`` (``mpiexec -n 4``), or the whole head when it is the command itself
    (``fastnet train --ranks 4``).
    """
    head = [*map(str, launcher)]
    if "fastnet" not in head:
        head += ["fastnet", "train"]
    return shlex.join([*head, "--resume", str(checkpoint), *map(str, extra)])


@contextmanager
def stop_signals(on_first):
    """While inside, SIGINT/SIGTERM call ``on_first(signum)``; a second one raises ``StopNow``.

    Only the main thread can take signals: elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

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


def interruption(signum, where, checkpoint, complete, resume_options=(), launcher=()) -> TrainingInterrupted:
    """What a run stopped by ``signum`` at ``where`` says: the checkpoint saved and how to resume."""
    name = signal.Signals(signum).name
    code = 128 + int(signum)
    if checkpoint is None:
        return TrainingInterrupted(f"interrupted by {name} at {where}; no checkpoint (no output folder)", code)
    if complete:
        further = resume_command(checkpoint, "--epochs", "N", *resume_options, launcher=launcher)
        return TrainingInterrupted(
            f"interrupted by {name} after the last epoch; the run is complete and its "
            f"checkpoint saved: {checkpoint} (to train further: {further})",
            code,
        )
    return TrainingInterrupted(
        f"interrupted by {name} at {where}; checkpoint saved; resume with: "
        f"{resume_command(checkpoint, *resume_options, launcher=launcher)}",
        code,
    )

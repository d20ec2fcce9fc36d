"""The folder a supervising launcher (``fastnet train --ranks N``) shares with its ranks.

MPICH's launcher kills the surviving ranks within milliseconds of one dying, and its banner
may name a survivor it killed rather than the rank that died, so the ranks leave the launcher
what it needs in a folder it made (named by ``FASTNET_RANK_RECORDS``):

- ``<rank>.pid``: the rank's process id, written as it starts;
- ``<rank>.fault``: Python's fault handler writes here on SIGSEGV, SIGABRT, SIGBUS, SIGFPE or
  SIGILL (its first line names the signal), then the rank dies of that signal as before;
- ``<rank>.said``: the rank ended its own way (finished, stopped, or reported its error in a
  line), so the launcher has nothing to add;
- ``output``: rank 0's output folder, where the last checkpoint is.

Without the variable (one process, or ``mpiexec`` run by hand) every function here does nothing.
"""

from __future__ import annotations

import faulthandler
import os
import re
from pathlib import Path

RECORDS_VAR = "FASTNET_RANK_RECORDS"
_FAULT_NAMES = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_fault_file = None  # kept open for the process's life: the fault handler writes to its descriptor


def records_folder() -> Path | None:
    """The folder of a supervised job, or None."""
    folder = os.environ.get(RECORDS_VAR)
    return Path(folder) if folder else None


def supervised() -> bool:
    """Started by ``fastnet train --ranks N`` (rather than by hand under ``mpiexec``)."""
    return records_folder() is not None


def _write(name: str, text: str) -> None:
    folder = records_folder()
    if folder is None:
        return
    try:
        part = folder / f".{name}.{os.getpid()}"
        part.write_text(text)
        part.replace(folder / name)  # whole or absent: the launcher may read it at any moment
    except OSError:
        pass  # the launcher went away with its folder: nothing left to tell


def record_start(rank: int | None) -> None:
    """This rank's process id, and its fault handler writing to the folder."""
    global _fault_file
    folder = records_folder()
    if folder is None or rank is None:
        return
    _write(f"{rank}.pid", str(os.getpid()))
    try:
        _fault_file = open(folder / f"{rank}.fault", "w")  # noqa: SIM115  # open until the process ends
    except OSError:
        return
    faulthandler.enable(file=_fault_file, all_threads=False)


def record_said(rank: int | None) -> None:
    """This rank ends its own way (its outcome is said, or it is one of all alike)."""
    if rank is not None:
        _write(f"{rank}.said", "")


def record_output(folder) -> None:
    """Rank 0's output folder, where its checkpoint goes."""
    _write("output", str(folder))


class RankRecords:
    """The launcher's side: what the ranks of one job left in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def pids(self) -> dict[int, int]:
        """Each started rank's process id."""
        found = {}
        for path in self.folder.glob("*.pid"):
            try:
                found[int(path.stem)] = int(path.read_text())
            except (OSError, ValueError):
                continue
        return found

    def said(self, rank: int) -> bool:
        return (self.folder / f"{rank}.said").exists()

    def who_said(self, ranks: int) -> frozenset[int]:
        return frozenset(rank for rank in range(ranks) if self.said(rank))

    def fault(self, rank: int) -> str | None:
        """The signal the fault handler saw on ``rank`` (e.g. "SIGSEGV"), or None."""
        try:
            text = (self.folder / f"{rank}.fault").read_text(errors="replace")
        except OSError:
            return None
        found = re.search(r"Fatal Python error: ([^\n]+)", text)
        if found is None:
            return None
        reason = found.group(1).strip()
        return next((name for words, name in _FAULT_NAMES.items() if reason.startswith(words)), reason)

    def output(self) -> Path | None:
        try:
            return Path((self.folder / "output").read_text())
        except OSError:
            return None

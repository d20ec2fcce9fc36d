"""Which rank of a job ended first, and how: the launcher watches the ranks' process ids.

The ranks are not the launcher's children (MPICH's proxy starts them), so their exit status
cannot be waited for.  A pidfd (Linux 5.3) wakes the watch the moment a rank ends, usually
before its parent reaps it: the zombie's ``/proc/<pid>/stat`` still holds the wait status.
Where pidfds are missing the ids are polled.  Signals go through the pidfds too, so a
process id reused after a rank ended is never signalled.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from dataclasses import dataclass

_POLL_S = 0.01


@dataclass(frozen=True)
class RankEnd:
    """The first rank seen to end: its rank, process id, wait status (None: already reaped), and
    the ranks that had said how they end by then (where any had, the job's end is theirs)."""

    rank: int
    pid: int
    status: int | None
    said_before: frozenset[int] = frozenset()


def _status_of_zombie(pid: int) -> int | None:
    """The wait status of ``pid`` if it has ended but is not yet reaped (Linux), else None."""
    try:
        text = open(f"/proc/{pid}/stat").read()  # noqa: SIM115  # one short read
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if not fields or fields[0] not in ("Z", "X") or len(fields) < 50:
        return None
    return int(fields[49])  # field 52: exit_code, as waitpid reports it


def _killed(status: int | None) -> bool:
    return status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _status_of_zombie(pid) is None


class RankWatch:
    """A thread that learns the ranks' ids from ``pids()`` (as they start) and records the first
    to end (``first``)."""

    def __init__(self, pids, said=frozenset):
        self._pids = pids  # () -> {rank: pid}
        self._said = said  # () -> the ranks that have said how they end
        self._fds: dict[int, tuple[int, int | None]] = {}  # rank -> (pid, pidfd or None)
        self.first: RankEnd | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rank-watch", daemon=True)

    def start(self) -> RankWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        with self._lock:
            for _pid, fd in self._fds.values():
                if fd is not None:
                    os.close(fd)
            self._fds.clear()

    def known(self) -> dict[int, int]:
        with self._lock:
            return {rank: pid for rank, (pid, _fd) in self._fds.items()}

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every rank still running (through its pidfd where there is one)."""
        self._learn()
        with self._lock:
            for pid, fd in self._fds.values():
                try:
                    if fd is not None:
                        signal.pidfd_send_signal(fd, signum)
                    else:
                        os.kill(pid, signum)
                except (ProcessLookupError, PermissionError, OSError):
                    pass

    def _learn(self) -> None:
        try:
            found = self._pids()
        except OSError:
            return
        with self._lock:
            for rank, pid in found.items():
                if rank in self._fds:
                    continue
                try:
                    fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
                except OSError:  # already gone (and reaped): seen as ended below
                    fd = None
                self._fds[rank] = (pid, fd)

    def _ended(self, timeout: float) -> list[int]:
        with self._lock:
            watched = dict(self._fds)
        pidfds = {fd: rank for rank, (_pid, fd) in watched.items() if fd is not None}
        if pidfds and len(pidfds) == len(watched):
            poller = select.poll()
            for fd in pidfds:
                poller.register(fd, select.POLLIN)
            return [pidfds[fd] for fd, _event in poller.poll(timeout * 1000)]
        time.sleep(timeout)
        return [rank for rank, (pid, _fd) in watched.items() if not _alive(pid)]

    def _run(self) -> None:
        while not self._stop.is_set() and self.first is None:
            self._learn()
            ended = self._ended(_POLL_S)
            if not ended:
                continue
            pids = self.known()
            statuses = {rank: _status_of_zombie(pids[rank]) for rank in ended}
            # Two seen in one wake-up: the one that did not die of the launcher's SIGKILL is first.
            ended.sort(key=lambda rank: (_killed(statuses[rank]), rank))
            rank = ended[0]
            self.first = RankEnd(rank, pids[rank], statuses[rank], frozenset(self._said()))

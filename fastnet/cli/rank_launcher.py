"""``fastnet train --ranks N``: start ``mpiexec -n N`` as a child and supervise its ranks.

As torchrun supervises its workers: the job runs in its own session (the terminal's Ctrl-C
reaches only this process), its output is relayed unchanged (less MPICH's banner, which may
name the wrong process), and every way the job can end finishes in one line and a documented
exit code:

- it ends by itself: the ranks' own outcome (rank 0's line) and ``mpiexec``'s exit code;
- a rank dies (SIGKILL, SIGSEGV, ...): MPICH kills the others within milliseconds, so no rank
  can speak; this process names the rank, its PID and the signal, the last checkpoint and the
  resume command, exit 128 + the signal (4 where the rank exited without a signal or a word:
  MPICH would leave the others waiting for it, so they are ended after ``GRACE_S``);
- the first SIGINT/SIGTERM is passed on once (the ranks stop together at one step and save);
  a second one ends the job at once (SIGKILL to ``mpiexec``, its proxies and the ranks, so no
  launcher assertions reach the terminal), exit 128 + the signal, naming the last whole checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fastnet.distributed.hydra_banner import BannerFilter
from fastnet.distributed.rank_records import RECORDS_VAR, RankRecords
from fastnet.distributed.rank_watch import RankWatch
from fastnet.training.stopping import resume_command, supervised_launch

SILENT_EXIT = 4  # a rank ended with an exit code, without a signal or a word
GRACE_S = 3.0  # how long the others may go on after a rank ended without a word
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RankLauncher:
    """One supervised job: ``mpiexec -n ranks`` running ``fastnet <argv>`` on every rank."""

    def __init__(self, ranks: int, argv: list[str], communicator: str, out: str | None = None):
        self.ranks = ranks
        self.argv = argv
        self.communicator = communicator
        self.out = out  # --out or the --resume folder, where rank 0 has not said yet
        self.signals: list[int] = []
        self.ended_after_silence = False  # the job was ended because a rank left without a word

    def run(self) -> int:
        from fastnet.benchmarking.distributed import find_mpiexec

        mpiexec = find_mpiexec()
        with tempfile.TemporaryDirectory(prefix="fastnet-ranks-") as folder:
            records = RankRecords(Path(folder))
            env = {**os.environ, RECORDS_VAR: folder}
            cmd = [mpiexec, "-n", str(self.ranks), sys.executable, "-m", "fastnet", *self.argv]
            previous = {s: signal.signal(s, self._on_signal) for s in _STOP_SIGNALS}
            try:
                job = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                    start_new_session=True,  # the terminal's Ctrl-C reaches only the launcher
                )  # fmt: skip
                self.job = job
                watch = RankWatch(records.pids, lambda: records.who_said(self.ranks)).start()
                self.watch = watch
                if self.signals:  # arrived while mpiexec was starting: handled as if after
                    job.send_signal(self.signals[0])
                    if len(self.signals) > 1:
                        self._end_now()
                banner = BannerFilter()
                relays = [
                    _relay(job.stdout, sys.stdout, banner),
                    _relay(job.stderr, sys.stderr, None),
                ]
                code = self._wait(job, records, watch)
                for relay in relays:
                    relay.join(timeout=2)
                watch.stop()
                return self._outcome(code, records, watch, banner)
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    # --- signals ----------------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        self.signals.append(signum)
        job = getattr(self, "job", None)
        if job is None or job.poll() is not None:
            return
        if len(self.signals) == 1:
            job.send_signal(signum)  # MPICH passes it on to every rank once
        else:
            self._end_now()

    def _end_now(self) -> None:
        """SIGKILL to mpiexec's process group (it and its proxies), then to every rank (each
        rank is in a session of its own): nobody is left to print."""
        try:
            os.killpg(self.job.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.watch.signal_all(signal.SIGKILL)

    def _wait(self, job, records: RankRecords, watch: RankWatch) -> int:
        """mpiexec's exit code.  A rank that ended without a word while the others run (MPICH
        ends them only when a rank dies of a signal) would leave them waiting for it forever:
        after ``GRACE_S`` the job is ended."""
        seen = None
        while True:
            try:
                return job.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            first = watch.first
            if first is None or records.said(first.rank) or len(self.signals) > 1:
                continue
            seen = seen or time.monotonic()
            if time.monotonic() - seen > GRACE_S:
                self.ended_after_silence = True
                self._end_now()

    # --- the last line ----------------------------------------------------------------------------
    def _outcome(self, code: int, records: RankRecords, watch: RankWatch, banner: BannerFilter) -> int:
        if len(self.signals) > 1:
            name = signal.Signals(self.signals[-1]).name
            return _say(
                f"fastnet: stopped at once by a second {name}: the job was ended without saving the current "
                f"step; {self._kept(records)}",
                128 + self.signals[-1],
            )
        first = watch.first
        if code < 0:  # mpiexec itself ended by a signal (ours, after a silent rank)
            code = 128 - code
        if code == 0:
            return code
        if first is None or first.said_before or records.said(first.rank):
            if records.who_said(self.ranks) or not banner.exit_string:
                return code  # a rank said how the job ended (rank 0's line, or the rank that failed)
            said = f"a rank ended ({banner.exit_string}) before it said why"
            return _say(f"fastnet: {said}; {self._kept(records)}", code)
        # The first rank to end said nothing: it is the cause, whatever the others said after it
        # (an MPI error of a rank whose peer vanished mid-allreduce).
        how, exit_code = self._how(first, records, banner, code)
        return _say(
            f"fastnet: rank {first.rank} (PID {first.pid}) {how}, and the job was ended; {self._kept(records)}",
            exit_code,
        )

    def _how(self, first, records: RankRecords, banner: BannerFilter, job_code: int) -> tuple[str, int]:
        fault = records.fault(first.rank)
        if fault in signal.Signals.__members__:
            return f"died of {fault}", 128 + signal.Signals[fault]
        status = first.status
        if status is not None and os.WIFSIGNALED(status):
            return f"died of {signal.Signals(os.WTERMSIG(status)).name}", 128 + os.WTERMSIG(status)
        if status is not None and os.WIFEXITED(status):
            return f"exited with code {os.WEXITSTATUS(status)} without saying why", SILENT_EXIT
        # Reaped before its status was seen, and no fault record (a caught fatal signal leaves one).
        # mpiexec's own code then tells: the signal's number for a killed rank, else the rank's code;
        # a job the launcher had to end had a rank that exited without a word.
        if not self.ended_after_silence and job_code == signal.SIGKILL:
            return "died of SIGKILL (kill -9 or the out-of-memory killer)", 128 + signal.SIGKILL
        reported = f"mpiexec reports exit code {job_code}" if not self.ended_after_silence else "its code unseen"
        return f"exited without saying why ({reported})", SILENT_EXIT

    def _kept(self, records: RankRecords) -> str:
        """What the run kept: the last whole checkpoint and how to resume from it."""
        folder = records.output() or (Path(self.out) if self.out else None)
        checkpoint = folder / "checkpoint.npz" if folder else None
        if checkpoint is None or not checkpoint.is_file():
            return "no checkpoint was written yet"
        launcher, options = supervised_launch(self.ranks, self.communicator)
        resume = resume_command(checkpoint, *options, launcher=launcher)
        return f"the last whole checkpoint is {checkpoint}{_position(checkpoint)}; resume with: {resume}"


def _position(checkpoint) -> str:
    from fastnet.training.checkpoint import read_checkpoint_meta

    try:
        progress = read_checkpoint_meta(checkpoint)["progress"]
        epoch, step = int(progress["epoch"]), int(progress["step"])
    except Exception:  # noqa: BLE001  # only words: the path is what matters
        return ""
    return f" (end of epoch {epoch})" if step == 0 else f" (epoch {epoch + 1}, step {step})"


def _relay(source, sink, banner: BannerFilter | None) -> threading.Thread:
    """Copy ``source`` (a pipe) to ``sink`` as it comes, through ``banner`` where given."""

    def copy():
        out = sink.buffer
        while True:
            chunk = os.read(source.fileno(), 65536)
            if not chunk:
                break
            _write(out, banner.feed(chunk) if banner else chunk)
        if banner:
            _write(out, banner.finish())

    thread = threading.Thread(target=copy, name="relay", daemon=True)
    thread.start()
    return thread


def _write(out, data: bytes) -> None:
    if not data:
        return
    try:
        out.write(data)
        out.flush()
    except (OSError, ValueError):
        pass  # the reader went away: the job still ends as it would


def _say(line: str, code: int) -> int:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    print(line, file=sys.stderr, flush=True)
    return code

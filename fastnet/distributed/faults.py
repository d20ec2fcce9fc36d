"""When one rank fails, the whole job ends promptly, with one line saying which rank and why.

Three ways a rank can fail, and what keeps the others from waiting forever in a collective:

- It raises during training: ``abort_on_error`` (or ``install_excepthook``) prints
  ``rank R: <reason>`` and calls MPI_Abort, which ends every rank; ``mpiexec`` exits nonzero.
- It dies (SIGKILL, out of memory): the launcher notices and ends the others (hydra, Open MPI).
- It cannot start (its backend or communicator does not load): where the ranks can still talk,
  ``on_every_rank`` shares the failure so every rank raises the same ``RankFailure`` and exits
  normally; where MPI itself cannot load, ``join_job`` prints the line and ends this process by
  SIGTERM, which the launcher treats as a failed rank (a plain nonzero exit before MPI starts
  leaves the other ranks waiting in MPI_Init).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from contextlib import contextmanager

from fastnet.errors import BackendUnavailable, FastnetError

# What launchers tell each process (MPICH/hydra, Intel MPI, Open MPI, PMIx, Slurm).
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")


class RankFailure(FastnetError):
    """Raised alike on every rank: one of them could not do what all must (e.g. load a backend)."""

    def __init__(self, message: str, rank: int | None):
        super().__init__(message)
        self.rank = rank
        self.said_by_another_rank = False  # True where another rank reports it (this one stays quiet)


def _from_env(names):
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launcher_rank() -> int | None:
    """This process's rank as the launcher says, before (or without) MPI."""
    return _from_env(_RANK_VARS)


def launcher_size() -> int:
    """How many processes the launcher started (1 outside a launcher)."""
    return _from_env(_SIZE_VARS) or 1


def one_line(exc: BaseException) -> str:
    if isinstance(exc, FastnetError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def join_job(name: str, device: str = "cpu"):
    """The communicator ``name`` (see ``get_communicator``), or an end to the whole job.

    A one-process run gets ``BackendUnavailable`` as usual.  Where the ranks could agree on the
    failure (NCCL's start, shared over MPI) every rank raises the same ``RankFailure``.
    Otherwise a rank of a bigger job prints
    ``rank R: communicator ... is unavailable: <reason>`` and terminates itself by SIGTERM,
    since without MPI it cannot tell the others.
    """
    from fastnet.distributed import get_communicator

    try:
        return get_communicator(name, device)
    except BackendUnavailable as exc:
        if launcher_size() <= 1:
            raise
        if isinstance(exc.__cause__, RankFailure):  # NCCL's start failed alike on every rank
            raise RankFailure(str(exc), exc.__cause__.rank) from None
        _end_this_rank(f"rank {launcher_rank()}: {exc}")


def _end_this_rank(line: str):
    from fastnet.distributed.rank_records import record_said

    record_said(launcher_rank())
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit(1)  # not reached: SIGTERM ends the process


def on_every_rank(comm, action, same=None):
    """``action()`` on every rank; if it fails on any, every rank raises the same ``RankFailure``.

    Only FastnetError (a known reason: backend unavailable, bad input) is shared; anything else
    is a bug and propagates (``abort_on_error`` then ends the job).  ``same`` is a small dict
    every rank must hold alike (the settings that change the numbers): where a rank's differs
    from rank 0's, every rank raises the same ``RankFailure`` naming the difference, instead of
    training on garbled buffers or waiting forever in a collective the others never make.
    """
    if comm.size == 1:
        return action()
    result, error = None, None
    try:
        result = action()
    except FastnetError as exc:
        error = str(exc)
    raise_shared_failure(comm.allgather_object((error, same)))
    return result


def raise_shared_failure(shared) -> None:
    """Every rank's ``(error or None, same)``, in rank order: the failure all ranks raise, if any."""
    failed = [(rank, text) for rank, (text, _same) in enumerate(shared) if text is not None]
    if failed:
        rank, text = failed[0]
        more = f" (and {len(failed) - 1} other rank(s))" if len(failed) > 1 else ""
        raise RankFailure(f"rank {rank}{more}: {text}", rank)
    ours = shared[0][1] or {}
    for rank, (_error, theirs) in enumerate(shared[1:], 1):
        theirs = theirs or {}
        keys = [key for key in {**ours, **theirs} if ours.get(key) != theirs.get(key)]
        if keys:
            said = ", ".join(f"{key} {_show(theirs.get(key))} (rank 0: {_show(ours.get(key))})" for key in keys)
            raise RankFailure(
                f"rank {rank} was started with other settings than rank 0: {said}; "
                f"start every rank with the same options",
                rank,
            )


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)


_ALONE = "alone"  # what a process started without --distributed shares at the first meeting


def meet_as_a_lone_rank():
    """A process started by a launcher with others but without ``--distributed``: it takes part
    in the others' first meeting, so that where they were started with ``--distributed`` every
    rank stops with one line instead of waiting for this one forever.

    Where no process has ``--distributed`` each goes on alone, as before; where MPI does not
    load here nothing is checked (and the others could not have started it either).  Returns the
    ``RankFailure`` to raise (rank 0 says it), or None.
    """
    if launcher_size() <= 1:
        return None
    from fastnet.distributed import get_communicator

    try:
        comm = get_communicator("mpi")
    except BackendUnavailable:
        return None
    text = "started without --distributed, unlike the other ranks; start every rank with the same options"
    shared = comm.allgather_object((text, _ALONE))
    if all(same == _ALONE for _error, same in shared):
        return None
    try:
        raise_shared_failure(shared)
    except RankFailure as exc:
        exc.said_by_another_rank = comm.rank != 0
        return exc
    return None


def report_and_abort(comm, exc: BaseException) -> None:
    """Say what failed on this rank (a traceback for bugs), then end every rank."""
    code = getattr(exc, "exit_code", None)
    if isinstance(getattr(exc, "signum", None), int):  # StopNow: stopped by a signal, 128 + its number
        code = 128 + exc.signum  # type: ignore[attr-defined]  # the line above checks it is there
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else 1
    # The abort tears down the launcher's output forwarding, which can drop the tail of what was
    # written: the one line goes first, and everything goes in one write.
    text = f"rank {comm.rank}: {one_line(exc)}\n"
    if not isinstance(exc, (SystemExit, FastnetError, KeyboardInterrupt)):
        text += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write(text)
    sys.stderr.flush()
    from fastnet.distributed.rank_records import record_said

    record_said(comm.rank)  # the abort ends the others silently: this line is the job's outcome
    comm.abort(code if isinstance(code, int) and code > 0 else 1)


@contextmanager
def abort_on_error(comm, agreed=()):
    """Around a rank's work: an exception here ends every rank of the job at once.

    Exceptions every rank raises alike pass through, so every rank leaves normally: a
    ``RankFailure``, a clean ``SystemExit``, and the types in ``agreed`` (e.g. an interruption
    or divergence that the ranks decided together, so rank 0 can save before it leaves).
    With one rank nothing changes.
    """
    try:
        yield comm
    except (RankFailure, *agreed):
        raise
    except BaseException as exc:
        if comm.size == 1 or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            raise
        report_and_abort(comm, exc)
        raise


def install_excepthook(comm) -> None:
    """The same for code outside ``abort_on_error``: an uncaught exception aborts the job."""
    if comm.size == 1:
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        if isinstance(value, RankFailure):
            return previous(kind, value, tb)
        report_and_abort(comm, value)

    sys.excepthook = hook

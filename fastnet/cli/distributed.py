"""``fastnet train --distributed``: its options, and the run on every rank of an ``mpiexec`` job.

``launch(args, body)`` runs the command's ``body(args, job)`` in one process (no
``--distributed``: ``job`` changes nothing) or on every rank of an ``mpiexec`` job, in this order:
join the job, load the backend on every rank (one failing stops all with one line), limit each
rank's threads, build the net and optimizer, resume, then ``job.start`` wraps the net in
``DataParallel`` (see ``fastnet.training.parallel.Job``).

Only rank 0 speaks: the other ranks' stdout and stderr are silenced (a failing rank still names
itself, see ``fastnet.distributed.faults``).  Whatever every rank decides alike (an
interruption, a divergence seen in the allreduced loss, a start-up failure) is reported once,
by rank 0.
"""

from __future__ import annotations

import contextlib
import os

from fastnet.errors import DivergenceError, FastnetError, InputError
from fastnet.training.parallel import LR_SCALES, Job
from fastnet.training.stopping import TrainingInterrupted


def add_distributed_options(parser):
    parser.add_argument(
        "--ranks",
        type=rank_count,
        default=None,
        metavar="N",
        help="start N ranks under mpiexec and supervise them (implies --distributed auto): a rank "
        "that dies is named in one line, and a second Ctrl-C ends the job at once",
    )
    parser.add_argument(
        "--distributed",
        choices=("mpi", "nccl", "auto"),
        default=None,
        help="train on every rank of an mpiexec job (mpi: CPU ranks; nccl: one GPU per "
        "rank; auto: nccl with --backend cupy, else mpi); --batch-size stays the "
        "global batch, split across the ranks",
    )
    parser.add_argument(
        "--lr-scale",
        choices=LR_SCALES,
        default="none",
        help="linear: multiply the learning rate by the number of ranks (not needed: "
        "the global batch keeps the single-process meaning; default: none)",
    )


def rank_count(text):
    """``--ranks N``: 1 to THREADS_PER_CORE ranks per usable core (all on this machine: more
    would only wait for each other)."""
    from fastnet.cli.parser import number_option
    from fastnet.threads import THREADS_PER_CORE, most_threads

    most = most_threads()
    return number_option(
        int, lambda v: 1 <= v <= most, f"a rank count from 1 to {most} ({THREADS_PER_CORE} per usable core)"
    )(text)


def communicator_name(args) -> str:
    """What ``--distributed auto`` means before a backend is loaded: NCCL only for ``--backend cupy``."""
    if args.distributed == "auto":
        return "nccl" if args.backend == "cupy" else "mpi"
    return args.distributed


def launch(args, body):
    """``body(args, job)`` in this process, as one rank of a job when ``--distributed`` is given;
    with ``--ranks N``, this process starts and supervises the job (``fastnet.cli.rank_launcher``)."""
    from fastnet.distributed import rank_records
    from fastnet.distributed.faults import launcher_rank

    if getattr(args, "ranks", None) is not None:
        if not rank_records.supervised():
            return _supervise(args)
        args.distributed = args.distributed or "auto"
        rank_records.record_start(launcher_rank())
        try:
            return _as_rank(args, body)
        finally:
            rank_records.record_said(launcher_rank())  # ended its own way (a death skips this)
    return _as_rank(args, body)


def _as_rank(args, body):
    from fastnet.distributed.faults import (
        RankFailure,
        abort_on_error,
        install_excepthook,
        join_job,
        launcher_rank,
        meet_as_a_lone_rank,
    )

    if getattr(args, "distributed", None) is None:
        if getattr(args, "lr_scale", "none") != "none":
            raise InputError("--lr-scale scales by the number of ranks: it needs --distributed (under mpiexec)")
        failure = meet_as_a_lone_rank()  # under mpiexec: were the other ranks started with it?
        if failure is not None:
            if failure.said_by_another_rank:
                return failure.exit_code
            raise failure
        return body(args, Job())

    try:
        comm = join_job(communicator_name(args))
    except RankFailure as exc:  # every rank failed alike; rank 0 says it
        if launcher_rank():
            return exc.exit_code
        raise
    install_excepthook(comm)
    supervised = getattr(args, "ranks", None) is not None
    job = Job(comm, communicator_name(args), getattr(args, "lr_scale", "none"), supervised=supervised)
    agreed = (TrainingInterrupted, DivergenceError, RankFailure)
    try:
        with abort_on_error(comm, agreed):
            try:
                with _silenced(not comm.is_root):
                    return body(args, job)
            except FastnetError as exc:
                if isinstance(exc, agreed) or job.agreed_once:
                    raise
                # A mistake found before the ranks first met (an option, the output folder, the
                # checkpoint): every rank meets the others there and stops with rank 0's line.
                job.on_every_rank(lambda error=exc: _raise(error))
                raise
    except agreed as exc:
        if comm.is_root:
            raise
        return exc.exit_code  # rank 0 reports it


def _supervise(args) -> int:
    """This process is the launcher: ``mpiexec -n N`` runs the same command on every rank."""
    import sys

    from fastnet.cli.rank_launcher import RankLauncher
    from fastnet.distributed.faults import launcher_rank, launcher_size

    if launcher_size() > 1 or launcher_rank() is not None:
        if launcher_rank():
            return 2  # rank 0 says it
        raise InputError(
            "--ranks N starts mpiexec itself: run 'fastnet train --ranks N ...' without mpiexec, "
            "or 'mpiexec -n N fastnet train --distributed mpi ...' without --ranks"
        )
    argv = getattr(args, "argv", None)
    argv = list(sys.argv[1:] if argv is None else argv)
    out = args.out or (str(os.path.dirname(args.resume) or ".") if args.resume else None)
    return RankLauncher(args.ranks, argv, communicator_name(_with_auto(args)), out).run()


def _with_auto(args):
    import argparse

    return argparse.Namespace(**{**vars(args), "distributed": args.distributed or "auto"})


def _raise(exc):
    raise exc


@contextlib.contextmanager
def _silenced(quiet: bool):
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield

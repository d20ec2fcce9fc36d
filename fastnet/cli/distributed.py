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


def communicator_name(args) -> str:
    """What ``--distributed auto`` means before a backend is loaded: NCCL only for ``--backend cupy``."""
    if args.distributed == "auto":
        return "nccl" if args.backend == "cupy" else "mpi"
    return args.distributed


def launch(args, body):
    """``body(args, job)`` in this process, as one rank of a job when ``--distributed`` is given."""
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
    job = Job(comm, communicator_name(args), getattr(args, "lr_scale", "none"))
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


def _raise(exc):
    raise exc


@contextlib.contextmanager
def _silenced(quiet: bool):
    if not quiet:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield

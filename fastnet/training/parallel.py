"""A run's place among processes (``Job``): one process, or one rank of a data-parallel job.

Under a job the trainer gets a ``DataParallelStep`` (``job.step()``) and the rank-0 policy
(``job.settings(...)``): only rank 0 writes and speaks (the other ranks train with no output
folder, no progress bar and no log).  ``job.start`` wraps the net in ``DataParallel`` (parameters,
layer state and optimizer slots broadcast from rank 0).  The command's options and the launch are
``fastnet.cli.distributed``.
"""

from __future__ import annotations

import contextlib
import os

from fastnet.distributed.base import SingleProcess
from fastnet.training.steps import DataParallelStep

LR_SCALES = ("none", "linear")


class Job:
    """This process's place in the run: one process, or rank ``comm.rank`` of ``comm.size``."""

    def __init__(self, comm=None, name=None, lr_scale="none", supervised=False):
        self.comm = comm if comm is not None else SingleProcess()
        self.name = name  # None: not started with --distributed
        self.lr_scale = lr_scale
        self.supervised = supervised  # started by fastnet train --ranks N (not mpiexec by hand)
        self.agreed_once = False  # the ranks have met once (set up alike so far)

    @property
    def distributed(self) -> bool:
        return self.name is not None

    def on_every_rank(self, action, same=None):
        """``action()`` here; under a job, a failure on any rank fails every rank alike, and so
        does a rank whose ``same`` (a dict of settings) differs from rank 0's."""
        if not self.distributed:
            return action()
        from fastnet.distributed.faults import on_every_rank

        try:
            return on_every_rank(self.comm, action, same)
        finally:
            self.agreed_once = True

    def root_only(self, value):
        """``value`` on rank 0 (the output folder, its lock), None on the other ranks."""
        return value if self.comm.is_root else None

    @contextlib.contextmanager
    def holding_output_folder(self, folder, say=print, same=None):
        """Rank 0 holds ``folder``'s lock for the block; a busy folder fails every rank alike,
        so the job ends with rank 0's one line rather than an abort (``same``: as ``on_every_rank``)."""
        from fastnet.training.lock import output_folder_lock

        if self.distributed and self.comm.is_root:
            from fastnet.distributed.rank_records import record_output

            record_output(folder)  # where a supervising launcher finds the last checkpoint
        with contextlib.ExitStack() as held:
            self.on_every_rank(lambda: held.enter_context(output_folder_lock(self.root_only(folder), say=say)), same)
            yield

    def limit_threads(self, requested=None):
        """Each rank's share of the node's cores, applied to this process; None in one process
        (the usual policy decides)."""
        if not self.distributed:
            return None
        from fastnet.distributed.threads import rank_choice
        from fastnet.threads import set_process_choice

        return set_process_choice(rank_choice(self.comm, requested))

    def lr(self, lr: float) -> float:
        return lr * self.comm.size if self.lr_scale == "linear" else lr

    def record(self) -> dict:
        """What the checkpoint config says about the processes (the rank count)."""
        if not self.distributed:
            return {}
        return {"ranks": self.comm.size, "distributed": self.name, "lr_scale": self.lr_scale}

    def step(self):
        """The trainer's step: None (the default, this process alone), or this rank's share."""
        return DataParallelStep(self.comm, self.name, self.supervised) if self.distributed else None

    def settings(self, settings):
        """The rank-0 policy: only rank 0 writes and speaks; the other ranks train without an
        output folder, TensorBoard events, a progress bar or a log."""
        if self.distributed and not self.comm.is_root:
            return settings.with_options(out_dir=None, tensorboard=None, progress=False, log=None)
        return settings

    def start(self, trainer, meta=None, say=print):
        """After building (and resuming): every rank continues from rank 0's state."""
        if self.distributed:
            trainer.updater.join(trainer, meta, say)
        elif meta is not None and meta["config"].get("ranks", 1) != 1 and trainer.net.random_streams():
            say(
                f"note: the checkpoint was written by {meta['config']['ranks']} ranks, each drawing its own "
                f"dropout masks; one process continues with rank 0's stream, so the run is not bitwise "
                f"the uninterrupted one"
            )


def print_rank_line(job, lr, say=print):
    if job.distributed:
        say(f"processes: {job.comm.describe()}; each computes its rows of every global batch")
        # A dead rank takes the others down at once (the launcher kills them): its banner names
        # only the PID, which this line turns into a rank.
        pids = job.comm.allgather_object(os.getpid())
        say("process ids by rank: " + ", ".join(f"{rank}: {pid}" for rank, pid in enumerate(pids)))
    if job.lr_scale == "linear":
        say(f"learning rate scaled linearly with the ranks: {lr:g} x {job.comm.size} = {job.lr(lr):g}")

"""The step of the loop: one update from the rows of a batch (Chainer's ``update_core``).

``LocalStep`` computes the gradient in this process; ``DataParallelStep`` computes this rank's
share and allreduces it (``fastnet.distributed.DataParallel``).  A step also evaluates a whole
set, agrees with the other processes on when to stop, applies the learning-rate schedule and
keeps the schedule's state in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastnet.annotations import Array, PathLike
from fastnet.errors import CheckpointError, InputError
from fastnet.training.evaluation import evaluate
from fastnet.training.lr import resumed_schedule, run_schedule
from fastnet.training.stopping import supervised_launch

if TYPE_CHECKING:
    from fastnet.distributed import Communicator, DataParallel
    from fastnet.schedules import Schedule
    from fastnet.training.trainer import Trainer


class LocalStep:
    """The step of one process: the gradient of the whole batch, then the optimizer's update.

    It also applies the learning-rate schedule the trainer's settings name, before each update.
    """

    # What a resume command adds (mpiexec -n N or fastnet train --ranks N, --distributed).
    launcher: tuple[str, ...] = ()
    resume_options: tuple[str, ...] = ()

    def __init__(self):
        self.schedule: Schedule | None = None  # None: the classic constant rate

    def attach(self, trainer: Trainer) -> None:
        """Called once by the Trainer this step serves."""
        self.schedule = run_schedule(trainer.settings, trainer.optimizer.lr, trainer.steps_per_epoch)

    def update(self, trainer: Trainer, rows: Array) -> None:
        """One update from the training rows ``rows`` (indices into ``trainer.x_train``)."""
        grads = self.gradient(trainer, rows)
        if self.schedule is not None:
            self.schedule.apply(trainer.optimizer)
        trainer.optimizer.update(trainer.net.params, grads)

    def gradient(self, trainer: Trainer, rows: Array) -> dict[str, Array]:
        """The loss gradient of the rows' batch, keyed like the net's parameters."""
        return trainer.net.gradient(trainer.x_train[rows], trainer.t_train[rows])

    def evaluate(self, trainer: Trainer, x: Array, t: Array) -> tuple[float, float]:
        """The mean loss and accuracy of the whole set ``(x, t)``."""
        return evaluate(trainer.net, x, t, trainer.eval_batch_size)

    def agree_stop(self, trainer: Trainer, signum: int | None) -> int | None:
        """The signal every process stops on (None: go on); one process decides alone."""
        return signum

    def state(self) -> dict[str, Any]:
        """The schedule's settings, for the checkpoint's ``progress``."""
        return {"schedule": self.schedule.to_dict()} if self.schedule is not None else {}

    def load_state(self, trainer: Trainer, progress: dict[str, Any], source: PathLike | None = None) -> None:
        """Continue the schedule a checkpoint's ``progress`` (read from ``source``) recorded."""
        self.schedule = resumed_schedule(
            progress.get("schedule"),
            self.schedule,
            trainer.optimizer.lr,
            trainer.epochs,
            trainer.steps_per_epoch,
            source,
            say=trainer.log,
        )


class DataParallelStep(LocalStep):
    """One rank's step: its rows of each global batch, reduced evaluation, agreed stops.

    ``join(trainer)`` once the net and optimizer are built and any checkpoint is loaded: the
    net is wrapped in ``DataParallel`` (rank 0's state broadcast to every rank).

    Parameters
    ----------
    comm : Communicator
        This rank's communicator.
    name : str
        The communicator's name, for the resume command (``--distributed name``).
    supervised : bool
        Started by ``fastnet train --ranks N``: the resume command is that form.
    """

    def __init__(self, comm: Communicator, name: str = "mpi", supervised: bool = False):
        super().__init__()
        self.comm = comm
        if supervised:
            self.launcher, self.resume_options = supervised_launch(comm.size, name)
        else:
            self.launcher = ("mpiexec", "-n", str(comm.size))
            self.resume_options = ("--distributed", name)
        self.parallel: DataParallel | None = None
        self._rank_states: list[Any] | None = None
        self._streams = False

    def join(self, trainer: Trainer, meta: dict[str, Any] | None = None, say: Callable[[str], object] = print) -> None:
        """Wrap the trainer's net in ``DataParallel`` (every rank gets rank 0's state); with a
        checkpoint's ``meta``, restore each rank's dropout stream, or ``say`` why not."""
        from fastnet.distributed import DataParallel

        self.parallel = DataParallel(trainer.net, self.comm, seed=trainer.seed, optimizer=trainer.optimizer)
        self._rank_states = self.parallel.rng_states()
        self._streams = self.parallel.has_streams()  # the net's layers are fixed from here on
        if meta is not None and self._streams:
            saved = meta["progress"].get("rank_layer_states")
            if not self._restore_streams(saved):
                say(
                    f"note: the checkpoint was written by {len(saved) if isinstance(saved, list) else 1} "
                    f"process(es), this run has {self.comm.size}: dropout masks come from fresh (seed, rank) "
                    f"streams, so the run is not bitwise the uninterrupted one"
                )

    @property
    def _joined(self) -> DataParallel:
        if self.parallel is None:
            raise InputError("DataParallelStep.join(trainer) must run before the step is used")
        return self.parallel

    def _restore_streams(self, saved) -> bool:
        """Each rank's dropout streams from the checkpoint; False where it was written by another
        number of processes.  A damaged state stops every rank alike with one line."""
        from fastnet.distributed.faults import on_every_rank

        if saved is None or (isinstance(saved, list) and len(saved) != self.comm.size):
            return False

        def restore():
            try:
                if not isinstance(saved, list) or not isinstance(saved[self.comm.rank], dict):
                    raise TypeError("not a list with a dict per rank")
                return self._joined.restore_rng_states(saved)
            except (InputError, TypeError, KeyError, ValueError, AttributeError, OverflowError) as exc:
                raise CheckpointError(
                    f"the checkpoint's dropout state of this rank is damaged ({exc}); "
                    f"resume from an undamaged checkpoint"
                ) from None

        return on_every_rank(self.comm, restore)

    def gradient(self, trainer: Trainer, rows: Array) -> dict[str, Array]:
        """The gradient of the whole batch ``rows``: this rank's slice, allreduced."""
        mine = rows[self._joined.rows(len(rows))]
        return self._joined.slice_gradient(trainer.x_train[mine], trainer.t_train[mine], len(rows))

    def evaluate(self, trainer: Trainer, x: Array, t: Array) -> tuple[float, float]:
        """The mean loss and accuracy of ``(x, t)``, each rank evaluating its share."""
        return self._joined.evaluate(x, t, trainer.eval_batch_size)

    def agree_stop(self, trainer: Trainer, signum: int | None) -> int | None:
        """Every rank stops at the same step: the first signal any rank saw, shared with all.

        Rank 0 saves every rank's dropout stream state, so the states are gathered where a
        checkpoint follows: in the same exchange at an epoch's last step, and in a second one
        when a signal stops the run mid-epoch.  Other steps exchange the signal alone.
        """
        epoch_end = self._streams and trainer.step == trainer.steps_per_epoch
        mine = self._joined.rng_states_here() if epoch_end else None
        shared = self.comm.allgather_object((signum, mine))
        if epoch_end:
            self._rank_states = [states for _signal, states in shared]
        signals = [s for s, _states in shared if s is not None]
        if not signals:
            return None
        if self._streams and not epoch_end:
            self._rank_states = self._joined.rng_states()
        return signals[0]

    def state(self) -> dict[str, Any]:
        """The schedule's state, the number of ranks and every rank's dropout stream state."""
        return {**super().state(), "ranks": self.comm.size, "rank_layer_states": self._rank_states}

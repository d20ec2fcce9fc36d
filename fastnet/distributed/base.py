"""What every communicator offers, and the single-process one that makes code paths uniform.

A communicator joins the processes (ranks) of one job.  The data-parallel step needs little:
an in-place weighted sum of one flat buffer across ranks (gradients and the loss in a single
collective), a broadcast from rank 0 (parameters after building or resuming), a scalar sum
(counts, the divergence check), an exchange of small Python objects (start-up errors), a
barrier, and an abort that ends every rank at once (so no rank waits forever in a collective).
"""

from __future__ import annotations

from typing import Any

from fastnet.annotations import Array


class Communicator:
    """``rank`` of ``size`` in the job; ``local_rank`` of ``local_size`` on this node."""

    name = "none"
    rank = 0
    size = 1
    local_rank = 0
    local_size = 1

    @property
    def is_root(self) -> bool:
        """Rank 0 alone writes checkpoints, history, curves and logs."""
        return self.rank == 0

    def allreduce_(self, buffer: Array, weight: float = 1.0) -> Array:
        """In place: ``buffer = sum over ranks of weight_r * buffer_r``; returns ``buffer``.

        ``buffer`` is one contiguous 1-D array (numpy, or cupy for the NCCL communicator).
        """
        if weight != 1.0:
            buffer *= weight
        return buffer

    def broadcast_(self, array: Array, root: int = 0) -> Array:
        """In place: every rank's ``array`` becomes ``root``'s; returns ``array``."""
        return array

    def allreduce_scalar(self, value: float) -> float:
        """The sum of a Python number over ranks, the same float on every rank."""
        return float(value)

    def allgather_object(self, obj: Any) -> list[Any]:
        """Every rank's small picklable ``obj``, in rank order, on every rank."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every rank has arrived."""

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (after an error on this one)."""
        raise SystemExit(code)

    def describe(self) -> str:
        """One line: the communicator's name and this rank's place in the job."""
        text = f"{self.name}: rank {self.rank} of {self.size}"
        if self.size > 1:
            text += f" (local {self.local_rank} of {self.local_size} on this node)"
        return text

    def __repr__(self) -> str:
        return f"<fastnet communicator {self.name!r} rank {self.rank}/{self.size}>"


class SingleProcess(Communicator):
    """The ``none`` communicator: one rank, every collective is the identity."""


def load() -> Communicator:
    """The ``none`` communicator (what the registry calls for that name)."""
    return SingleProcess()

"""Exact data parallelism: N ranks reproduce the single-process run.

The batch size stays the *global* batch.  Every rank is handed the same global batch (the same
per-epoch permutation), computes the gradient of the mean loss over its contiguous slice, and
the slices are combined with weights ``n_slice / n_batch``: the weighted sum of slice means is
the mean over the whole batch.  Gradients and the loss travel in one flat buffer, one collective
per step.  Uneven slices (201 rows on 2 ranks: 101 and 100) are exact; a rank whose slice is
empty contributes zeros.  Weight decay is added by each rank's ``net.gradient``, and since the
weights sum to one it counts exactly once.
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from fastnet.annotations import Array
from fastnet.distributed.base import Communicator, SingleProcess
from fastnet.distributed.sync_batchnorm import GlobalBatchStatistics
from fastnet.errors import InputError


def rank_rows(n: int, rank: int, size: int) -> slice:
    """The contiguous rows of an ``n``-row batch that ``rank`` of ``size`` computes.

    Like ``numpy.array_split``: the first ``n % size`` ranks get one row more.
    """
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def stream_seed(*keys: int) -> int:
    """A seed for an independent random stream named by integers, e.g. (seed, rank)."""
    return int(numpy.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


class DataParallel:
    """Wraps ``net`` for training on ``comm``: ``grads = dp.gradient(x, t)`` then the usual update.

    On creation: BatchNormalization layers are switched to global-batch statistics, dropout
    layers get per-rank streams from (their seed or ``seed``, rank), and the parameters, layer
    state and ``optimizer``'s slots are broadcast from rank 0 (call ``broadcast_state`` again
    after loading a checkpoint).  With one rank the net is left exactly as it was.

    Parameters
    ----------
    net : Sequential
        The net every rank built alike (same layers, same parameter shapes).
    comm : Communicator or None
        This rank's communicator; None for one process (``SingleProcess``).
    seed : int or None
        The run's seed, for the dropout streams of layers that have no seed of their own.
    optimizer : Optimizer or None
        Its slots (momentum, Adam's moments) are broadcast from rank 0 too.

    Raises
    ------
    InputError
        When the ranks hold different parameters or optimizer state.

    Examples
    --------
    >>> import numpy
    >>> from fastnet.nets import TwoLayerNet
    >>> net = TwoLayerNet(4, 5, 3, backend="numpy", seed=0)
    >>> dp = DataParallel(net)                      # one process: SingleProcess
    >>> grads = dp.gradient(numpy.ones((6, 4), numpy.float32), numpy.zeros(6, int))
    >>> sorted(grads), dp.rank, dp.size
    (['W1', 'W2', 'b1', 'b2'], 0, 1)
    """

    def __init__(self, net: Any, comm: Communicator | None = None, *, seed: int | None = None, optimizer: Any = None):
        self.net = net
        self.comm = comm if comm is not None else SingleProcess()
        self.batchnorms = (
            net.share_batch_statistics(lambda: GlobalBatchStatistics(self.comm)) if self.comm.size > 1 else []
        )
        if self.comm.size > 1:
            self._seed_dropout(seed)
        self._layout = [(key, tuple(value.shape), int(value.size)) for key, value in net.params.items()]
        total = sum(size for _key, _shape, size in self._layout)
        # One buffer, reused every step: the gradients, then the loss in the last element.
        self._buffer = net.backend.xp.zeros(total + 1, dtype=net.dtype)
        self._grads = {}
        offset = 0
        for key, shape, size in self._layout:
            self._grads[key] = self._buffer[offset : offset + size].reshape(shape)
            offset += size
        self.last_loss = None
        self.comm_seconds = 0.0  # spent in the gradient allreduce (host clock)
        self.broadcast_state(optimizer)

    @property
    def rank(self) -> int:
        """This process's rank in the job (0 for one process)."""
        return self.comm.rank

    @property
    def size(self) -> int:
        """The number of ranks in the job."""
        return self.comm.size

    def rows(self, n: int) -> slice:
        """This rank's slice of an ``n``-row batch."""
        return rank_rows(n, self.comm.rank, self.comm.size)

    # --- training --------------------------------------------------------------------------------
    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """The single-process gradient of the mean loss over the global batch ``(x, t)``.

        Returns a dict keyed like ``net.params`` (views into one buffer, overwritten by the next
        call, as a net's own gradients are).  ``dp.last_loss`` and ``net.last_loss`` become the
        global batch's loss, the same on every rank: log it, and check it for divergence.
        """
        rows = self.rows(x.shape[0])
        return self.slice_gradient(x[rows], t[rows], x.shape[0])

    def slice_gradient(self, x_slice: Array, t_slice: Array, batch_size: int) -> dict[str, Array]:
        """As ``gradient``, given only this rank's rows (``rows(batch_size)`` of the batch).

        Saves gathering the whole batch on every rank: ``idx = order[start:stop];
        mine = idx[dp.rows(len(idx))]; dp.slice_gradient(x[mine], t[mine], len(idx))``.
        """
        count = x_slice.shape[0]
        buffer = self._buffer
        if count:
            grads = self.net.gradient(x_slice, t_slice)
            weight = count / batch_size
            xp = self.net.backend.xp
            for key, _shape, _size in self._layout:
                xp.multiply(grads[key].reshape(-1), weight, out=self._grads[key].reshape(-1))
            buffer[-1] = self.net.last_loss * weight
        else:
            buffer[...] = 0
            for layer in self.batchnorms:  # the collectives the other ranks' forward makes
                layer.statistics.join_forward(layer)
            for layer in reversed(self.batchnorms):
                layer.statistics.join_backward(layer)
        started = time.perf_counter()
        self.comm.allreduce_(buffer)
        self.comm_seconds += time.perf_counter() - started
        self.last_loss = self.net.last_loss = buffer[-1].copy()
        return self._grads

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, x: Array, t: Array, batch_size: int = 1000) -> tuple[float, float]:
        """Mean loss and accuracy over a whole set, each rank evaluating its slice; same on all ranks."""
        from fastnet.evaluation import evaluate

        rows = self.rows(x.shape[0])
        count = rows.stop - rows.start
        loss = accuracy = 0.0
        if count:
            loss, accuracy = evaluate(self.net, x[rows], t[rows], batch_size)
        # On the backend's device: the NCCL communicator reduces device arrays only.
        sums = self.net.backend.asarray(numpy.array([loss * count, round(accuracy * count), count]))
        sums = self.net.backend.to_numpy(self.comm.allreduce_(sums))
        return float(sums[0] / sums[2]), float(sums[1] / sums[2])

    def allreduce_mean(self, value: float) -> float:
        """The mean of a number over ranks (e.g. a per-rank timing), the same on every rank."""
        return self.comm.allreduce_scalar(value) / self.comm.size

    # --- state ------------------------------------------------------------------------------------
    def broadcast_state(self, optimizer: Any = None) -> None:
        """Make every rank's parameters, layer state and optimizer slots equal rank 0's."""
        if self.comm.size == 1:
            return
        arrays = list(self.net.state_arrays().items())
        if optimizer is not None:
            arrays += [
                (f"{slot}.{key}", value)
                for slot, table in sorted(optimizer.state.items())
                for key, value in sorted(table.items())
            ]
        names = [(name, tuple(value.shape)) for name, value in arrays]
        for rank, theirs in enumerate(self.comm.allgather_object(names)):
            if theirs != names:  # a mismatch would garble the broadcasts below
                raise InputError(
                    f"rank {rank} holds different parameters or optimizer state than "
                    f"rank {self.comm.rank}; every rank must build the same net and "
                    f"load the same checkpoint"
                )
        for _name, value in arrays:
            if value.flags.c_contiguous:
                self.comm.broadcast_(value.reshape(-1))
            else:
                staged = self.net.backend.xp.ascontiguousarray(value)
                self.comm.broadcast_(staged.reshape(-1))
                value[...] = staged
        if optimizer is not None:
            optimizer.iter = int(self.comm.allgather_object(optimizer.iter)[0])

    def has_streams(self) -> bool:
        """Whether the net draws random masks (dropout), whose per-rank streams a checkpoint keeps."""
        return bool(self.net.random_streams())

    def _seed_dropout(self, seed):
        def rank_seed(index, layer_seed):
            if layer_seed is not None:
                return stream_seed(layer_seed, self.comm.rank)
            return None if seed is None else stream_seed(seed, index, self.comm.rank)  # None: fresh entropy already

        self.net.reseed_random_streams(rank_seed)

    def rng_states_here(self) -> dict[str, Any]:
        """This rank's dropout generator states, by layer name."""
        return self.net.random_stream_states()

    def rng_states(self) -> list[Any]:
        """Every rank's dropout generator states, in rank order (for rank 0's checkpoint)."""
        return self.comm.allgather_object(self.rng_states_here())

    def restore_rng_states(self, states_by_rank: list[Any]) -> bool:
        """Resume each rank's dropout stream from ``rng_states()`` of a run with as many ranks.

        With another number of ranks the streams cannot continue (each rank's masks came from
        its own stream): they stay as (seed, rank) made them, and False says so.
        """
        if len(states_by_rank) != self.comm.size:
            return False
        mine = states_by_rank[self.comm.rank]
        self.net.load_layer_state({name: state for name, state in mine.items() if name in self.net.random_streams()})
        return True

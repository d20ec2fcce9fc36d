"""Several processes training one net: communicators and the exact data-parallel step.

A communicator is chosen like a backend, from a lazy registry: ``none`` (one process), ``mpi``
(CPU ranks through mpi4py) or ``nccl`` (GPU ranks through CuPy's NCCL).  Nothing is imported
until a name is asked for; one that cannot load records *why* (mpi4py missing, no MPI library,
no NCCL), for ``fastnet info`` and for the one-line error a run gives.

```python
comm = get_communicator("mpi")            # under mpiexec -n 4
dp = DataParallel(net, comm, seed=0)       # parameters now equal rank 0's on every rank
grads = dp.gradient(x_batch, t_batch)      # the global batch; this rank computes its slice
optimizer.update(net.params, grads)        # the same update on every rank
```
"""

from __future__ import annotations

from collections.abc import Iterable

from fastnet.distributed.base import Communicator, SingleProcess
from fastnet.errors import InputError
from fastnet.registry import LazyRegistry

COMMUNICATOR_NAMES = ("none", "mpi", "nccl")
CHOICES = COMMUNICATOR_NAMES + ("auto",)
# The failure's cause is kept too, for join_job (a failure all ranks share).
_registry = LazyRegistry(
    "communicator",
    {"none": "fastnet.distributed.base", "mpi": "fastnet.distributed.mpi", "nccl": "fastnet.distributed.nccl"},
)


def _load(name: str) -> Communicator:
    return _registry.load(name)


def _check_name(name: object) -> None:
    if name not in CHOICES:
        raise InputError(f"unknown communicator {name!r}; choose one of: {', '.join(CHOICES)}")


def unavailable_reason(name: str) -> str | None:
    """None when the communicator loads, else the recorded reason it cannot.

    Loading ``mpi`` initialises MPI (a one-rank job outside ``mpiexec``); loading ``nccl``
    also selects this rank's GPU and joins the NCCL group, so ask about it only in a real run.
    """
    _check_name(name)
    return _registry.reason(name)


def availability(names: Iterable[str] = ("mpi", "nccl")) -> dict[str, str | None]:
    """Communicator name -> None (usable) or the reason it is not (``none`` always works)."""
    return {name: unavailable_reason(name) for name in names}


def auto_name(device: str) -> str:
    """What ``--distributed auto`` means: NCCL for GPU backends, MPI for CPU ones."""
    return "mpi" if device == "cpu" else "nccl"


def get_communicator(name: str = "none", device: str = "cpu") -> Communicator:
    """A communicator by name; ``auto`` picks by the backend's ``device``.

    A name that cannot load raises :class:`BackendUnavailable` with the reason; there is no
    silent fallback to one process, which would train N copies of the same net.

    Parameters
    ----------
    name : str
        ``"none"``, ``"mpi"``, ``"nccl"`` or ``"auto"``.
    device : str
        The backend's device (``"cpu"`` or ``"gpu"``), for ``auto``.

    Raises
    ------
    InputError
        For an unknown name.
    BackendUnavailable
        When the communicator cannot load, with the reason.

    Examples
    --------
    >>> comm = get_communicator("none")
    >>> comm.rank, comm.size, comm.describe()
    (0, 1, 'none: rank 0 of 1')
    """
    _check_name(name)
    return _load(auto_name(device) if name == "auto" else name)


from fastnet.distributed.data_parallel import DataParallel, rank_rows  # noqa: E402  (after the registry)

__all__ = [
    "COMMUNICATOR_NAMES",
    "CHOICES",
    "Communicator",
    "DataParallel",
    "SingleProcess",
    "auto_name",
    "availability",
    "get_communicator",
    "rank_rows",
    "unavailable_reason",
]

"""The MPI communicator (CPU ranks), through mpi4py: ``mpiexec -n 4 fastnet train ...``.

Buffers are numpy arrays reduced in place.  A device (CuPy) buffer is staged through the host,
which is correct but slow: on GPUs the NCCL communicator is the one to use.
"""

from __future__ import annotations

import sys

import numpy

from fastnet.distributed.base import Communicator
from fastnet.errors import BackendUnavailable

INSTALL_HINT = "pip install 'fastnet[mpi]' (mpi4py and the mpich wheel)"


def import_mpi():
    """``mpi4py.MPI``, initialised; every way that fails becomes one line saying why."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if (exc.name or "").startswith("mpi4py"):
            raise BackendUnavailable(f"mpi4py is not installed; {INSTALL_HINT}") from None
        raise BackendUnavailable(f"mpi4py cannot be imported ({exc}); {INSTALL_HINT}") from None
    except RuntimeError as exc:
        # mpi4py finds the MPI library at run time: "cannot load MPI library" plus one line per try.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = f" ({lines[1]})" if len(lines) > 1 else ""
        raise BackendUnavailable(
            f"{lines[0] if lines else 'MPI failed to start'}{detail}; "
            f"{INSTALL_HINT}, or point MPI4PY_LIBMPI at a libmpi"
        ) from None
    return MPI


class MPICommunicator(Communicator):
    name = "mpi"

    def __init__(self, MPI, comm=None):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        # The ranks sharing this node's memory: they share its cores too (see threads.py).
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = node.Get_rank()
        self.local_size = node.Get_size()
        node.Free()

    def allreduce_(self, buffer, weight=1.0):
        if weight != 1.0:
            buffer *= weight
        if self.size == 1:
            return buffer
        if isinstance(buffer, numpy.ndarray):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        else:  # a CuPy array: through the host (the mpich wheel is not CUDA-aware)
            host = buffer.get()
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            buffer.set(host)
        return buffer

    def broadcast_(self, array, root=0):
        if self.size == 1:
            return array
        if isinstance(array, numpy.ndarray):
            self.comm.Bcast(array, root=root)
        else:
            host = array.get()
            self.comm.Bcast(host, root=root)
            array.set(host)
        return array

    def allreduce_scalar(self, value):
        return float(self.comm.allreduce(float(value), op=self.MPI.SUM))

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(int(code))

    def describe(self):
        version = self.MPI.Get_library_version().splitlines()[0].strip()
        return f"{super().describe()}, {version}"


def load() -> Communicator:
    return MPICommunicator(import_mpi())

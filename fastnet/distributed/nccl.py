"""The NCCL communicator (GPU ranks): ``mpiexec -n 8 fastnet train --backend cupy --distributed nccl``.

NCCL moves the gradients between GPUs; MPI only starts the job (``mpiexec``), exchanges NCCL's
unique id (CuPy's ``use_mpi=True`` rendezvous) and carries small Python objects.  Each rank
drives the GPU numbered by its rank on the node: NCCL cannot put two ranks on one GPU, so a node
needs as many visible GPUs as ranks.  The device is selected here, before the cupy backend
starts, so every array the rank creates lives on its own GPU.
"""

from __future__ import annotations

from fastnet.distributed.faults import on_every_rank
from fastnet.distributed.mpi import MPICommunicator, import_mpi
from fastnet.errors import BackendUnavailable

INSTALL_HINT = "pip install 'fastnet[cuda12]' or 'fastnet[cuda13]' (CuPy and the nvidia-nccl wheel)"


def _first_line(exc) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def import_cupy_nccl():
    try:
        import cupy
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "cupy":
            raise BackendUnavailable(f"CuPy is not installed; {INSTALL_HINT}") from None
        raise BackendUnavailable(f"CuPy cannot be imported ({_first_line(exc)}); {INSTALL_HINT}") from None
    try:
        import cupyx.distributed
        from cupy.cuda import nccl
    except Exception as exc:
        raise BackendUnavailable(
            f"CuPy's NCCL support cannot be imported ({_first_line(exc)}); {INSTALL_HINT}"
        ) from None
    if not getattr(nccl, "available", True):
        raise BackendUnavailable(f"CuPy finds no NCCL library; {INSTALL_HINT}")
    return cupy, cupyx.distributed


class NCCLCommunicator(MPICommunicator):
    """Collectives on GPU buffers through NCCL; the rest (objects, abort) through MPI.

    ``comm`` and ``import_cupy`` are for tests (a fake MPI communicator and a fake CuPy).
    """

    name = "nccl"

    def __init__(self, MPI, comm=None, import_cupy=import_cupy_nccl):
        super().__init__(MPI, comm)
        # Each step agreed by every rank: one rank failing alone would leave the others
        # waiting in NCCL's rendezvous.
        self.cupy, distributed = on_every_rank(self, import_cupy)
        self.device = on_every_rank(self, self._select_device)
        try:
            self.nccl = distributed.init_process_group(self.size, self.rank, backend="nccl", use_mpi=True)
        except Exception as exc:
            raise BackendUnavailable(f"NCCL failed to start ({type(exc).__name__}: {_first_line(exc)})") from None

    def _select_device(self):
        """The GPU numbered by the rank on its node; GPU 0 when the launcher shows each rank one."""
        try:
            devices = self.cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            raise BackendUnavailable(f"no usable CUDA device ({_first_line(exc)}); check nvidia-smi") from None
        if devices == 0:
            raise BackendUnavailable("no CUDA device found (device count 0); check nvidia-smi and CUDA_VISIBLE_DEVICES")
        number = 0 if devices == 1 else self.local_rank
        if number >= devices:
            raise BackendUnavailable(
                f"{self.local_size} ranks on this node but {devices} visible GPU(s); "
                f"NCCL needs one GPU per rank: start at most {devices} ranks per node"
            )
        device = self.cupy.cuda.Device(number)
        device.use()
        return device

    # Even a 1-rank job calls NCCL: the smoke run on a one-GPU machine then tests the real path.
    def allreduce_(self, buffer, weight=1.0):
        self._check_device_array(buffer)
        if weight != 1.0:
            buffer *= weight
        self.nccl.all_reduce(buffer, buffer, op="sum")
        return buffer

    def broadcast_(self, array, root=0):
        self._check_device_array(array)
        self.nccl.broadcast(array, root=root)
        return array

    def barrier(self):
        # Queued GPU work first: a barrier must mean "everything before it is done".
        self.cupy.cuda.Device().synchronize()
        super().barrier()

    def _check_device_array(self, array):
        if not isinstance(array, self.cupy.ndarray):
            raise TypeError(
                f"the NCCL communicator reduces CuPy arrays, not {type(array).__name__}; "
                f"use the cupy backend with --distributed nccl"
            )

    def describe(self):
        nccl = self.cupy.cuda.nccl
        version = nccl.get_version() if hasattr(nccl, "get_version") else "unknown"
        return f"{super().describe()}; NCCL {version} on GPU {self.device.id}"


def load():
    return NCCLCommunicator(import_mpi())

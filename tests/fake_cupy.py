"""A fake CuPy for the parts of fastnet that only talk to CuPy: the kernel launcher and NCCL.

It records what fastnet asks for (modules compiled, kernels launched with which grid and
arguments, devices selected, collectives called) so the logic around the GPU runs in CPU tests.
``FakeArray`` has a shape and a dtype but no memory: launches past 2**31 elements cost nothing.
"""
from __future__ import annotations

import types

import numpy


class FakeFunction:
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, grid, block, args):
        self.module.cupy.launches.append((self.name, grid, block, args))


class FakeRawModule:
    def __init__(self, cupy, code, options=(), name_expressions=()):
        self.cupy = cupy
        self.names = list(name_expressions)
        cupy.modules.append(self)
        self.options = options
        self.code = code

    def get_function(self, name):
        if name not in self.names:
            raise KeyError(f"{name} is not a name expression of this module")
        return FakeFunction(self, name)


class FakeArray:
    """Shape and dtype only: enough for the launch code, which never touches the values."""

    def __init__(self, shape, dtype):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = numpy.dtype(dtype)
        self.size = int(numpy.prod(self.shape, dtype=object))
        self.ndim = len(self.shape)
        self.flags = types.SimpleNamespace(c_contiguous=True)

    def __matmul__(self, other):
        return FakeArray(self.shape[:-1] + other.shape[1:], self.dtype)

    def mean(self):
        return FakeArray((), self.dtype)

    def astype(self, dtype, copy=True):
        return FakeArray(self.shape, dtype)


class FakeDevice:
    def __init__(self, cupy, number=None):
        self.cupy = cupy
        self.id = cupy.current if number is None else number

    def use(self):
        self.cupy.current = self.id

    def synchronize(self):
        self.cupy.synchronized += 1


class FakeNcclGroup:
    def __init__(self, cupy, size, rank, **options):
        self.cupy = cupy
        cupy.groups.append((size, rank, options))

    def all_reduce(self, send, recv, op="sum"):
        self.cupy.collectives.append(("all_reduce", send, recv, op))

    def broadcast(self, array, root=0):
        self.cupy.collectives.append(("broadcast", array, root))


class FakeDeviceArray(numpy.ndarray):
    """Stands for cupy.ndarray in NCCL tests (values are needed to check the weights)."""


class FakeCupy:
    ndarray = FakeDeviceArray

    def __init__(self, devices=1, fail_init=None):
        self.modules, self.launches, self.groups, self.collectives = [], [], [], []
        self.current, self.synchronized = 0, 0
        self.fail_init = fail_init
        count = devices
        fake = self

        class Runtime:
            @staticmethod
            def getDeviceCount():
                if isinstance(count, Exception):
                    raise count
                return count

        self.cuda = types.SimpleNamespace(runtime=Runtime, Device=lambda number=None: FakeDevice(fake, number),
                                          nccl=types.SimpleNamespace(get_version=lambda: 22703))

    # --- what CupyKernels and CudaLauncher use ---------------------------------------------------
    def RawModule(self, code, options=(), name_expressions=()):
        return FakeRawModule(self, code, options, name_expressions)

    @staticmethod
    def ascontiguousarray(a, dtype=None):
        return a if dtype is None or numpy.dtype(dtype) == a.dtype else FakeArray(a.shape, dtype)

    @staticmethod
    def empty(shape, dtype):
        return FakeArray(shape if isinstance(shape, tuple) else (shape,), dtype)

    @staticmethod
    def empty_like(a):
        return FakeArray(a.shape, a.dtype)

    # --- what NCCLCommunicator uses --------------------------------------------------------------
    def import_nccl(self):
        fake = self

        def init_process_group(size, rank, **options):
            if fake.fail_init is not None:
                raise fake.fail_init
            return FakeNcclGroup(fake, size, rank, **options)

        return self, types.SimpleNamespace(init_process_group=init_process_group)


class FakeComm:
    """An MPI communicator of ``size`` ranks seen from ``rank``, ``local_size`` ranks per node."""

    def __init__(self, rank=0, size=1, local_rank=None, local_size=None):
        self.rank, self.size = rank, size
        self.local_rank = rank if local_rank is None else local_rank
        self.local_size = size if local_size is None else local_size
        self.barriers = 0

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Split_type(self, kind, key=0):
        return types.SimpleNamespace(Get_rank=lambda: self.local_rank, Get_size=lambda: self.local_size,
                                     Free=lambda: None)

    def allgather(self, obj):
        return [obj] * self.size  # every rank agrees with this one

    def Barrier(self):
        self.barriers += 1


def fake_mpi(comm):
    return types.SimpleNamespace(COMM_WORLD=comm, COMM_TYPE_SHARED=1, SUM="sum", IN_PLACE=None,
                                 Get_library_version=lambda: "FakeMPI 1.0\n")

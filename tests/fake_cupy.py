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

        self.cuda = types.SimpleNamespace(
            runtime=Runtime,
            Device=lambda number=None: FakeDevice(fake, number),
            nccl=types.SimpleNamespace(get_version=lambda: 22703),
        )

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
        return types.SimpleNamespace(
            Get_rank=lambda: self.local_rank, Get_size=lambda: self.local_size, Free=lambda: None
        )

    def allgather(self, obj):
        return [obj] * self.size  # every rank agrees with this one

    def Barrier(self):
        self.barriers += 1


def fake_mpi(comm):
    return types.SimpleNamespace(
        COMM_WORLD=comm, COMM_TYPE_SHARED=1, SUM="sum", IN_PLACE=None, Get_library_version=lambda: "FakeMPI 1.0\n"
    )


def numpy_cupy(driver=13000, runtime=12090, devices=1, sums=None, compile_error=None):
    """A fake CuPy whose arrays are numpy arrays: enough for the cupy backend's start-up checks.

    ``sums`` replaces what the test computation returns (a GPU giving wrong numbers);
    ``compile_error`` is raised by NVRTC.
    """
    fake = FakeCupy(devices=devices)
    pool_free = 3 * 2**20

    class Runtime:
        @staticmethod
        def driverGetVersion():
            return driver

        @staticmethod
        def runtimeGetVersion():
            return runtime

        @staticmethod
        def getDeviceCount():
            return devices

        @staticmethod
        def getDeviceProperties(number):
            return {"name": b"NVIDIA H200", "major": 9, "minor": 0, "totalGlobalMem": 141 * 2**30}

    class Device(FakeDevice):
        mem_info = (100 * 2**20, 141 * 2**30)

    def raw_module(code, options=(), name_expressions=()):
        if compile_error is not None:
            raise compile_error
        return FakeRawModule(fake, code, options, name_expressions)

    def arange(n, dtype=None):
        return numpy.full(n, sums[0] / n, dtype) if sums else numpy.arange(n, dtype=dtype)

    def ones(shape, dtype=None):
        return numpy.full(shape, (sums[1] / 3) ** 0.5 if sums else 1, dtype)  # (2,3)@(3,2): 3 v**2

    fake.cuda = types.SimpleNamespace(runtime=Runtime, Device=lambda number=None: Device(fake, number))
    fake.RawModule = raw_module
    fake.__version__ = "14.2.0"
    fake.ndarray = numpy.ndarray
    fake.float32 = numpy.float32
    fake.arange, fake.ones, fake.asarray, fake.asnumpy = arange, ones, numpy.asarray, numpy.asarray

    class RandomState(numpy.random.RandomState):  # CuPy's takes a dtype
        def random_sample(self, size=None, dtype=float):
            return super().random_sample(size).astype(dtype)

    fake.random = types.SimpleNamespace(RandomState=RandomState)
    fake.get_default_memory_pool = lambda: types.SimpleNamespace(free_bytes=lambda: pool_free)
    return fake

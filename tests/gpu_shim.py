"""A GPU-shaped backend on the host that counts every device-to-host transfer.

``CountedArray`` is a numpy array that behaves like a CuPy array where it matters here:
reductions and scalar indexing give 0-d arrays, not Python or numpy scalars, and every way of
bringing a value to the host (``bool``, ``float``, ``int``, ``item``, ``tolist``, ``get``,
``to_numpy``) is counted - on a GPU each of those waits for every queued kernel.  The backend
runs ``CupyKernels`` (the CUDA source itself, emulated on the host by ``HostLauncher``) on
such arrays, through the same code path as the cupy backend.
"""

from __future__ import annotations

import traceback
import types

import numpy

from fastnet.backends.base import Backend
from fastnet.backends.cupy_kernels import CupyKernels


class Transfers:
    """Where host reads happened (a short stack per read)."""

    def __init__(self):
        self.reads = []

    def note(self, how):
        frames = [f for f in traceback.extract_stack()[:-3] if "fastnet" in f.filename and "tests" not in f.filename]
        where = f"{frames[-1].filename.split('fastnet/', 1)[-1]}:{frames[-1].lineno}" if frames else "test"
        self.reads.append(f"{how} at {where}")

    def __len__(self):
        return len(self.reads)


TRANSFERS = Transfers()


def _device(value):
    if isinstance(value, numpy.ndarray) and not isinstance(value, CountedArray):
        return value.view(CountedArray)
    if isinstance(value, numpy.generic):
        return numpy.asarray(value).view(CountedArray)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    return value


class CountedArray(numpy.ndarray):
    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return arr.view(CountedArray)  # reductions stay 0-d arrays, as on CuPy

    def __getitem__(self, key):
        return _device(super().__getitem__(key))

    def _read(self, how):
        TRANSFERS.note(how)
        return numpy.ndarray.view(self, numpy.ndarray)

    def __bool__(self):
        return bool(self._read("bool()"))

    def __float__(self):
        return float(self._read("float()"))

    def __int__(self):
        return int(self._read("int()"))

    def __index__(self):
        return self._read("index").__index__()

    def item(self, *args):
        return self._read("item()").item(*args)

    def tolist(self):
        return self._read("tolist()").tolist()

    def get(self):
        return self._read("get()").copy()


class CountedNumpy(types.SimpleNamespace):
    """numpy, with every function's array results made ``CountedArray`` (like ``cupy``)."""

    ndarray = numpy.ndarray

    def __getattr__(self, name):
        attr = getattr(numpy, name)
        if isinstance(attr, (type, types.ModuleType)) or not callable(attr):
            return attr
        return lambda *args, **kwargs: _device(attr(*args, **kwargs))

    def asnumpy(self, a):
        return a._read("asnumpy()").copy() if isinstance(a, CountedArray) else numpy.asarray(a)


class DeviceGenerator:
    """Device random numbers: no host round trip."""

    def __init__(self, seed):
        self._rng = numpy.random.default_rng(seed)

    def random(self, size=None, dtype="float64"):
        return _device(self._rng.random(size, dtype=dtype))

    def permutation(self, n):
        return _device(self._rng.permutation(int(n)))


class CountedGpuBackend(Backend):
    """The cupy backend's code path, emulated on the host, counting transfers."""

    name = "cupy-counted"
    device = "gpu"

    def __init__(self, launcher):
        xp = CountedNumpy()
        super().__init__(xp, CupyKernels(xp, launch=launcher))

    def asarray(self, a, dtype=None):
        return _device(numpy.array(a, dtype=dtype))

    def to_numpy(self, a):
        return self.xp.asnumpy(a)

    def rng(self, seed=None):
        return DeviceGenerator(seed)

    def synchronize(self):
        TRANSFERS.note("synchronize()")

    def free_memory(self):
        return 2**34

"""The CUDA source of ``cupy_kernels`` run on the host, and its kernel signatures read back.

``build_host_library`` compiles ``SOURCE`` with the host C++ compiler behind a tiny shim;
``HostLauncher`` runs every GPU thread of a small grid in turn (the kernels are pure gathers,
so running threads one after another is equivalent).  ``check_launch`` compares a launch's
arguments with the C++ signature of the template instance it names: every launcher here calls
it, so every emulated launch is also a check of what CuPy would pack for the device.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy

from fastnet.backends.base import Backend
from fastnet.backends.cupy_kernels import SOURCE, name_expressions

HOST_SHIM = r"""
#include <math.h>
#define __global__
#define __device__
// One thread at a time on the host: the atomic minimum is a plain one.
static long long atomicMin(long long* address, long long value) {
  long long old = *address;
  if (value < old) *address = value;
  return old;
}
struct fastnet_dim { long long x; };
static fastnet_dim blockIdx, threadIdx, blockDim, gridDim;
extern "C" void fastnet_set_thread(long long block, long long thread, long long threads,
                                   long long blocks) {
  blockIdx.x = block; threadIdx.x = thread; blockDim.x = threads; gridDim.x = blocks;
}
"""

C_TYPES = {
    "float": numpy.dtype(numpy.float32),
    "double": numpy.dtype(numpy.float64),
    "int": numpy.dtype(numpy.int32),
    "long long": numpy.dtype(numpy.int64),
}


def kernel_table(names):
    """C++ that takes each template instance's address (which instantiates it), in order."""
    entries = ",\n  ".join(f"reinterpret_cast<void*>(&{name})" for name in names)
    return (
        'extern "C" void* fastnet_kernel(int i) {\n'
        f"  static void* table[] = {{\n  {entries}}};\n  return table[i];\n}}\n"
    )


def _signatures():
    """{kernel: (template parameter names, [(is_pointer, C type or parameter name, arg name)])}"""
    found = {}
    for params, name, args in re.findall(r"template <([^>]*)>\s*__global__ void (\w+)\(([^)]*)\)", SOURCE):
        template = [p.split()[-1] for p in params.split(",")]
        parsed = []
        for arg in " ".join(args.split()).split(","):
            words = arg.replace("*", " * ").split()
            pointer = "*" in words
            words = [w for w in words if w not in ("const", "*")]
            parsed.append((pointer, " ".join(words[:-1]), words[-1]))
        found[name] = (template, parsed)
    return found


SIGNATURES = _signatures()


def expected_arguments(name_expression):
    """[(is_pointer, numpy dtype, arg name)] for one instance such as ``im2col<float, int>``."""
    kernel, rest = name_expression.split("<", 1)
    template, params = SIGNATURES[kernel]
    bound = dict(zip(template, [a.strip() for a in rest.rstrip(">").split(",")], strict=True))
    return [(pointer, C_TYPES[bound.get(ctype, ctype)], arg) for pointer, ctype, arg in params]


def check_launch(name, size, args):
    """A launch's arguments against the kernel's C++ signature: kinds, dtypes, byte sizes."""
    wanted = expected_arguments(name)
    assert len(args) == len(wanted), f"{name}: {len(args)} arguments for {len(wanted)} parameters"
    for value, (pointer, dtype, arg) in zip(args, wanted, strict=True):
        if pointer:
            assert hasattr(value, "shape") and getattr(value, "ndim", 0) >= 0 and not numpy.isscalar(value), (
                f"{name}: {arg} must be a device array, got {type(value).__name__}"
            )
            assert value.dtype == dtype, f"{name}: {arg} is {value.dtype}, the kernel reads {dtype}"
            assert value.flags.c_contiguous, f"{name}: {arg} must be C-contiguous"
        else:
            assert isinstance(value, numpy.generic), (
                f"{name}: {arg} must be a numpy scalar of exact width, got {type(value).__name__}"
            )
            assert value.dtype == dtype and value.dtype.itemsize == dtype.itemsize, (
                f"{name}: {arg} is {value.dtype}, the kernel takes {dtype}"
            )
    size_arg = dict(zip((a for _, _, a in wanted), args, strict=True))["size"]
    assert int(size_arg) == size, f"{name}: launched over {size} elements but told size={int(size_arg)}"


def build_host_library(folder):
    """The kernels as a shared library for this machine, or None without a C++ compiler."""
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        return None
    source = folder / "kernels.cpp"
    source.write_text(HOST_SHIM + SOURCE + kernel_table(name_expressions()))
    library = folder / "kernels.so"
    subprocess.run(
        [compiler, "-std=c++17", "-O1", "-shared", "-fPIC", str(source), "-o", str(library)],
        check=True,
        capture_output=True,
        text=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.fastnet_kernel.restype = ctypes.c_void_p
    lib.fastnet_kernel.argtypes = [ctypes.c_int]
    lib.fastnet_set_thread.argtypes = [ctypes.c_longlong] * 4
    return lib


_C_SCALARS = {
    numpy.dtype(numpy.int32): ctypes.c_int32,
    numpy.dtype(numpy.int64): ctypes.c_longlong,
    numpy.dtype(numpy.float32): ctypes.c_float,
    numpy.dtype(numpy.float64): ctypes.c_double,
}


def _c_arg(value):
    if isinstance(value, numpy.ndarray):
        return ctypes.c_void_p, value.ctypes.data
    return _C_SCALARS[numpy.asarray(value).dtype], value.item()


class HostLauncher:
    """Runs a kernel over a small grid, one emulated thread after another."""

    threads, max_blocks = 4, 3

    def __init__(self, library):
        self.lib = library
        self.index = {name: i for i, name in enumerate(name_expressions())}
        self.launched = []

    def __call__(self, name, size, args):
        check_launch(name, size, args)
        self.launched.append(name)
        if size == 0:
            return
        argtypes, values = zip(*(_c_arg(a) for a in args), strict=True)
        kernel = ctypes.CFUNCTYPE(None, *argtypes)(self.lib.fastnet_kernel(self.index[name]))
        blocks = min((size + self.threads - 1) // self.threads, self.max_blocks)
        for block in range(blocks):
            for thread in range(self.threads):
                self.lib.fastnet_set_thread(block, thread, self.threads, blocks)
                kernel(*values)


class HostKernelsBackend(Backend):
    """numpy arrays, with the CUDA kernels run on the host: the GPU code path without a GPU."""

    name = "cupy-kernels-on-host"

"""The GPU backend: CuPy arrays on the current CUDA device, with fused kernels.

``load()`` imports CuPy only when asked and proves the GPU works (a real allocation, sum,
matrix product and kernel compilation) before anything uses it.  Every way that can fail
becomes a ``BackendUnavailable`` with one line that says what is wrong, so the registry can
record it and fall back to a CPU backend.
"""

from __future__ import annotations

from fastnet.backends.base import Backend
from fastnet.errors import BackendUnavailable, InputError

INSTALL_HINT = "pip install 'fastnet[cuda12]' or 'fastnet[cuda13]'"


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """CuPy's import and CUDA errors can span many lines; the registry keeps one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cuda_version(number: int) -> str:
    """CUDA encodes 12.4 as 12040."""
    return f"{number // 1000}.{number % 1000 // 10}"


def _import_cupy():
    try:
        import cupy
    except ModuleNotFoundError as exc:
        if exc.name == "cupy" or (exc.name or "").startswith("cupy."):
            raise BackendUnavailable(f"CuPy is not installed; {INSTALL_HINT}") from None
        raise BackendUnavailable(
            f"CuPy cannot be imported ({_first_line(exc)}); reinstall the "
            f"cupy-cuda package that matches your CUDA version"
        ) from None
    except Exception as exc:  # a broken install raises ImportError or OSError with a long text
        raise BackendUnavailable(
            f"CuPy cannot be imported ({_first_line(exc)}); reinstall the "
            f"cupy-cuda package that matches your CUDA version"
        ) from None
    return cupy


def _check_driver_and_device(cupy) -> None:
    runtime = cupy.cuda.runtime
    try:
        driver = runtime.driverGetVersion()
    except Exception:
        driver = 0
    if driver == 0:
        raise BackendUnavailable(
            "no NVIDIA driver found (CUDA driver version 0); install the NVIDIA driver, or use a CPU backend"
        )
    try:
        needed = runtime.runtimeGetVersion()
    except Exception:
        needed = 0
    if driver // 1000 < needed // 1000:
        raise BackendUnavailable(
            f"the NVIDIA driver supports CUDA {_cuda_version(driver)} but this CuPy "
            f"needs CUDA {_cuda_version(needed)}; update the driver or install "
            f"the cupy-cuda package matching it"
        )
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        raise BackendUnavailable(f"no usable CUDA device ({_first_line(exc)}); check nvidia-smi") from None
    if count == 0:
        raise BackendUnavailable("no CUDA device found (device count 0); check nvidia-smi and CUDA_VISIBLE_DEVICES")


def _prove_gpu_works(cupy, kernels) -> None:
    """Run a tiny real computation so CUDA, cuBLAS and NVRTC all start now, not mid-training."""
    steps = (
        ("CUDA failed to start", lambda: float(cupy.arange(6, dtype=cupy.float32).sum())),
        (
            "cuBLAS failed to load",
            lambda: float((cupy.ones((2, 3), cupy.float32) @ cupy.ones((3, 2), cupy.float32))[0, 0]),
        ),
        ("the fastnet CUDA kernels failed to compile", kernels.launch.compile),
    )
    results = []
    for what, step in steps:
        try:
            results.append(step())
            cupy.cuda.Device().synchronize()
        except Exception as exc:
            raise BackendUnavailable(f"{what} ({type(exc).__name__}: {_first_line(exc)})") from None
    if results[:2] != [15.0, 3.0]:
        raise BackendUnavailable(
            f"the GPU returned wrong results for a test computation "
            f"({results[:2]} instead of [15.0, 3.0]); check the driver"
        )


class DeviceRandom:
    """A seeded generator whose numbers are made on the GPU (no host round trip)."""

    def __init__(self, cupy, seed=None):
        self._state = cupy.random.RandomState(None if seed is None else int(seed))

    def random(self, size=None, dtype="float64"):
        return self._state.random_sample(size=size, dtype=dtype)

    def permutation(self, n):
        return self._state.permutation(int(n))


class CupyBackend(Backend):
    name = "cupy"
    device = "gpu"

    def __init__(self, cupy, kernels=None):
        from fastnet.backends.cupy_kernels import CupyKernels

        super().__init__(cupy, kernels if kernels is not None else CupyKernels(cupy))

    def to_numpy(self, a):
        return self.xp.asnumpy(a)

    def check_array(self, a, what: str):
        if not self.is_array(a):
            kind = type(a).__module__.split(".")[0] + "." + type(a).__name__
            where = " on the host" if kind.startswith("numpy.") else ""
            raise InputError(
                f"{what} is a {kind}{where}, but this net runs on the GPU ('cupy' backend); "
                f"move it with backend.asarray({what})"
            )
        return a

    def rng(self, seed=None):
        return DeviceRandom(self.xp, seed)

    def synchronize(self) -> None:
        self.xp.cuda.Device().synchronize()

    def free_memory(self) -> int:
        """Bytes a new allocation can use: free device memory plus CuPy's cached free blocks."""
        free, _total = self.xp.cuda.Device().mem_info
        return int(free + self.xp.get_default_memory_pool().free_bytes())

    def info(self) -> dict:
        """What ``fastnet info`` shows about the GPU."""
        cupy = self.xp
        device = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(device.id)
        name = props.get("name", b"unknown GPU")
        return {
            "backend": self.name,
            "device_id": int(device.id),
            "gpu": name.decode(errors="replace") if isinstance(name, bytes) else str(name),
            "compute_capability": f"{props.get('major', '?')}.{props.get('minor', '?')}",
            "total_memory_bytes": int(props.get("totalGlobalMem", device.mem_info[1])),
            "cupy": cupy.__version__,
            "cuda_runtime": _cuda_version(cupy.cuda.runtime.runtimeGetVersion()),
            "cuda_driver": _cuda_version(cupy.cuda.runtime.driverGetVersion()),
        }

    def describe(self) -> str:
        i = self.info()
        return (
            f"cupy on GPU {i['device_id']}: {i['gpu']} ({i['total_memory_bytes'] / 2**30:.1f} GiB, "
            f"compute {i['compute_capability']}), CuPy {i['cupy']}, CUDA runtime "
            f"{i['cuda_runtime']}, driver {i['cuda_driver']}"
        )


def load() -> Backend:
    cupy = _import_cupy()
    _check_driver_and_device(cupy)
    backend = CupyBackend(cupy)
    _prove_gpu_works(cupy, backend.kernels)
    return backend

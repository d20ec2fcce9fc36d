"""The cupy backend's start-up checks and device facts against a fake CuPy (tests/fake_cupy.py).

Each way a GPU can fail to start must become one line naming the problem and the fix; a healthy
one must have run its test computation and compiled the 32-bit kernel module before use.
"""

import numpy
import pytest
from fake_cupy import numpy_cupy

from fastnet.backends import cupy_backend
from fastnet.backends.cupy_kernels import name_expressions
from fastnet.errors import BackendUnavailable


def _load(monkeypatch, fake):
    monkeypatch.setattr(cupy_backend, "_import_cupy", lambda: fake)
    return cupy_backend.load()


def test_a_healthy_gpu_starts_with_its_kernels_compiled(monkeypatch):
    fake = numpy_cupy()
    backend = _load(monkeypatch, fake)
    assert [m.names for m in fake.modules] == [name_expressions(32)]  # 64-bit: only when needed
    assert fake.synchronized == 3  # after each start-up step
    assert backend.describe() == (
        "cupy on GPU 0: NVIDIA H200 (141.0 GiB, compute 9.0), CuPy 14.2.0, CUDA runtime 12.9, driver 13.0"
    )
    assert backend.info()["total_memory_bytes"] == 141 * 2**30
    assert backend.free_memory() == 100 * 2**20 + 3 * 2**20
    a, b = backend.rng(7).permutation(50), backend.rng(7).permutation(50)
    numpy.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == list(range(50))
    assert backend.rng(7).random((2, 3), dtype="float32").dtype == numpy.float32
    backend.synchronize()
    assert fake.synchronized == 4


@pytest.mark.parametrize(
    "options,match",
    [
        ({"driver": 0}, r"^no NVIDIA driver found \(CUDA driver version 0\); install the NVIDIA driver, or use a CPU"),
        (
            {"driver": 12020, "runtime": 13000},
            r"^the NVIDIA driver supports CUDA 12\.2 but this CuPy needs CUDA 13\.0; "
            r"update the driver or install the cupy-cuda package matching it$",
        ),
        ({"devices": 0}, r"^no CUDA device found \(device count 0\); check nvidia-smi and CUDA_VISIBLE_DEVICES$"),
        (
            {"sums": (15.0, 12.0)},
            r"^the GPU returned wrong results for a test computation \(\[15\.0, 12\.0\] instead of "
            r"\[15\.0, 3\.0\]\); check the driver$",
        ),
        (
            {"compile_error": RuntimeError("nvrtc: error: invalid value for --gpu-architecture (-arch)\nmore")},
            r"^the fastnet CUDA kernels failed to compile \(RuntimeError: nvrtc: error: invalid value for "
            r"--gpu-architecture \(-arch\)\)$",
        ),
    ],
)
def test_each_way_of_failing_to_start_is_one_line(monkeypatch, options, match):
    with pytest.raises(BackendUnavailable, match=match) as caught:
        _load(monkeypatch, numpy_cupy(**options))
    assert "\n" not in str(caught.value)


def test_a_host_array_is_refused_at_the_door(monkeypatch):
    class DeviceArray(numpy.ndarray):
        pass

    fake = numpy_cupy()
    fake.ndarray = DeviceArray
    backend = _load(monkeypatch, fake)
    with pytest.raises(Exception, match=r"x is a numpy\.ndarray on the host, but this net runs on the GPU"):
        backend.check_array(numpy.ones(3), "x")
    assert backend.check_array(numpy.ones(3).view(DeviceArray), "x") is not None

"""The GPU-facing logic without a GPU: the kernel launcher, every launch's arguments at 32- and
64-bit sizes, and the NCCL communicator, against a fake CuPy (tests/fake_cupy.py)."""

import numpy
import pytest
from cuda_host import check_launch
from fake_cupy import FakeArray, FakeComm, FakeCupy, fake_mpi

from fastnet.backends.cupy_kernels import INDEX32_LIMIT, CudaLauncher, CupyKernels, index_width, name_expressions
from fastnet.backends.dispatch import Cache
from fastnet.distributed.faults import RankFailure
from fastnet.distributed.nccl import NCCLCommunicator
from fastnet.errors import BackendUnavailable

F32 = "bias_relu<float, int>"
F64_WIDE = "bias_relu<float, long long>"


# --- CudaLauncher ------------------------------------------------------------------------------------
def test_size_zero_launches_and_compiles_nothing():
    cupy = FakeCupy()
    CudaLauncher(cupy)(F32, 0, ())
    assert cupy.modules == [] and cupy.launches == []


def test_grid_covers_small_sizes_and_is_capped_for_large_ones():
    cupy = FakeCupy()
    launch = CudaLauncher(cupy)
    for size, blocks in [
        (1, 1),
        (256, 1),
        (257, 2),
        (100 * 10, 4),
        (256 * 65536, 65536),
        (256 * 65536 + 1, 65536),
        (3 * 2**31, 65536),
    ]:
        launch(F32 if size < INDEX32_LIMIT else F64_WIDE, size, ("args",))
        name, grid, block, args = cupy.launches[-1]
        assert grid == (blocks,) and block == (256,) and args == ("args",), size
    assert len(cupy.modules) == 2  # one per index width, each compiled once


def test_the_64_bit_module_is_compiled_only_when_a_launch_needs_it():
    cupy = FakeCupy()
    launch = CudaLauncher(cupy)
    launch.compile()  # what the backend does when it starts
    launch(F32, 10, ())
    assert [m.names for m in cupy.modules] == [name_expressions(32)]
    assert all("long long>" not in name.rsplit(",", 1)[-1] for name in name_expressions(32))
    launch(F64_WIDE, 2**31 + 5, ())
    assert [m.names for m in cupy.modules] == [name_expressions(32), name_expressions(64)]
    assert cupy.launches[-1][:2] == (F64_WIDE, (65536,))


def test_index_width_keeps_room_for_the_grid_stride_step():
    assert index_width(1, 10) == 32
    assert index_width(INDEX32_LIMIT - 1) == 32
    assert index_width(INDEX32_LIMIT) == 64 and index_width(5, 2**31) == 64
    # the last increment of the grid-stride loop must stay below 2**31 in 32-bit
    assert INDEX32_LIMIT + CudaLauncher.threads * CudaLauncher.max_blocks < 2**31


# --- every launch against the kernel signatures ----------------------------------------------------------
class CheckedLauncher(CudaLauncher):
    def __call__(self, name, size, args):
        check_launch(name, size, args)
        super().__call__(name, size, args)


def _launch_every_kernel(kernels, dtype, huge):
    """Each fast kernel once per argument kind, on arrays past 2**31 elements when ``huge``."""
    n = 2**25 if huge else 8  # rows
    side = 2**16 if huge else 6
    x = FakeArray((n, 64), dtype)
    kernels.affine_relu_forward(x, FakeArray((64, 64), dtype), FakeArray((64,), dtype))
    kernels.relu_backward(x, x)
    kernels.conv_bias_act(FakeArray((n, 64), dtype), FakeArray((64,), dtype), n // 4, 2, 2, True)
    image = FakeArray((1, 1, side, side), dtype)
    kernels.im2col(image, 3, 3, 1, 1)
    kernels.col2im(FakeArray((side * side, 9), dtype), image.shape, 3, 3, 1, 1)
    _, cache = kernels.maxpool_forward(image, 2, 2, 2, 0)
    dout = FakeArray((1, 1, side // 2, side // 2), dtype)
    kernels.maxpool_backward(dout, cache, image.shape, 2, 2, 2, 0)
    kernels.maxpool_backward(dout, Cache(True, FakeArray(dout.shape, numpy.int64)), image.shape, 2, 2, 2, 0)
    scores = FakeArray((n, 100), dtype)
    for t in (FakeArray((n,), numpy.int32), FakeArray((n,), numpy.int64), FakeArray((n, 100), dtype)):
        _, y = kernels.softmax_cross_entropy(scores, t)
        kernels.softmax_cross_entropy_backward(y, t, 1.0)
    flag = FakeArray((1,), numpy.int64)
    assert kernels.checks.note_nonfinite(x, flag, 3)
    for dtype in (numpy.int32, numpy.int64):
        assert kernels.checks.note_bad_labels(FakeArray((n * 64,), dtype), flag, 3, 10)
    assert not kernels.checks.note_bad_labels(FakeArray((n,), numpy.uint8), flag, 3, 10)  # the generic check


def test_every_launch_matches_its_kernel_signature_at_both_index_widths():
    cupy = FakeCupy()
    kernels = CupyKernels(cupy, launch=CheckedLauncher(cupy))
    for dtype in (numpy.float32, numpy.float64):
        _launch_every_kernel(kernels, dtype, huge=False)
    small = {name for name, *_ in cupy.launches}
    assert small == set(name_expressions(32))
    for dtype in (numpy.float32, numpy.float64):
        _launch_every_kernel(kernels, dtype, huge=True)
    huge = {name for name, *_ in cupy.launches} - small
    assert huge == set(name_expressions(64))
    for name, grid, _block, args in cupy.launches:
        largest = max(a.size for a in args if isinstance(a, FakeArray))
        if name in huge:  # 64-bit exactly when an array the kernel touches needs it
            assert largest >= INDEX32_LIMIT and grid == (65536,), name
        else:
            assert largest < INDEX32_LIMIT, name


# --- NCCLCommunicator ----------------------------------------------------------------------------------
def _communicator(cupy, **comm):
    return NCCLCommunicator(fake_mpi(FakeComm(**comm)), import_cupy=cupy.import_nccl)


@pytest.mark.parametrize("local_rank,devices,want", [(0, 2, 0), (1, 2, 1), (3, 8, 3), (1, 1, 0), (5, 1, 0)])
def test_each_rank_drives_the_gpu_of_its_local_rank_or_the_only_one_it_sees(local_rank, devices, want):
    cupy = FakeCupy(devices=devices)
    comm = _communicator(cupy, rank=local_rank, size=8, local_rank=local_rank, local_size=8)
    assert comm.device.id == want and cupy.current == want
    assert cupy.groups == [(8, local_rank, {"backend": "nccl", "use_mpi": True})]
    assert comm.describe().endswith(f"NCCL 22703 on GPU {want}")


@pytest.mark.parametrize(
    "devices,match",
    [
        (2, r"^3 ranks on this node but 2 visible GPU\(s\); NCCL needs one GPU per rank: start at most 2"),
        (0, r"^no CUDA device found \(device count 0\); check nvidia-smi"),
        (
            RuntimeError("cudaErrorNoDevice: no CUDA-capable device\nmore"),
            r"^no usable CUDA device \(cudaErrorNoDevice",
        ),
    ],
)
def test_a_rank_without_its_gpu_is_refused_in_one_line(devices, match):
    with pytest.raises(BackendUnavailable, match=match) as caught:
        _communicator(FakeCupy(devices=devices), rank=0, size=1, local_rank=2, local_size=3)
    assert "\n" not in str(caught.value)
    # in a job every rank says the same line (here each fake rank fails like this one)
    with pytest.raises(RankFailure, match=r"^rank 0 \(and 2 other rank\(s\)\): " + match[1:]):
        _communicator(FakeCupy(devices=devices), rank=2, size=3, local_rank=2, local_size=3)


def test_nccl_failing_to_start_is_one_line():
    cupy = FakeCupy(fail_init=RuntimeError("ncclUnhandledCudaError: Call to CUDA function failed.\ndetails"))
    with pytest.raises(
        BackendUnavailable,
        match=r"^NCCL failed to start \(RuntimeError: ncclUnhandledCudaError: "
        r"Call to CUDA function failed\.\)$",
    ):
        _communicator(cupy)


def test_a_one_rank_job_still_calls_nccl_and_weights_scale_first():
    cupy = FakeCupy(devices=1)
    comm = _communicator(cupy)
    buffer = numpy.arange(4, dtype=numpy.float32).view(cupy.ndarray)
    assert comm.allreduce_(buffer, weight=0.25) is buffer
    numpy.testing.assert_array_equal(buffer, [0, 0.25, 0.5, 0.75])
    assert [(op, send is buffer, recv is buffer, how) for op, send, recv, how in cupy.collectives] == [
        ("all_reduce", True, True, "sum")
    ]
    comm.allreduce_(buffer)  # weight 1: the values go to NCCL untouched
    numpy.testing.assert_array_equal(buffer, [0, 0.25, 0.5, 0.75])
    assert len(cupy.collectives) == 2
    comm.broadcast_(buffer, root=0)
    assert cupy.collectives[-1][0] == "broadcast" and cupy.collectives[-1][1] is buffer


def test_host_arrays_are_refused_before_nccl_sees_them():
    cupy = FakeCupy()
    comm = _communicator(cupy)
    with pytest.raises(TypeError, match="reduces CuPy arrays, not ndarray; use the cupy backend"):
        comm.allreduce_(numpy.ones(3, numpy.float32), weight=0.5)
    assert cupy.collectives == []


def test_barrier_waits_for_the_gpu_first():
    cupy = FakeCupy()
    world = FakeComm()
    comm = NCCLCommunicator(fake_mpi(world), import_cupy=cupy.import_nccl)
    comm.barrier()
    assert cupy.synchronized == 1 and world.barriers == 1

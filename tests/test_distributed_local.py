"""The distributed pieces that one process can check: registry, single-process communicator,
slicing, the data-parallel step with one rank, threads and the fault helpers."""

import os
import subprocess
import sys
from itertools import pairwise

import numpy
import pytest

from fastnet.distributed import DataParallel, SingleProcess, get_communicator, rank_rows
from fastnet.distributed.faults import abort_on_error, on_every_rank
from fastnet.distributed.threads import available_cores, threads_per_rank
from fastnet.errors import InputError
from fastnet.nets import MultiLayerNet
from fastnet.threads import usable_cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_none_is_one_rank_whose_collectives_are_the_identity():
    comm = get_communicator("none")
    assert (comm.rank, comm.size, comm.local_rank, comm.local_size, comm.is_root) == (0, 1, 0, 1, True)
    buffer = numpy.array([1.0, 2.0])
    assert comm.allreduce_(buffer, 0.5) is buffer and buffer.tolist() == [0.5, 1.0]
    assert comm.broadcast_(buffer) is buffer and comm.allreduce_scalar(3) == 3.0
    assert comm.allgather_object("x") == ["x"]


def test_unknown_communicator_is_one_clear_error():
    with pytest.raises(InputError, match="unknown communicator 'gloo'; choose one of: none, mpi, nccl, auto"):
        get_communicator("gloo")


def test_auto_picks_nccl_for_gpus_and_mpi_for_cpus():
    from fastnet.distributed import auto_name

    assert auto_name("cpu") == "mpi" and auto_name("cuda:0") == "nccl"


def _reason_in_child(name, env):
    code = f"from fastnet.distributed import unavailable_reason; print(unavailable_reason({name!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **env}
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_mpi_records_why_the_mpi_library_cannot_load():
    pytest.importorskip("mpi4py")
    reason = _reason_in_child("mpi", {"MPI4PY_LIBMPI": "/nonexistent/libmpi.so"})
    assert reason.startswith("cannot load MPI library (") and "pip install 'fastnet[mpi]'" in reason
    assert "\n" not in reason


def test_nccl_records_why_it_cannot_load_here():
    reason = _reason_in_child("nccl", {})
    if reason == "None":
        pytest.skip("NCCL loads here (a GPU machine): it has no unavailable path to check")
    assert reason and "\n" not in reason
    try:
        import cupy  # noqa: F401
    except Exception:
        assert reason.startswith(("CuPy is not installed; pip install 'fastnet[cuda12]'", "mpi4py is not installed")), (
            reason
        )
    code = (
        "from fastnet.distributed import get_communicator\n"
        "try:\n    get_communicator('nccl')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.stdout.strip() == f"BackendUnavailable communicator 'nccl' is unavailable: {reason}"


@pytest.mark.parametrize("n, size", [(200, 2), (201, 2), (201, 3), (2, 3), (0, 2), (7, 7), (1000, 6)])
def test_rank_rows_cover_the_batch_in_contiguous_near_equal_slices(n, size):
    slices = [rank_rows(n, r, size) for r in range(size)]
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in pairwise(slices))
    counts = [s.stop - s.start for s in slices]
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)
    assert [s.stop - s.start for s in (rank_rows(201, 0, 2), rank_rows(201, 1, 2))] == [101, 100]


def test_one_rank_data_parallel_is_the_plain_gradient():
    rng = numpy.random.default_rng(0)
    x, t = rng.normal(size=(30, 6)), rng.integers(0, 3, 30)
    net = MultiLayerNet(6, [5], 3, use_batchnorm=True, weight_decay_lambda=0.1, dtype="float64", seed=1)
    plain = MultiLayerNet(6, [5], 3, use_batchnorm=True, weight_decay_lambda=0.1, dtype="float64", seed=1)
    dp = DataParallel(net, SingleProcess())
    assert type(net.layers["BatchNorm1"]).__name__ == "BatchNormalization"  # untouched on one rank
    grads, expected = dp.gradient(x, t), plain.gradient(x, t)
    for key in expected:
        assert numpy.array_equal(grads[key], expected[key]), key
    assert float(dp.last_loss) == float(net.last_loss) == float(plain.last_loss)
    from fastnet.training.trainer import evaluate

    assert dp.evaluate(x, t, 7) == pytest.approx(evaluate(plain, x, t, 7), abs=1e-15)


def test_threads_share_the_cores_this_process_may_use():
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))
    assert available_cores() == usable_cores()[0]  # one count of cores for the policy and the ranks
    assert threads_per_rank(2, cores=8) == 4 and threads_per_rank(3, cores=2) == 1
    assert threads_per_rank(4, cores=6) == 1 and threads_per_rank(1, cores=6) == 6


def test_with_one_rank_errors_pass_through_unchanged():
    with pytest.raises(InputError, match="bad"):
        on_every_rank(SingleProcess(), lambda: (_ for _ in ()).throw(InputError("bad")))
    with pytest.raises(ZeroDivisionError):
        with abort_on_error(SingleProcess()):
            raise ZeroDivisionError("division by zero")


def test_a_rank_stopped_by_a_signal_aborts_with_128_plus_the_signal():
    import signal

    from fastnet.distributed.faults import report_and_abort
    from fastnet.training.stopping import StopNow

    with pytest.raises(SystemExit) as stopped:
        report_and_abort(SingleProcess(), StopNow(signal.SIGTERM))
    assert stopped.value.code == 143


def test_the_resume_command_of_a_job_starts_with_its_launcher():
    from fastnet.training.stopping import resume_command

    assert (
        resume_command("a b/c.npz", "--distributed", "mpi", launcher=("mpiexec", "-n", 2))
        == "mpiexec -n 2 fastnet train --resume 'a b/c.npz' --distributed mpi"
    )
    assert resume_command("c.npz") == "fastnet train --resume c.npz"

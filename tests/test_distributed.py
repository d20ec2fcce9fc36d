"""Data parallelism across MPI ranks: real ``mpiexec`` jobs, compared with one process.

Each job runs ``tests/distributed_worker.py`` under ``mpiexec -n N`` with a timeout; the tests
skip with the reason where mpi4py or mpiexec is missing.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

from fastnet.distributed.threads import available_cores, threads_per_rank

HERE = Path(__file__).resolve().parent
WORKER = HERE / "distributed_worker.py"
sys.path.insert(0, str(HERE))
import distributed_worker as worker  # noqa: E402

MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="mpi4py or mpiexec is missing (pip install 'fastnet[mpi]')",
)


def mpiexec(n, mode, out, env=None, timeout=60, rank1_env=None):
    """Run the worker on ``n`` ranks; ``rank1_env`` gives rank 1 alone extra variables (MPMD)."""
    cmd = [MPIEXEC, "-n", str(n), sys.executable, str(WORKER), mode, str(out)]
    if rank1_env:
        extra = [arg for k, v in rank1_env.items() for arg in ("-env", k, v)]
        cmd = [
            MPIEXEC,
            "-n",
            "1",
            sys.executable,
            str(WORKER),
            mode,
            str(out),
            ":",
            "-n",
            "1",
            *extra,
            sys.executable,
            str(WORKER),
            mode,
            str(out),
        ]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return proc, time.monotonic() - started


def run_parity(n, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"ranks{n}")
    proc, _ = mpiexec(n, "parity", out, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [dict(numpy.load(out / f"rank{r}.npz")) for r in range(n)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return run_parity(2, tmp_path_factory)


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory):
    return run_parity(3, tmp_path_factory)  # oversubscribed on a 2-core machine


@pytest.fixture(scope="module")
def oracle():
    return {config: worker.train_single(config) for config in worker.CONFIGS}


def check_parity(ranks, config, oracle):
    net, losses, (loss, acc) = oracle[config]
    key = worker.key(config)
    for name, expected in net.state_arrays().items():
        got = ranks[0][f"{key}/{name}"]
        numpy.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=f"{key} {name}")
        for other in ranks[1:]:  # bitwise identical on every rank
            assert numpy.array_equal(other[f"{key}/{name}"], got), f"{key} {name} differs between ranks"
    for rank in ranks:
        numpy.testing.assert_allclose(rank[f"{key}/losses"], losses, rtol=0, atol=1e-12)
        numpy.testing.assert_allclose(rank[f"{key}/eval"], [loss, acc], rtol=0, atol=1e-12)


@needs_mpi
@pytest.mark.parametrize("config", worker.CONFIGS, ids=worker.key)
def test_two_ranks_reproduce_one_process(two_ranks, oracle, config):
    check_parity(two_ranks, config, oracle)


@needs_mpi
@pytest.mark.parametrize("config", worker.CONFIGS, ids=worker.key)
def test_three_ranks_reproduce_one_process(three_ranks, oracle, config):
    check_parity(three_ranks, config, oracle)


@needs_mpi
@pytest.mark.parametrize("ranks", ["two_ranks", "three_ranks"])
@pytest.mark.parametrize("batch", worker.BN_BATCHES)
def test_batchnorm_uses_global_batch_statistics_even_with_an_empty_slice(request, ranks, batch):
    # Batch 2 on 3 ranks leaves rank 2 without rows; it still joins the statistics.  On 2 ranks
    # each row is a slice of its own.  Bound: float64 sums of a few rows, scaled to the values.
    every_rank = request.getfixturevalue(ranks)
    for rank in every_rank:
        for key in [k for k in rank if k.startswith(f"bn{batch}/") and not k.endswith("/expected")]:
            expected = rank[key + "/expected"]
            scale = max(float(abs(expected).max()), 1.0)
            numpy.testing.assert_allclose(rank[key], expected, rtol=0, atol=1e-10 * scale, err_msg=key)
            assert numpy.array_equal(rank[key], every_rank[0][key])


@needs_mpi
def test_each_rank_gets_its_share_of_the_cores(two_ranks, three_ranks):
    for ranks in (two_ranks, three_ranks):
        expected = threads_per_rank(len(ranks), available_cores())
        for rank in ranks:
            chosen, *blas = rank["threads"]
            assert chosen == expected and all(b == expected for b in blas)


@needs_mpi
def test_dropout_masks_come_from_seed_and_rank(three_ranks):
    from fastnet.distributed.data_parallel import stream_seed

    seeds = [int(rank["dropout"][1]) for rank in three_ranks]
    layer_seed = int(three_ranks[0]["dropout"][0])
    assert seeds == [stream_seed(layer_seed, r) for r in range(3)]
    assert len(set(seeds)) == 3


@needs_mpi
def test_dropout_streams_resume_exactly_on_as_many_ranks(two_ranks):
    for rank in two_ranks:
        straight, resumed = rank["dropout_resume"]
        assert numpy.array_equal(straight, resumed)
    # Different masks per rank, yet one update: the parameters agree across ranks.
    assert numpy.array_equal(two_ranks[0]["dropout_resume"], two_ranks[1]["dropout_resume"])


@needs_mpi
def test_a_rank_that_raises_ends_the_job(tmp_path):
    proc, seconds = mpiexec(2, "raise", tmp_path)
    assert proc.returncode != 0 and seconds < 60
    assert "rank 1: RuntimeError: a bug on rank 1" in proc.stderr


@needs_mpi
def test_an_uncaught_exception_aborts_the_job_through_the_excepthook(tmp_path):
    proc, seconds = mpiexec(2, "excepthook", tmp_path)
    assert proc.returncode != 0 and seconds < 60
    assert "rank 1: ValueError: an uncaught error on rank 1" in proc.stderr


@needs_mpi
def test_a_killed_rank_ends_the_job(tmp_path):
    proc, seconds = mpiexec(2, "kill", tmp_path)
    assert proc.returncode != 0 and seconds < 60


@needs_mpi
def test_a_rank_without_mpi_ends_the_job_with_one_line(tmp_path):
    proc, seconds = mpiexec(2, "start", tmp_path, rank1_env={"MPI4PY_LIBMPI": "/nonexistent/libmpi.so"})
    assert proc.returncode != 0 and seconds < 60
    assert "rank 1: communicator 'mpi' is unavailable: cannot load MPI library" in proc.stderr


@needs_mpi
def test_a_rank_without_its_backend_stops_every_rank_with_one_line(tmp_path):
    from fastnet.backends import unavailable_reason

    if unavailable_reason("cupy") is None:
        pytest.skip("cupy loads here; the test needs a backend that cannot")
    proc, seconds = mpiexec(2, "start", tmp_path, rank1_env={"FASTNET_TEST_BACKEND": "cupy"})
    assert proc.returncode == 2 and seconds < 60, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: rank 1: backend 'cupy' is unavailable"), lines


@needs_mpi
def test_ranks_compiling_numba_kernels_at_once_share_one_cache(tmp_path):
    pytest.importorskip("numba")
    cache = tmp_path / "numba-cache"
    env = {"NUMBA_CACHE_DIR": str(cache), "FASTNET_NUMBA_CACHE": "1"}
    results = []
    for run in ("compile", "load"):
        out = tmp_path / run
        out.mkdir()
        proc, _ = mpiexec(2, "numba", out, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append([dict(numpy.load(out / f"rank{r}.npz")) for r in range(2)])
    first, second = results
    assert all(r["misses"] > 0 for r in first)  # both ranks compiled, at once
    assert all(r["hits"] > 0 and r["misses"] == 0 for r in second)  # the next job loads the cache
    for key in ("W1", "b1", "W2", "b2"):
        assert numpy.array_equal(first[0][key], first[1][key])
        assert numpy.array_equal(first[0][key], second[0][key])
    assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix not in (".nbi", ".nbc")]

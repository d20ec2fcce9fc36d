"""The thread policy: cores from affinity and cgroup files, overrides, and applying the choice."""

import subprocess
import sys
from itertools import pairwise

import numpy
import pytest
from fastnet_cli import cli_env, command
from threadpoolctl import threadpool_info

from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet
from fastnet.profiling.thread_choice import threads_for
from fastnet.threads import (
    BLAS_ENV,
    LARGE_PRODUCT_MACS,
    NUMBA_ENV,
    affinity_cpus,
    cgroup_cpu_limit,
    choose_threads,
    parse_cfs_quota,
    parse_cpu_max,
    usable_cores,
    using_threads,
)
from fastnet.training.extension import called_at

QUIET = {}  # an environment that sets no thread variable


@pytest.fixture
def no_thread_env(monkeypatch):
    for name in BLAS_ENV + (NUMBA_ENV,):
        monkeypatch.delenv(name, raising=False)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cpu_max_parsing(tmp_path):
    assert parse_cpu_max(write(tmp_path / "a", "max 100000\n")) is None
    assert parse_cpu_max(write(tmp_path / "b", "150000 100000\n")) == 1.5
    assert parse_cpu_max(write(tmp_path / "c", "50000 50000")) == 1.0


def test_cfs_quota_parsing(tmp_path):
    period = write(tmp_path / "period", "100000\n")
    assert parse_cfs_quota(write(tmp_path / "q1", "-1\n"), period) is None
    assert parse_cfs_quota(write(tmp_path / "q2", "300000\n"), period) == 3.0


def test_cgroup_v2_limit_of_an_ancestor_applies(tmp_path):
    root = tmp_path / "cg"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "a" / "cpu.max", "50000 100000\n")
    write(root / "a" / "b" / "cpu.max", "max 100000\n")
    proc = write(tmp_path / "proc_cgroup", "0::/a/b\n")
    assert cgroup_cpu_limit(proc, root) == 0.5


def test_cgroup_v2_on_a_hybrid_mount_and_v1_quota_the_tightest_wins(tmp_path):
    root = tmp_path / "cg"
    write(root / "unified" / "cpu.max", "400000 100000\n")
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "250000\n")
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "100000\n")
    proc = write(tmp_path / "proc_cgroup", "4:memory:/job\n2:cpu,cpuacct:/job\n0::/\n")
    assert cgroup_cpu_limit(proc, root) == 2.5


def test_no_cgroup_files_means_no_limit(tmp_path):
    proc = write(tmp_path / "proc_cgroup", "0::/somewhere\n1:cpu:/else\n")
    assert cgroup_cpu_limit(proc, tmp_path / "empty") is None
    assert cgroup_cpu_limit(tmp_path / "missing", tmp_path) is None


def test_usable_cores_never_exceed_the_affinity_mask():
    cores, how = usable_cores()
    assert 1 <= cores <= affinity_cpus()
    assert how.startswith(f"affinity {affinity_cpus()}")


def test_small_products_get_one_thread_and_large_ones_every_usable_core(no_thread_env):
    cores, _ = usable_cores()
    small = choose_threads(LARGE_PRODUCT_MACS - 1, environ=QUIET)
    large = choose_threads(LARGE_PRODUCT_MACS, environ=QUIET)
    assert (small.blas, small.numba) == (1, 1)
    assert (large.blas, large.numba) == (cores, cores)
    assert "small matrix products" in small.describe()


def test_the_environment_overrides_the_policy_and_threads_overrides_both():
    env = {"OMP_NUM_THREADS": "3"}
    chosen = choose_threads(1, environ=env)
    assert (chosen.blas, chosen.numba) == (3, 3) and "OMP_NUM_THREADS=3" in chosen.describe()
    both = choose_threads(1, environ={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "3", NUMBA_ENV: "1"})
    assert (both.blas, both.numba) == (2, 1)
    assert choose_threads(1, threads=4, environ=env).blas == 4
    assert choose_threads(LARGE_PRODUCT_MACS * 10, environ={"OMP_NUM_THREADS": "zero"}).blas == usable_cores()[0]


def test_the_nets_are_sized_as_measured(no_thread_env):
    cores, _ = usable_cores()
    assert threads_for(TwoLayerNet(784, 50, 10, seed=0), (784,), 100).blas == 1
    assert threads_for(MultiLayerNet(784, [1000, 1000], 10, seed=0), (784,), 256).blas == cores
    assert threads_for(SimpleConvNet(seed=0, backend="numpy"), (1, 28, 28), 100).blas == cores
    assert threads_for(DeepConvNet(seed=0, backend="numpy"), (1, 28, 28), 100).blas == cores


def test_numba_convolutions_take_the_cores_and_leave_blas_to_the_dense_products(no_thread_env):
    """DeepConvNet on numba: its convolutions use every core (their own threads, one BLAS thread
    each); its Affine products are small, so the BLAS between them stays on one thread."""
    cores, _ = usable_cores()
    deep = threads_for(DeepConvNet(seed=0, backend="numba"), (1, 28, 28), 100)
    assert (deep.blas, deep.numba) == (1, cores)
    assert "convolutions on their own threads" in deep.why
    simple = threads_for(SimpleConvNet(seed=0, backend="numba"), (1, 28, 28), 100)
    # Its Affine1 is a large product too, but OpenBLAS's waiting threads would spin on the cores
    # the convolution threads use: BLAS stays on one thread beside several convolution threads.
    assert (simple.blas, simple.numba) == (1, cores)
    assert cores == 1 or "BLAS on 1 thread beside them" in simple.why
    tiny = threads_for(SimpleConvNet(input_dim=(1, 8, 8), hidden_size=10, seed=0, backend="numba"), (1, 8, 8), 4)
    assert (tiny.blas, tiny.numba) == (1, 1)
    assert threads_for(DeepConvNet(seed=0, backend="numba"), (1, 28, 28), 100, threads=3).numba == 3


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_using_threads_limits_the_blas_inside_and_restores_it_after():
    numpy.ones((2, 2)) @ numpy.ones((2, 2))
    before = _blas_threads()
    with using_threads(choose_threads(1, environ=QUIET)):
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before


def test_info_shows_the_thread_choice_and_the_environment_override(tmp_path):
    result = subprocess.run(
        command("info"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=cli_env(tmp_path, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("threads: ")]
    assert lines == ["threads: 1 BLAS, 1 numba/conv (OMP_NUM_THREADS=1)"]


def test_using_threads_sets_the_convolution_threads_and_restores_them():
    from fastnet.threads import conv_threads, default_conv_threads

    assert conv_threads() == default_conv_threads()
    with using_threads(choose_threads(1, threads=3, environ=QUIET)):
        assert conv_threads() == 3
        with using_threads(choose_threads(1, environ={NUMBA_ENV: "2", "OMP_NUM_THREADS": "1"})):
            assert conv_threads() == 2
        assert conv_threads() == 3
    assert conv_threads() == default_conv_threads()


def test_a_process_choice_holds_outside_blocks_and_a_block_wins_inside(tmp_path):
    """A rank sets its share for the whole process; a using_threads block still decides within."""
    code = (
        "from fastnet.threads import ThreadChoice, active_choice, conv_threads, set_process_choice, using_threads\n"
        "set_process_choice(ThreadChoice(1, 2, 'rank share'))\n"
        "print(conv_threads(), active_choice().why)\n"
        "with using_threads(ThreadChoice(1, 3, 'block')):\n"
        "    print(conv_threads())\n"
        "print(conv_threads())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=cli_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["2 rank share", "3", "2"]


def test_the_convolution_shares_follow_the_chosen_threads():
    """The batch is cut into one near-equal share per chosen thread (contiguous, covering it)."""
    from fastnet.backends.numba_kernels import NumbaKernels

    kernels = NumbaKernels()
    for count in (1, 2, 3):
        with using_threads(choose_threads(1, threads=count, environ=QUIET)):
            shares = kernels._shares(9)
        assert len(shares) == count
        assert max(hi - lo for lo, hi in shares) - min(hi - lo for lo, hi in shares) <= 1
        assert shares[0][0] == 0 and shares[-1][1] == 9
        assert all(a[1] == b[0] for a, b in pairwise(shares))
    with using_threads(choose_threads(1, threads=4, environ=QUIET)):
        assert kernels._shares(3) == [(0, 1), (1, 2), (2, 3)]  # no more shares than images


def test_the_convolution_threads_outside_a_choice_follow_the_environment(tmp_path):
    """A script that never chooses threads: NUMBA_NUM_THREADS (or the BLAS variables) still decide."""
    code = "from fastnet.threads import default_conv_threads; print(default_conv_threads())"
    for env, want in (({NUMBA_ENV: "1"}, "1"), ({"OMP_NUM_THREADS": "3"}, "3")):
        clean = {k: v for k, v in cli_env(tmp_path).items() if k not in BLAS_ENV + (NUMBA_ENV,)}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**clean, **env}
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == want


def _blas_threads_during_fit(trainer):
    seen = []
    trainer.extend(called_at("end_epoch", lambda t: seen.append(set(_blas_threads()))))
    trainer.fit()
    return seen[0]


def test_trainer_fit_applies_the_policy_unless_the_caller_chose(no_thread_env):
    """API users get the policy too (a small net on one BLAS thread), and a caller's choice wins."""
    from fastnet.training import Trainer

    rng = numpy.random.default_rng(0)
    x, t = rng.random((200, 784), dtype=numpy.float32), rng.integers(0, 10, 200)

    def trainer():
        net = TwoLayerNet(784, 50, 10, backend="numpy", seed=0)
        from fastnet.optim import SGD

        return Trainer(net, SGD(0.1), x, t, epochs=1, progress=False, log=None)

    policy = threads_for(TwoLayerNet(784, 50, 10, backend="numpy"), (784,), 100).blas
    assert _blas_threads_during_fit(trainer()) == {policy}
    wanted = 2 if policy == 1 else 1
    with using_threads(choose_threads(threads=wanted, environ=QUIET)):
        assert _blas_threads_during_fit(trainer()) == {wanted}


HUGE = "99999999999999999999"  # past a C int and a 64-bit one


@pytest.mark.parametrize("value", ["abc", "-1", "0", "²", "1e3", "", "  "])
def test_environment_values_that_are_not_a_thread_count_are_ignored(value):
    chosen = choose_threads(LARGE_PRODUCT_MACS * 10, environ={"OMP_NUM_THREADS": value})
    assert chosen.blas == usable_cores()[0] and "OMP_NUM_THREADS" not in chosen.why


@pytest.mark.parametrize("name", BLAS_ENV + (NUMBA_ENV,))
def test_an_environment_count_past_the_bound_is_lowered_and_said(name):
    most = 4 * usable_cores()[0]
    chosen = choose_threads(1, environ={name: HUGE})
    count = chosen.numba if name == NUMBA_ENV else chosen.blas
    assert count == most and f"{name}={HUGE} lowered to {most}" in chosen.why


@pytest.mark.parametrize("name", BLAS_ENV)
def test_train_with_a_huge_thread_variable_runs_on_the_bounded_count(tmp_path, name):
    """It once ended in a ctypes OverflowError traceback from the BLAS's thread setter."""
    result = subprocess.run(
        command(
            *("train", "--dataset", "sample", "--limit", "200", "--epochs", "1", "--backend", "numpy", "--quiet"),
            *("--out", tmp_path / "run"),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=cli_env(tmp_path, **{name: HUGE}),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    most = 4 * usable_cores()[0]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("threads: ")]
    assert line == f"threads: {most} BLAS, {most} numba/conv ({name}={HUGE} lowered to {most}, 4 per usable core)"
    assert (tmp_path / "run" / "checkpoint.npz").exists()

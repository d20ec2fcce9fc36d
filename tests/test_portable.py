"""Where users run fastnet: containers (the cgroup's memory, not the host's) and Windows
(simulated on this machine: no fcntl, msvcrt's locking, no fchmod, no O_NONBLOCK)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastnet_cli import PATIENCE, cli_env

from fastnet import host_memory
from fastnet.cgroups import cgroup_memory_headroom, parse_memory_headroom
from fastnet.errors import ResourceError
from fastnet.nets.mlp import TwoLayerNet
from fastnet.training import memory

TESTS = Path(__file__).resolve().parent
MiB = 2**20


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cgroup_v2_memory_headroom_is_the_tightest_ancestor_less_its_use(tmp_path):
    root = tmp_path / "cg"
    write(root / "cgroup.controllers", "cpu memory\n")
    write(root / "pod" / "memory.max", f"{512 * MiB}\n")
    write(root / "pod" / "memory.current", f"{100 * MiB}\n")
    write(root / "pod" / "box" / "memory.max", "max\n")
    proc = write(tmp_path / "proc_cgroup", "0::/pod/box\n")
    assert cgroup_memory_headroom(proc, root) == 412 * MiB


def test_cgroup_v1_memory_limit_and_its_unlimited_value(tmp_path):
    root = tmp_path / "cg"
    write(root / "memory" / "job" / "memory.limit_in_bytes", f"{256 * MiB}\n")
    write(root / "memory" / "job" / "memory.usage_in_bytes", f"{56 * MiB}\n")
    proc = write(tmp_path / "proc_cgroup", "5:memory:/job\n2:cpu,cpuacct:/job\n")
    assert cgroup_memory_headroom(proc, root) == 200 * MiB
    unlimited = write(tmp_path / "limit", "9223372036854771712\n")
    assert parse_memory_headroom(unlimited, tmp_path / "missing") is None
    assert cgroup_memory_headroom(write(tmp_path / "none", "0::/x\n"), tmp_path / "empty") is None


def test_a_batch_that_fits_the_host_but_not_the_container_is_refused_before_training(tmp_path, monkeypatch):
    """Under ``docker --memory 64m`` /proc/meminfo still shows the host's RAM; the cgroup decides."""
    root = tmp_path / "cg"
    write(root / "cgroup.controllers", "memory\n")
    write(root / "box" / "memory.max", f"{64 * MiB}\n")
    write(root / "box" / "memory.current", f"{24 * MiB}\n")
    proc = write(tmp_path / "proc_cgroup", "0::/box\n")
    monkeypatch.setattr(host_memory, "cgroup_memory_headroom", lambda: cgroup_memory_headroom(proc, root))
    net = TwoLayerNet(784, 50, 10, backend="numpy")
    assert memory.available_bytes(net.backend) <= 40 * MiB
    with pytest.raises(ResourceError, match="but only 0.0 GiB is free; use --batch-size"):
        memory.check_batch_fits(net, (784,), 100_000)
    assert memory.check_batch_fits(net, (784,), 100) is not None


def run_as_windows(code, tmp_path):
    """``code`` in a child process that fastnet takes for Windows (``tests/windows_sim.py``)."""
    env = cli_env(tmp_path, PYTHONPATH=os.pathsep.join([str(TESTS), cli_env()["PYTHONPATH"]]))
    env.pop("XDG_CACHE_HOME", None)
    env["HOME"] = str(tmp_path / "home")
    prelude = "import os, sys, windows_sim; windows_sim.enter(); del os.fchmod; del os.O_NONBLOCK\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env, timeout=PATIENCE
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_module_imports_and_the_command_trains_without_posix_only_modules(tmp_path):
    run = tmp_path / "run"
    out = run_as_windows(
        "import pkgutil, importlib, fastnet\n"
        "skip = ('fastnet.__main__', 'fastnet.backends.cupy', 'fastnet.distributed.nccl', 'fastnet.distributed.mpi')\n"
        "names = [m.name for m in pkgutil.walk_packages(fastnet.__path__, 'fastnet.')\n"
        "         if not m.name.startswith(skip)]\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names), flush=True)\n"
        "from fastnet.cli.main import main\n"
        "sys.exit(main(['train', '--dataset', 'sample', '--backend', 'numpy', '--limit', '300', '--epochs', '1',\n"
        f"                '--quiet', '--out', {str(run)!r}]))",
        tmp_path,
    )
    assert int(out.splitlines()[0]) > 50
    assert (run / "checkpoint.npz").is_file() and not (run / ".fastnet.lock").exists()


def test_atomic_writes_files_and_folders_work_without_fchmod_or_nonblocking_opens(tmp_path):
    target = tmp_path / "out" / "file.bin"
    out = run_as_windows(
        "from fastnet.atomic import atomic_write\n"
        "from fastnet.files import open_regular\n"
        f"atomic_write({str(target)!r}, lambda f: f.write(b'weights'))\n"
        f"f, size = open_regular({str(target)!r}); print(f.read().decode(), size)",
        tmp_path,
    )
    assert out.split() == ["weights", "7"]


def test_the_download_cache_comes_from_the_platform_not_a_hard_coded_home_dot_cache(tmp_path):
    out = run_as_windows(
        "import platformdirs\n"
        "from fastnet.datasets.catalog import MNIST\n"
        "from fastnet.datasets.locate import cache_dir\n"
        "spec = MNIST\n"
        "print(cache_dir(spec)); print(platformdirs.user_cache_dir(appauthor=False))",
        tmp_path,
    )
    where, platform_root = out.splitlines()
    assert where.startswith(platform_root)
    assert where.endswith(os.path.join("fastnet", Path(where).name))

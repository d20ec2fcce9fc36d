"""``fastnet info`` names the communicators and why one cannot be used, without hanging."""

import importlib.util
import subprocess

import pytest
from fastnet_cli import cli_env, command

from fastnet.distributed.report import check_communicators


def info(tmp_path, **env):
    proc = subprocess.run(
        command("info"), capture_output=True, text=True, timeout=120, cwd=tmp_path, env=cli_env(tmp_path, **env)
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def line_of(lines, name):
    return next(line for line in lines if line.startswith(f"  {name:<6} ") and "communicators" not in line)


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py is not installed")
def test_info_shows_mpi_usable_with_its_library(tmp_path):
    lines = info(tmp_path)
    at = lines.index("communicators (fastnet train --distributed):")
    block = lines[at + 1 :]
    assert block[0] == "  none   available (one process)"
    assert line_of(block, "mpi").startswith("  mpi    available: ")


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py is not installed")
def test_info_says_why_mpi_cannot_load(tmp_path):
    lines = info(tmp_path, MPI4PY_LIBMPI="/nonexistent/libmpi.so")
    block = lines[lines.index("communicators (fastnet train --distributed):") + 1 :]
    assert line_of(block, "mpi").startswith("  mpi    unavailable: cannot load MPI library")


def test_info_names_nccl_without_starting_it(tmp_path):
    block = info(tmp_path)
    nccl = line_of(block[block.index("communicators (fastnet train --distributed):") + 1 :], "nccl")
    if importlib.util.find_spec("cupy") is None:
        assert nccl.startswith("  nccl   unavailable: CuPy is not installed")
    else:
        assert "not started here" in nccl or "unavailable" in nccl


def test_a_check_past_its_deadline_says_not_checked():
    found = check_communicators(timeout=0.001)
    assert all(not ok and text.startswith("not checked") for ok, text in found.values())

"""Shared fixtures: tests run once per backend usable on this machine.

GPU tests carry the ``gpu`` marker and skip with the recorded reason where CuPy cannot run.
"""

import os
from pathlib import Path

import numpy
import pytest

from fastnet.backends import BACKEND_NAMES, get_backend, unavailable_reason

ALL_BACKENDS = tuple(reversed(BACKEND_NAMES))  # numpy, numba, cupy

# The files whose results depend on how the BLAS adds its products: kernels, parity, gradients,
# the recorded recipes, resume and the data-parallel runs. `.ci/run` runs them again under other
# OpenBLAS kernels (``pytest -m numerics``), as a user's CPU would pick them.
NUMERICS = {
    "test_kernel_parity.py",
    "test_numba_kernels.py",
    "test_kernel_contract.py",
    "test_layers_gradcheck.py",
    "test_nets.py",
    "test_optim.py",
    "test_torch_oracle.py",
    "test_net_state.py",
    "test_dtype.py",
    "test_cli_selection.py",
    "test_resume.py",
    "test_cli_resume_record.py",
    "test_trainer.py",
    "test_distributed.py",
    "test_distributed_local.py",
    "test_interrupt.py",
    "test_winograd.py",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in NUMERICS:
            item.add_marker(pytest.mark.numerics)


def _backend_param(name):
    marks = [pytest.mark.gpu] if name == "cupy" else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(params=[_backend_param(n) for n in ALL_BACKENDS])
def backend(request):
    """Each available backend in turn; unavailable ones skip with the reason they cannot load."""
    reason = unavailable_reason(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param} unavailable: {reason}")
    return get_backend(request.param)


@pytest.fixture
def rng():
    return numpy.random.default_rng(12345)


def _mnist_dir():
    candidates = [
        os.environ.get("FASTNET_MNIST_DIR"),
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist",
    ]
    for c in candidates:
        if c and (Path(c) / "train-images-idx3-ubyte.gz").exists():
            return Path(c)
    return None


@pytest.fixture
def mnist_dir():
    """The full MNIST files, or a skip where they are absent (a user's clone has none)."""
    path = _mnist_dir()
    if path is None:
        pytest.skip("full MNIST files not found (set FASTNET_MNIST_DIR or place ../shared/data/mnist)")
    return path

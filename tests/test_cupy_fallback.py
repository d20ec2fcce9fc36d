"""Where CuPy cannot run, fastnet says why and carries on with a CPU backend.

These run on machines without a usable GPU (they skip where the cupy backend loads, since
there is nothing to fall back from).  "CuPy absent" is made real in a subprocess in which
``import cupy`` raises ImportError.
"""

import re
import subprocess
import sys

import numpy
import pytest

from fastnet.backends import get_backend, select_backend, unavailable_reason
from fastnet.errors import BackendUnavailable, InputError

CUPY_REASON = unavailable_reason("cupy")
needs_no_gpu = pytest.mark.skipif(CUPY_REASON is None, reason="the cupy backend works here; nothing falls back")


def _best_cpu_backend():
    return "numba" if unavailable_reason("numba") is None else "numpy"


def _run_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_no_gpu
def test_reason_is_one_precise_line():
    assert isinstance(CUPY_REASON, str) and CUPY_REASON.strip()
    assert "\n" not in CUPY_REASON
    assert any(word in CUPY_REASON for word in ("CUDA", "device", "driver", "CuPy"))
    # A failure load() anticipated, not an unexpected exception the registry had to name.
    assert re.match(r"\w+(Error|Exception): ", CUPY_REASON) is None


@needs_no_gpu
def test_select_cupy_falls_back_with_a_warning_naming_the_reason():
    selection = select_backend("cupy")
    assert selection.fell_back
    assert selection.backend.name == _best_cpu_backend()
    message = selection.message()
    assert message.startswith("warning:") and CUPY_REASON in message
    assert f"falling back to '{_best_cpu_backend()}'" in message


@needs_no_gpu
def test_strict_selection_and_explicit_name_raise_with_the_reason():
    with pytest.raises(BackendUnavailable, match="cupy") as strict:
        select_backend("cupy", strict=True)
    assert CUPY_REASON in str(strict.value)
    with pytest.raises(BackendUnavailable) as explicit:
        get_backend("cupy")
    assert CUPY_REASON in str(explicit.value)


@needs_no_gpu
def test_auto_picks_a_cpu_backend_and_says_why_cupy_was_skipped():
    assert get_backend("auto").name == _best_cpu_backend()
    selection = select_backend("auto")
    assert not selection.fell_back and selection.skipped["cupy"] == CUPY_REASON
    assert f"skipped cupy: {CUPY_REASON}" in selection.message()


def test_cupy_absent_is_reported_as_not_installed():
    out = _run_python(
        "import sys; sys.modules['cupy'] = None\n"
        "from fastnet.backends import select_backend, unavailable_reason\n"
        "print(unavailable_reason('cupy'))\n"
        "print(select_backend('cupy').message())\n"
    )
    reason, message = out.strip().splitlines()
    assert reason == "CuPy is not installed; pip install 'fastnet[cuda12]' or 'fastnet[cuda13]'"
    assert message.startswith("warning:") and reason in message


def test_without_cupy_and_numba_the_fallback_is_numpy():
    out = _run_python(
        "import sys; sys.modules['cupy'] = None; sys.modules['numba'] = None\n"
        "from fastnet.backends import select_backend\n"
        "s = select_backend('cupy'); print(s.backend.name); print(sorted(s.skipped))\n"
    )
    name, skipped = out.strip().splitlines()
    assert name == "numpy" and skipped == "['cupy', 'numba']"


def test_importing_fastnet_does_not_import_cupy():
    out = _run_python(
        "import sys, fastnet, fastnet.backends.cupy_backend, fastnet.backends.cupy_kernels\n"
        "import fastnet.layers, fastnet.nets, fastnet.optim\n"
        "fastnet.get_backend('numpy')\n"
        "print('cupy' in sys.modules)\n"
    )
    assert out.strip() == "False"


def test_host_array_at_the_gpu_door_names_the_array_and_the_fix():
    """The check runs on the host, so it can be exercised wherever CuPy imports."""
    cupy = pytest.importorskip("cupy")
    from fastnet.backends.cupy_backend import CupyBackend

    backend = CupyBackend(cupy)  # building it touches no device
    with pytest.raises(InputError) as err:
        backend.check_array(numpy.zeros((2, 3), numpy.float32), "x")
    assert str(err.value) == (
        "x is a numpy.ndarray on the host, but this net runs on the GPU "
        "('cupy' backend); move it with backend.asarray(x)"
    )
    with pytest.raises(InputError, match=r"t is a builtins\.list, but this net runs on the GPU"):
        backend.check_array([1, 2], "t")

"""The CUDA kernels compile with NVRTC as CuPy compiles them on an H200 (sm_90) and an A100 (sm_80).

No GPU is needed: NVRTC is a library.  The options are the ones CuPy's ``RawModule`` adds on a
device of that compute capability (``cupy.cuda.compiler._compile_with_cache_cuda`` and
``_compile_using_nvrtc_no_warning``): ``-ftz=true``, the ``-arch`` CuPy picks (a cubin when
NVRTC knows the architecture), ``--device-as-default-execution-space``, and ``--pch`` where CuPy
would add it.  Every name expression the launcher asks for must resolve to a kernel.
"""

import io

import pytest

from fastnet.backends.cupy_kernels import SOURCE, CudaLauncher, name_expressions

compiler = pytest.importorskip("cupy.cuda.compiler", reason="CuPy is not installed (pip install cupy-cuda12x)")


def _nvrtc_version():
    try:
        return compiler._get_nvrtc_version()
    except Exception as exc:  # the nvidia-cuda-nvrtc wheel (or a CUDA toolkit) is missing
        pytest.skip(
            f"NVRTC is not loadable ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            f"pip install nvidia-cuda-nvrtc-cu12"
        )


def cupy_options(arch: str):
    """(options, output kind) exactly as CuPy builds them for a device of compute capability ``arch``."""
    major, minor = _nvrtc_version()
    options = tuple(CudaLauncher.options) + ("-ftz=true",)
    if not compiler._use_ptx and int(arch) <= int(compiler._get_max_compute_capability()):
        options += (f"-arch=sm_{arch}",)
        method = "cubin"
    else:
        options += (f"-arch=compute_{arch}",)
        method = "ptx"
    options += ("--device-as-default-execution-space",)
    if (major >= 13 or (major == 12 and minor >= 8)) and compiler._use_pch:
        options += ("--pch",)
    return options, method


@pytest.mark.parametrize("arch", ["90", "80"], ids=["H200-sm_90", "A100-sm_80"])
@pytest.mark.parametrize("width", [32, 64])
def test_every_kernel_compiles_and_resolves(arch, width):
    options, method = cupy_options(arch)
    assert method == "cubin", f"NVRTC {_nvrtc_version()} cannot build sm_{arch} code directly"
    names = name_expressions(width)
    program = compiler._NVRTCProgram(SOURCE, "fastnet_kernels.cu", name_expressions=names, method=method)
    log = io.StringIO()
    binary, mapping = program.compile(options, log)
    assert len(binary) > 1000
    assert set(mapping) == set(names)
    unresolved = [name for name, lowered in mapping.items() if not lowered or not lowered.startswith("_Z")]
    assert not unresolved, unresolved
    assert "warning" not in log.getvalue().lower(), log.getvalue()


def test_every_kernel_of_the_source_is_instantiated():
    """A kernel written in SOURCE but never named would never be compiled or tested."""
    import re

    defined = set(re.findall(r"__global__ void (\w+)\(", SOURCE))
    named = {name.split("<")[0] for name in name_expressions()}
    assert defined == named
    assert len(name_expressions(32)) == len(name_expressions(64)) == 32

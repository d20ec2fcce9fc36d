"""fastnet info: versions, backends (and why one is unavailable), BLAS, threads, GPU."""

import platform
import sys


def register(sub):
    p = sub.add_parser(
        "info",
        help="versions, backend availability, BLAS and GPU",
        description="What fastnet runs with here: Python and package versions, each backend "
        "and why one is unavailable, the BLAS library and the kernel it chose "
        "for this CPU, the thread policy, the GPU and the communicators for "
        "several processes. Paste it into a bug report.",
    )
    p.set_defaults(run=run)


def _version(module_name):
    try:
        module = __import__(module_name)
    except Exception as exc:  # report, do not crash: info exists to diagnose broken installs
        return f"not available ({type(exc).__name__}: {exc})".splitlines()[0]
    return getattr(module, "__version__", "unknown")


def run(args):
    from fastnet import __version__
    from fastnet.backends import BACKEND_NAMES, get_backend, unavailable_reason
    from fastnet.blas import describe_blas
    from fastnet.threads import choose_threads

    print(f"fastnet {__version__}, Python {platform.python_version()} on {platform.platform()}")
    for name in ("numpy", "numba", "cupy", "torch"):
        print(f"  {name:<6} {_version(name)}")
    print(f"BLAS: {describe_blas()}")
    print(choose_threads().describe())
    print("backends:")
    for name in BACKEND_NAMES:
        reason = unavailable_reason(name)
        print(f"  {name:<6} " + ("available" if reason is None else f"unavailable: {reason}"))
    if unavailable_reason("cupy") is None:
        print(f"GPU: {get_backend('cupy').describe()}")
    else:
        print("GPU: none usable (see the cupy line above)")
    from fastnet.distributed.report import communicator_lines

    print("\n".join(communicator_lines()))
    sys.stdout.flush()
    return 0

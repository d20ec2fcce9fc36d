"""fastnet info: versions, backends (and why one is unavailable), BLAS, GPU."""
import platform
import sys


def register(sub):
    p = sub.add_parser("info", help="versions, backend availability, BLAS and GPU")
    p.set_defaults(run=run)


def _version(module_name):
    try:
        module = __import__(module_name)
    except Exception as exc:  # report, do not crash: info exists to diagnose broken installs
        return f"not available ({type(exc).__name__}: {exc})".splitlines()[0]
    return getattr(module, "__version__", "unknown")


def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        import numpy  # noqa: F401  (loads its BLAS so threadpoolctl can see it)

        libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
                f"{i.get('architecture')})" for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            return "; ".join(libs)
    import numpy

    config = numpy.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def run(args):
    from fastnet import __version__
    from fastnet.backends import BACKEND_NAMES, get_backend, unavailable_reason

    print(f"fastnet {__version__}, Python {platform.python_version()} on {platform.platform()}")
    for name in ("numpy", "numba", "cupy", "torch"):
        print(f"  {name:<6} {_version(name)}")
    print(f"BLAS: {blas_description()}")
    print("backends:")
    for name in BACKEND_NAMES:
        reason = unavailable_reason(name)
        print(f"  {name:<6} " + ("available" if reason is None else f"unavailable: {reason}"))
    if unavailable_reason("cupy") is None:
        print(f"GPU: {get_backend('cupy').describe()}")
    else:
        print("GPU: none usable (see the cupy line above)")
    sys.stdout.flush()
    return 0

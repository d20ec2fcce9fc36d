"""Which BLAS numpy computes with: what `fastnet info` shows and the benchmarks record."""


def blas_info() -> list:
    """threadpoolctl's view of the loaded BLAS libraries (incl. the OpenBLAS kernel)."""
    import numpy  # noqa: F401  (loads its BLAS, so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    return [
        {
            k: lib.get(k)
            for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
        }
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]


def describe_blas(libs=None) -> str:
    """One line, e.g. 'openblas 0.3.31 (SkylakeX, 2 threads)'."""
    parts = []
    for lib in blas_info() if libs is None else libs:
        details = ", ".join(
            str(v) for v in (lib.get("architecture"), lib.get("num_threads") and _threads(lib["num_threads"])) if v
        )
        parts.append(
            f"{lib.get('internal_api')} {lib.get('version') or ''}".strip() + (f" ({details})" if details else "")
        )
    return "; ".join(parts) or "unknown"


def _threads(count) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")

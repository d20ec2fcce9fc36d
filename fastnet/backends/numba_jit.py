"""How the numba kernels are compiled: one setting for every numba module of the backend.

Compiled code is cached on disk unless ``FASTNET_NUMBA_CACHE=0``.  ``nogil``: the convolutions run
shares of a batch on several Python threads at once.

A cache file that cannot be read (truncated by a full disk, garbage, written by another numba)
costs a fresh compilation, never a traceback: the cache only saves time.
"""

import os

import numba

CACHE = os.environ.get("FASTNET_NUMBA_CACHE", "1").strip() != "0"


def jit(fn=None, **options):
    """``@jit`` or ``@jit(boundscheck=True)``: numba's njit with the backend's settings."""
    if fn is None:
        return lambda f: jit(f, **options)
    dispatcher = numba.njit(cache=CACHE, nogil=True, **options)(fn)
    cache = getattr(dispatcher, "_cache", None)
    if CACHE and cache is not None and hasattr(cache, "load_overload") and hasattr(cache, "save_overload"):
        cache.__class__ = _forgiving(type(cache))
    return dispatcher


def _forgiving(cache_class):
    """``cache_class`` whose unreadable entries are compiled afresh and whose failed saves are
    dropped; numba itself would raise the unpickling error from the first call."""

    class ForgivingCache(cache_class):
        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception:  # noqa: BLE001 - any unreadable cache means: compile again
                self._drop_index()
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception:  # noqa: BLE001 - not cached this time; the kernel itself is fine
                self._drop_index()

        def _drop_index(self):
            # The index names every cached entry: without it the next save starts a clean one.
            index = getattr(getattr(self, "_cache_file", None), "_index_path", None)
            if index:
                try:
                    os.unlink(index)
                except OSError:
                    pass

    ForgivingCache.__name__ = f"Forgiving{cache_class.__name__}"
    return ForgivingCache

"""How the numba kernels are compiled: one setting for every numba module of the backend.

Compiled code is cached on disk unless ``FASTNET_NUMBA_CACHE=0``.  ``nogil``: the convolutions run
shares of a batch on several Python threads at once.
"""
import os

import numba

CACHE = os.environ.get("FASTNET_NUMBA_CACHE", "1").strip() != "0"


def jit(fn):
    return numba.njit(cache=CACHE, nogil=True)(fn)

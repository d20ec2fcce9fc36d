"""The one fallback mechanism: a kernel set declares what its fast path takes, and this module
decides, per call, whether the fast kernel or the NumPy reference (run on the same ``xp``) serves it.

A fast kernel is a method decorated with :func:`fast_path`.  The declaration names the arguments
that must share one of the kernel set's ``fast_dtypes`` (``"fd"``: float32, float64), and
optionally their ``ndim``, which arguments must have the same shape, which must be Python numbers,
and which argument holds class targets.  Anything outside the declaration is served by the method
of the same name in :class:`~fastnet.backends.numpy_kernels.NumpyKernels`.

A backward never guesses its forward's path: a forward declared with ``makes_cache`` wraps what it
hands its backward in a :class:`Cache` that records the path, and a backward declared with
``cache="name"`` takes the path that cache records, whatever the dtype of ``dout``.
"""

from __future__ import annotations

import functools
import inspect

_MISSING = object()


class Cache:
    """What a forward hands its backward: opaque to layers, tagged with the path that made it."""

    __slots__ = ("fast", "value")

    def __init__(self, fast: bool, value):
        self.fast = fast
        self.value = value

    def __repr__(self) -> str:
        return f"Cache({'fast' if self.fast else 'reference'})"


def _same_float(chars, arrays) -> bool:
    # By type character: comparing dtype objects costs a microsecond per call on the hot path.
    kind = arrays[0].dtype.char
    if kind not in chars:
        return False
    for a in arrays[1:]:
        if a.dtype.char != kind:
            return False
    return True


def _targets_fit(t, like) -> bool:
    """Class targets: 1-D integer labels, or 2-D rows of the scores' dtype."""
    if t.ndim == 1:
        return t.dtype.kind in "iu"
    return t.ndim == 2 and t.dtype.char == like.dtype.char


def fast_path(floats=(), *, ndim=None, same_shape=(), numbers=(), targets=None, makes_cache=False, cache=None):
    """Declare what the decorated fast kernel supports; the reference serves every other call.

    floats       argument names that must share one dtype in the kernel set's ``fast_dtypes``
    ndim         {argument name: required ndim}
    same_shape   argument names whose shapes must be equal
    numbers      argument names that must be Python numbers (not arrays)
    targets      (targets name, scores name): labels (N,) of an integer dtype or rows like the scores
    makes_cache  the kernel returns ``(out, value)``; ``value`` is handed on as a :class:`Cache`
    cache        the name of the argument holding a :class:`Cache`; it alone chooses the path
    """
    ndim = dict(ndim or {})

    def decorate(fast):
        from fastnet.backends.numpy_kernels import NumpyKernels

        name = fast.__name__
        reference = getattr(NumpyKernels, name)
        params = list(inspect.signature(fast).parameters.values())[1:]  # without self
        position = {p.name: i for i, p in enumerate(params)}
        default = {p.name: p.default for p in params}
        for needed in (*floats, *ndim, *same_shape, *numbers, *(targets or ()), *((cache,) if cache else ())):
            if needed not in position:
                raise TypeError(f"fast_path on {name}: no argument named {needed!r}")

        def arg(args, kwargs, key):
            i = position[key]
            if i < len(args):
                return args[i]
            value = kwargs.get(key, default[key])
            return None if value is inspect.Parameter.empty else value

        def supported(self, args, kwargs) -> bool:
            if floats and not _same_float(self.fast_dtypes, [arg(args, kwargs, k) for k in floats]):
                return False
            for key, n in ndim.items():
                if arg(args, kwargs, key).ndim != n:
                    return False
            if same_shape:
                first = arg(args, kwargs, same_shape[0]).shape
                if any(arg(args, kwargs, k).shape != first for k in same_shape[1:]):
                    return False
            for key in numbers:
                if not isinstance(arg(args, kwargs, key), (int, float)):
                    return False
            if targets and not _targets_fit(arg(args, kwargs, targets[0]), arg(args, kwargs, targets[1])):
                return False
            return True

        def unwrap(args, kwargs):
            """Replace the Cache argument by its value; return the path it records."""
            i = position[cache]
            if i < len(args):
                held = args[i]
                args = args[:i] + (getattr(held, "value", held),) + args[i + 1 :]
            else:
                held = kwargs[cache]
                kwargs = {**kwargs, cache: getattr(held, "value", held)}
            # A bare value comes from a kernel set without a fast path: the reference made it.
            return isinstance(held, Cache) and held.fast, args, kwargs

        @functools.wraps(fast)
        def dispatch(self, *args, **kwargs):
            if cache is not None:
                use_fast, args, kwargs = unwrap(args, kwargs)
            else:
                use_fast = supported(self, args, kwargs)
            result = (fast if use_fast else reference)(self, *args, **kwargs)
            if makes_cache:
                out, value = result
                return out, Cache(use_fast, value)
            return result

        dispatch.fast_path = fast
        return dispatch

    return decorate

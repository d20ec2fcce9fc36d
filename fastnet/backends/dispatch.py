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


def fast_path(
    floats=(), *, ndim=None, same_shape=(), contiguous=(), numbers=(), targets=None, makes_cache=False, cache=None
):
    """Declare what the decorated fast kernel supports; the reference serves every other call.

    floats       argument names that must share one dtype in the kernel set's ``fast_dtypes``
    ndim         {argument name: required ndim}
    same_shape   argument names whose shapes must be equal
    contiguous   argument names that must be C-contiguous arrays (a kernel writing into them in place)
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
        checked = (*floats, *ndim, *same_shape, *contiguous, *numbers, *(targets or ()))
        for needed in (*checked, *((cache,) if cache else ())):
            if needed not in position:
                raise TypeError(f"fast_path on {name}: no argument named {needed!r}")

        # Decided on every call, so decided cheaply: the arguments by position, looked up once.
        last = max((position[k] for k in checked), default=-1)
        float_at = [position[k] for k in floats]
        ndim_at = [(position[k], n) for k, n in ndim.items()]
        shape_at = [position[k] for k in same_shape]
        contiguous_at = [position[k] for k in contiguous]
        number_at = [position[k] for k in numbers]
        targets_at = None if not targets else (position[targets[0]], position[targets[1]])

        def complete(args, kwargs):
            """The arguments up to the last one a check reads, by position (defaults filled in)."""
            full = list(args)
            for p in params[len(args) : last + 1]:
                value = kwargs.get(p.name, p.default)
                full.append(None if value is inspect.Parameter.empty else value)
            return full

        def supported(self, args, kwargs) -> bool:
            a = args if len(args) > last else complete(args, kwargs)
            if float_at and not _same_float(self.fast_dtypes, [a[i] for i in float_at]):
                return False
            for i, n in ndim_at:
                if a[i].ndim != n:
                    return False
            if shape_at:
                first = a[shape_at[0]].shape
                for i in shape_at[1:]:
                    if a[i].shape != first:
                        return False
            for i in contiguous_at:
                if not a[i].flags.c_contiguous:
                    return False
            for i in number_at:
                if not isinstance(a[i], (int, float)):
                    return False
            if targets_at and not _targets_fit(a[targets_at[0]], a[targets_at[1]]):
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

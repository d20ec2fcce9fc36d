"""A lazy registry of backends.

Names resolve on first use, so importing fastnet never imports numba or cupy.  A backend that
cannot load records *why* (CuPy missing, no CUDA device, driver error, ...); ``auto`` picks
cupy, then numba, then numpy, and says which it picked and why the others were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastnet.backends.base import Backend
from fastnet.errors import BackendUnavailable, InputError
from fastnet.registry import LazyRegistry

# Best first: the order ``auto`` tries them in.
BACKEND_NAMES = ("cupy", "numba", "numpy")
_registry = LazyRegistry("backend", {name: f"fastnet.backends.{name}_backend" for name in BACKEND_NAMES})
_MODULES, _loaded, _failures = _registry.modules, _registry.loaded, _registry.failures
_default: Backend | None = None


def _load(name: str) -> Backend:
    return _registry.load(name)


def unavailable_reason(name: str) -> str | None:
    """None when the backend loads, else the recorded reason it cannot."""
    return _registry.reason(name)


def availability() -> dict[str, str | None]:
    """Every backend name -> None (usable) or the reason it is not."""
    return {name: unavailable_reason(name) for name in BACKEND_NAMES}


@dataclass
class BackendChoice:
    """The outcome of choosing a backend: what was asked, what was used and why."""

    requested: str
    backend: Backend
    skipped: dict[str, str] = field(default_factory=dict)
    fell_back: bool = False

    def message(self) -> str:
        if self.fell_back:
            reason = self.skipped[self.requested]
            return (
                f"warning: backend '{self.requested}' cannot be used ({reason}); falling back to '{self.backend.name}'"
            )
        text = f"backend: {self.backend.name}"
        if self.requested == "auto" and self.skipped:
            why = "; ".join(f"{n}: {r}" for n, r in self.skipped.items())
            text += f" (auto; skipped {why})"
        elif self.requested == "auto":
            text += " (auto)"
        return text


def _check_name(name: str) -> None:
    if name != "auto" and name not in _MODULES:
        choices = ", ".join(("auto",) + BACKEND_NAMES)
        raise InputError(f"unknown backend '{name}'; choose one of: {choices}")


def select_backend(name: str = "auto", strict: bool = False) -> BackendChoice:
    """Resolve a name to a usable backend, falling back to the best CPU one unless ``strict``."""
    _check_name(name)
    if name != "auto":
        try:
            return BackendChoice(name, _load(name))
        except BackendUnavailable:
            if strict:
                raise
    skipped = {name: _failures[name]} if name != "auto" else {}
    candidates = BACKEND_NAMES if name == "auto" else BACKEND_NAMES[BACKEND_NAMES.index(name) + 1 :]
    for candidate in candidates:
        reason = unavailable_reason(candidate)
        if reason is None:
            return BackendChoice(name, _loaded[candidate], skipped, fell_back=name != "auto")
        skipped[candidate] = reason
    raise BackendUnavailable("no backend can be used: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))


def get_backend(name: str | Backend | None = None) -> Backend:
    """A backend by name ("auto", "numpy", "numba", "cupy"), or the default when None.

    Unlike :func:`select_backend`, an explicit name that cannot load raises
    :class:`BackendUnavailable` with the reason instead of falling back.
    """
    if name is None:
        return get_default_backend()
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise InputError(f"backend must be a name or a Backend object, not {type(name).__name__}")
    _check_name(name)
    if name == "auto":
        return select_backend("auto").backend
    return _load(name)


def get_default_backend() -> Backend:
    """The backend layers and nets use when given none: numpy until ``set_default_backend``."""
    global _default
    if _default is None:
        _default = _load("numpy")
    return _default


def set_default_backend(name: str | Backend) -> Backend:
    """Make ``name`` the backend layers and nets use when given none."""
    global _default
    _default = get_backend(name)
    return _default


__all__ = [
    "Backend",
    "BACKEND_NAMES",
    "BackendChoice",
    "availability",
    "get_backend",
    "get_default_backend",
    "select_backend",
    "set_default_backend",
    "unavailable_reason",
]

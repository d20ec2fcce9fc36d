"""One lazy registry, for backends and communicators alike (tinygrad's device lookup).

A name resolves to a module by convention (``fastnet.backends.numba_backend``,
``fastnet.distributed.mpi``) whose ``load()`` returns the object; nothing is imported until a
name is asked for.  A name that cannot load records *why* (the module missing, no device, a
driver error), once, and every later request gives the same reason.
"""

from __future__ import annotations

import importlib

from fastnet.errors import BackendUnavailable, FastnetError


class LazyRegistry:
    def __init__(self, what: str, modules: dict):
        self.what = what  # "backend", "communicator": for the messages
        self.modules = dict(modules)
        self.loaded: dict = {}
        self.failures: dict[str, str] = {}
        self.causes: dict[str, BaseException] = {}

    def load(self, name: str):
        """The object ``name`` stands for, loaded once; BackendUnavailable with the reason."""
        if name in self.loaded:
            return self.loaded[name]
        if name not in self.failures:
            try:
                self.loaded[name] = importlib.import_module(self.modules[name]).load()
                return self.loaded[name]
            except Exception as exc:  # any failure to start is a reason to record, not a crash
                reason = str(exc) or type(exc).__name__
                if not isinstance(exc, FastnetError):
                    reason = f"{type(exc).__name__}: {reason}"
                self.failures[name] = reason
                self.causes[name] = exc
        raise BackendUnavailable(f"{self.what} '{name}' is unavailable: {self.failures[name]}") from self.causes.get(
            name
        )

    def reason(self, name: str) -> str | None:
        """None when ``name`` loads, else the recorded reason it cannot."""
        try:
            self.load(name)
        except BackendUnavailable:
            return self.failures[name]
        return None

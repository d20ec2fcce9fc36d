"""A net's state beyond its parameters, and the modes it runs in (context managers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy

from fastnet.annotations import Array, DTypeLike
from fastnet.errors import InputError
from fastnet.layers import Layer

if TYPE_CHECKING:
    from fastnet.backends.base import Backend

_S = TypeVar("_S", bound="NetStateAndModes")


class NetStateAndModes:
    """Mixed into ``Sequential``: needs ``layers``, ``lastLayer``, ``dtype``, ``validate_inputs``
    and ``last_loss``.  Callers use these instead of flipping flags and restoring them."""

    # What the class it is mixed into provides (declared for the type checker only).
    layers: dict[str, Any]
    lastLayer: Any
    backend: Backend
    dtype: numpy.dtype
    validate_inputs: bool
    last_loss: Array

    if TYPE_CHECKING:

        def state_arrays(self) -> dict[str, Array]: ...

        def set_state_arrays(self, arrays: Mapping[str, Array]) -> None: ...

    def _all_layers(self) -> list[Any]:
        return list(self.layers.values()) + [self.lastLayer]

    # --- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything that makes the net's numbers, by name, as host copies: the parameters
        (``W1``, ``b1``, ...), the buffers (``BatchNorm1.running_mean``, ...) and each random
        stream's state (``Dropout1.rng``, JSON-able).  ``load_state_dict`` puts it back."""
        state = {key: self.backend.to_numpy(value).copy() for key, value in self.state_arrays().items()}
        for name, layer_state in self.layer_state().items():
            for key, value in layer_state.items():
                if not isinstance(value, numpy.ndarray):  # the arrays are in already
                    state[f"{name}.{key}"] = value
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Put back what ``state_dict`` returned: all of it (``strict``), or the entries given.

        Every name and shape is checked first; a refused state changes nothing.

        Raises
        ------
        InputError
            For an unknown name, an array of another shape, or (``strict``) a missing entry.
        """
        arrays, expected = {}, self.state_arrays()
        others: dict[str, dict[str, Any]] = {}
        for key, value in state.items():
            if key in expected:
                if tuple(getattr(value, "shape", ())) != tuple(expected[key].shape):
                    raise InputError(
                        f"state {key} has shape {tuple(expected[key].shape)}; got {tuple(getattr(value, 'shape', ()))}"
                    )
                arrays[key] = value
                continue
            layer, _, part = key.rpartition(".")
            if layer not in self.layers:
                raise InputError(f"the net has no parameter or state named {key}")
            others.setdefault(layer, {})[part] = value
        missing = sorted(set(expected) - set(arrays)) if strict else []
        missing += sorted(
            f"{n}.{k}"
            for n, s in self.layer_state().items()
            for k, v in s.items()
            if strict and not isinstance(v, numpy.ndarray) and k not in others.get(n, {})
        )
        if missing:
            raise InputError(f"the state lacks {', '.join(missing)} (strict=False loads a part)")
        before = self.layer_state()
        try:
            self.load_layer_state(others)
        except InputError:
            self.load_layer_state(before)
            raise
        self.set_state_arrays(arrays)

    def layer_state(self) -> dict[str, dict[str, Any]]:
        """Each layer's state beyond its parameters, by layer name: buffers (host copies) and
        random state.  What a measuring probe or a gradient check puts back afterwards."""
        states = {}
        for name, layer in self.layers.items():
            state = layer.state_dict() if hasattr(layer, "state_dict") else {}
            if state:
                states[name] = state
        return states

    def load_layer_state(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Put back what ``layer_state`` returned (all of it, or some layers' part)."""
        unknown = [name for name in states if name not in self.layers]
        if unknown:
            raise InputError(f"the net has no layer named {', '.join(unknown)}")
        for name, state in states.items():
            self.layers[name].load_state_dict(state)

    # --- seams for running on several processes ------------------------------------------------
    def random_streams(self) -> dict[str, Any]:
        """The layers that draw random numbers (dropout), by name, in forward order."""
        return {name: layer for name, layer in self.layers.items() if getattr(layer, "draws_random", False)}

    def random_stream_states(self) -> dict[str, dict[str, Any]]:
        """Their part of ``layer_state()``: the random state of each, by layer name."""
        return {name: layer.state_dict() for name, layer in self.random_streams().items()}

    def reseed_random_streams(self, seed_for: Callable[[int, int | None], int | None]) -> None:
        """Each stream restarts from ``seed_for(index, its seed)`` (None: left as it is)."""
        for index, layer in enumerate(self.random_streams().values()):
            seed = seed_for(index, layer.seed)
            if seed is not None:
                layer.reseed(seed)

    def share_batch_statistics(self, make_hook: Callable[[], Any]) -> list[Any]:
        """Every layer computing batch statistics (BatchNorm) gets the hook ``make_hook()``
        (global-batch statistics over ranks); returns those layers in forward order."""
        layers = [layer for layer in self.layers.values() if getattr(layer, "batch_statistics", False)]
        for layer in layers:
            layer.statistics = make_hook()
        return layers

    def clear_caches(self) -> None:
        """Forget what the last forward kept for backward."""
        for layer in self._all_layers():
            if hasattr(layer, "_clear_cache"):
                layer._clear_cache()

    # --- modes ---------------------------------------------------------------------------------------
    @contextmanager
    def trusted_inputs(self: _S) -> Iterator[_S]:
        """Skip the checks that read values (NaN/inf, labels): for data checked with ``check_inputs``."""
        before, self.validate_inputs = self.validate_inputs, False
        try:
            yield self
        finally:
            self.validate_inputs = before

    @contextmanager
    def probe(self: _S) -> Iterator[_S]:
        """Forward passes for measuring only: on exit the state (BatchNorm statistics, dropout
        random state), ``last_loss`` and the layers' caches are as if nothing had run."""
        state, last_loss = self.layer_state(), self.last_loss
        try:
            with self.trusted_inputs():
                yield self
        finally:
            self.load_layer_state(state)
            self.last_loss = last_loss
            self.clear_caches()

    @contextmanager
    def computing_in(self: _S, dtype: DTypeLike) -> Iterator[_S]:
        """Every layer on copies of its parameters and state in ``dtype`` (the numerical
        gradient's float64); on exit the original arrays are back, untouched."""
        layers = [layer for layer in self._all_layers() if isinstance(layer, Layer)]
        originals = [
            (layer, name, getattr(layer, name)) for layer in layers for name in layer.param_names + layer.state_names
        ]
        before = self.dtype
        try:
            for layer in layers:
                layer.astype(dtype)
            self.dtype = numpy.dtype(dtype)
            yield self
        finally:
            for layer, name, value in originals:
                setattr(layer, name, value)
            self.dtype = before
            self.clear_caches()

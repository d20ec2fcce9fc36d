"""A net as plain data: its layers in order, each with its kind, settings and the names of its
arrays.  Saved beside the arrays (parameter files, safetensors), it is enough to rebuild the net
without the code or the run that made it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy

from fastnet.annotations import BackendLike, DTypeLike
from fastnet.errors import InputError

if TYPE_CHECKING:
    from fastnet.layers import Layer
    from fastnet.nets import Sequential

# kind -> the settings that define it (read from and passed back to the layer)
SETTINGS = {
    "Affine": (),
    "Convolution": ("stride", "pad"),
    "Pooling": ("pool_h", "pool_w", "stride", "pad"),
    "Relu": (),
    "Sigmoid": (),
    "Dropout": ("dropout_ratio",),
    "BatchNormalization": ("momentum",),
}


class UnsupportedLayer(InputError):
    """A layer of a kind no bridge knows (a user's own layer)."""


def unsupported(names_kinds: Iterable[tuple[str, str]], what: str) -> UnsupportedLayer:
    """The error naming the layers (name, kind) that ``what`` cannot take."""
    listed = ", ".join(f"{name} ({kind})" for name, kind in names_kinds)
    return UnsupportedLayer(f"{what} cannot take layer {listed}; only {', '.join(SETTINGS)} are supported")


def describe_layers(net: Sequential) -> list[dict[str, Any]]:
    """``[{"name", "kind", "settings", "params": {attr: key}, "state": {attr: key}}, ...]``.

    Parameters
    ----------
    net : Sequential
        Read through its layers' declarations only.

    Returns
    -------
    list of dict
        One JSON-able entry per layer, in order; :func:`build_from_spec` reads it back.

    Raises
    ------
    UnsupportedLayer
        Naming every layer of an unknown kind.

    Examples
    --------
    >>> from fastnet.nets import TwoLayerNet
    >>> [(entry["name"], entry["params"]) for entry in describe_layers(TwoLayerNet(4, 5, 3, backend="numpy"))]
    [('Affine1', {'W': 'W1', 'b': 'b1'}), ('Relu1', {}), ('Affine2', {'W': 'W2', 'b': 'b2'})]
    """
    keys = {id(value): key for key, value in net.params.items()}
    foreign = [
        (name, type(layer).__name__) for name, layer in net.layers.items() if type(layer).__name__ not in SETTINGS
    ]
    if foreign:
        raise unsupported(foreign, "a layer description")
    layers = []
    for name, layer in net.layers.items():
        kind = type(layer).__name__
        layers.append(
            {
                "name": name,
                "kind": kind,
                "settings": {s: _plain(getattr(layer, s)) for s in SETTINGS[kind]},
                "params": {attr: keys[id(getattr(layer, attr))] for attr in layer.param_names},
                "state": {attr: f"{name}.{attr}" for attr in layer.state_names},
            }
        )
    return layers


def _plain(value):
    return value.item() if isinstance(value, numpy.generic) else value


def build_from_spec(
    layers: list[dict[str, Any]],
    shapes: Mapping[str, Sequence[int]],
    backend: BackendLike = None,
    dtype: DTypeLike = "float32",
) -> Sequential:
    """A Sequential with the described layers, its arrays zero-filled in ``shapes`` (name ->
    shape); fill it with ``net.set_state_arrays`` or ``load_params``.

    Parameters
    ----------
    layers : list of dict
        What :func:`describe_layers` returned.
    shapes : mapping of str to shape
        Every array's shape by its name in the net (``W1``, ``BatchNorm1.running_mean``, ...).
    backend : Backend, str or None
        Where the net computes; None for the default backend.
    dtype : dtype or str
        The net's floating dtype.

    Returns
    -------
    Sequential

    Raises
    ------
    InputError
        When the description is damaged or names an array ``shapes`` lacks.

    Examples
    --------
    >>> from fastnet.nets import TwoLayerNet
    >>> net = TwoLayerNet(4, 5, 3, backend="numpy")
    >>> shapes = {key: value.shape for key, value in net.state_arrays().items()}
    >>> copy = build_from_spec(describe_layers(net), shapes, backend="numpy")
    >>> list(copy.layers), copy.params["W2"].shape
    (['Affine1', 'Relu1', 'Affine2'], (5, 3))
    """
    from fastnet import layers as L
    from fastnet.nets import Sequential

    net = Sequential(backend=backend, dtype=dtype)
    if not isinstance(layers, list) or not layers:
        raise InputError("the layer description is empty or not a list")
    for entry in layers:
        try:
            name, kind = entry["name"], entry["kind"]
            settings, params = dict(entry.get("settings", {})), dict(entry.get("params", {}))
        except (TypeError, KeyError):
            raise InputError(f"damaged layer description: {str(entry)[:80]}") from None
        if kind not in SETTINGS or set(settings) != set(SETTINGS[kind]):
            raise InputError(f"layer {name}: unknown kind {kind!r} or settings {sorted(settings)}")

        def zeros(attr, params=params, name=name):
            key = params.get(attr)
            if key not in shapes:
                raise InputError(f"layer {name} needs array {key!r}, which is not there")
            return numpy.zeros(shapes[key], dtype)

        suffix = _suffix(name, params)
        layer: Layer
        if kind == "Affine":
            layer = L.Affine(zeros("W"), zeros("b"), backend=net.backend)
        elif kind == "Convolution":
            layer = L.Convolution(zeros("W"), zeros("b"), settings["stride"], settings["pad"], backend=net.backend)
        elif kind == "BatchNormalization":
            layer = L.BatchNormalization(
                zeros("gamma"), zeros("beta"), momentum=settings["momentum"], backend=net.backend
            )
        elif kind == "Pooling":
            layer = L.Pooling(
                settings["pool_h"], settings["pool_w"], settings["stride"], settings["pad"], backend=net.backend
            )
        elif kind == "Dropout":
            layer = L.Dropout(settings["dropout_ratio"], backend=net.backend)
        else:
            layer = getattr(L, kind)(backend=net.backend)
        net.add(name, layer, suffix=suffix)
    return net


def _suffix(name, params: dict):
    """The one suffix that turns each attribute into its key (W -> W1, b -> b1)."""
    suffixes = {key[len(attr) :] for attr, key in params.items() if str(key).startswith(attr)}
    if len(suffixes) > 1 or (params and not suffixes):
        raise InputError(f"layer {name}: parameter names {sorted(params.values())} do not share a suffix")
    return suffixes.pop() if suffixes else None


def spec_shapes(net: Sequential) -> dict[str, list[int]]:
    """Every array's shape by name, as lists (JSON-able), to save beside the description."""
    return {key: list(value.shape) for key, value in net.state_arrays().items()}

"""A net as plain data: its layers in order, each with its kind, settings and the names of its
arrays.  Saved beside the arrays (parameter files, safetensors), it is enough to rebuild the net
without the code or the run that made it."""

from __future__ import annotations

import numpy

from fastnet.errors import InputError

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


def unsupported(names_kinds, what):
    listed = ", ".join(f"{name} ({kind})" for name, kind in names_kinds)
    return UnsupportedLayer(f"{what} cannot take layer {listed}; only {', '.join(SETTINGS)} are supported")


def describe_layers(net) -> list[dict]:
    """``[{"name", "kind", "settings", "params": {attr: key}, "state": {attr: key}}, ...]``.

    Raises UnsupportedLayer naming every layer of an unknown kind.
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


def build_from_spec(layers, shapes: dict, backend=None, dtype="float32"):
    """A Sequential with the described layers, its arrays zero-filled in ``shapes`` (name ->
    shape); fill it with ``net.set_state_arrays`` or ``load_params``."""
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


def spec_shapes(net) -> dict:
    return {key: list(value.shape) for key, value in net.state_arrays().items()}

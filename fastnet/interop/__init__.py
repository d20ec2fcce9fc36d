"""Nets in and out: a plain description of a net's layers, and the bridges to ONNX, safetensors
and PyTorch.  Each bridge reads a net only through its layers' public declarations (``param_names``,
``state_names``, the layer's own settings) and imports its library when first used."""

from fastnet.interop.spec import UnsupportedLayer, build_from_spec, describe_layers


def to_torch(net):
    """The equivalent ``torch.nn.Sequential`` (weights copied); see ``fastnet.interop.torch``."""
    from fastnet.interop.torch import to_torch as convert

    return convert(net)


def from_torch(module, backend=None, dtype="float32"):
    """A fastnet Sequential from a ``torch.nn.Sequential`` of the layers ``to_torch`` makes."""
    from fastnet.interop.torch import from_torch as convert

    return convert(module, backend=backend, dtype=dtype)


__all__ = ["UnsupportedLayer", "build_from_spec", "describe_layers", "from_torch", "to_torch"]

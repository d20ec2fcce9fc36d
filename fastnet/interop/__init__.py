"""Nets in and out: a plain description of a net's layers, and the bridges to ONNX, safetensors
and PyTorch.  Each bridge reads a net only through its layers' public declarations (``param_names``,
``state_names``, the layer's own settings) and imports its library when first used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastnet.annotations import BackendLike, DTypeLike
from fastnet.interop.spec import UnsupportedLayer, build_from_spec, describe_layers

if TYPE_CHECKING:
    import torch

    from fastnet.nets import Sequential


def to_torch(net: Sequential) -> torch.nn.Sequential:
    """The equivalent ``torch.nn.Sequential`` (weights copied); see ``fastnet.interop.torch``.

    Parameters
    ----------
    net : Sequential
        A net of Affine, Convolution, Pooling, Relu, Sigmoid, BatchNormalization and Dropout
        layers, on any backend.

    Returns
    -------
    torch.nn.Sequential
        In the net's dtype, in eval mode.

    Raises
    ------
    InputError
        When PyTorch is not installed.
    UnsupportedLayer
        For a layer of another kind.
    """
    from fastnet.interop.torch import to_torch as convert

    return convert(net)


def from_torch(module: torch.nn.Sequential, backend: BackendLike = None, dtype: DTypeLike = "float32") -> Sequential:
    """A fastnet Sequential from a ``torch.nn.Sequential`` of the layers ``to_torch`` makes.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of Linear, Conv2d, MaxPool2d, ReLU, Sigmoid, BatchNorm1d/2d, Flatten and dropout modules.
    backend : Backend, str or None
        Where the net computes; None for the default backend.
    dtype : dtype or str
        The net's floating dtype.

    Returns
    -------
    Sequential
        Parameters named W1, b1, ... in order, with the module's weights.

    Raises
    ------
    InputError
        When PyTorch is not installed.
    UnsupportedLayer
        For a module of another kind.
    """
    from fastnet.interop.torch import from_torch as convert

    return convert(module, backend=backend, dtype=dtype)


__all__ = ["UnsupportedLayer", "build_from_spec", "describe_layers", "from_torch", "to_torch"]

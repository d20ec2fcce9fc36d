"""Nets assembled from layers like Lego."""

from fastnet.nets.convnets import DeepConvNet, SimpleConvNet
from fastnet.nets.mlp import MultiLayerNet, TwoLayerNet
from fastnet.nets.sequential import Sequential

__all__ = ["DeepConvNet", "MultiLayerNet", "Sequential", "SimpleConvNet", "TwoLayerNet"]

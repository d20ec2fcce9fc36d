"""The classic layers, each a brick with ``forward`` and ``backward``."""

from fastnet.layers.activations import Relu, Sigmoid
from fastnet.layers.affine import Affine
from fastnet.layers.base import Layer
from fastnet.layers.batchnorm import BatchNormalization
from fastnet.layers.conv import Convolution
from fastnet.layers.dropout import Dropout
from fastnet.layers.pooling import Pooling
from fastnet.layers.softmax import SoftmaxWithLoss

__all__ = [
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Layer",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
]

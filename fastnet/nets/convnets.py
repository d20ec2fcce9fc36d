"""Convolutional nets: SimpleConvNet and the classic DeepConvNet."""
import math

import numpy

from fastnet.layers import Affine, Convolution, Dropout, Pooling, Relu
from fastnet.nets.init import normal, zeros
from fastnet.nets.sequential import Sequential

DEFAULT_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet(Sequential):
    """conv - relu - pool(2x2, stride 2) - affine - relu - affine; params W1 b1 (conv), W2 b2, W3 b3."""

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10,
                 weight_init_std=0.01, backend=None, dtype="float32", seed=None):
        super().__init__(backend=backend, dtype=dtype)
        conv = {**DEFAULT_CONV, **(conv_param or {})}
        fn, fs, pad, stride = conv["filter_num"], conv["filter_size"], conv["pad"], conv["stride"]
        channels, size = input_dim[0], input_dim[1]
        conv_out = (size - fs + 2 * pad) // stride + 1
        pool_out = fn * (conv_out // 2) * (conv_out // 2)
        rng = numpy.random.default_rng(seed)
        be, dt, std = self.backend, self.dtype, weight_init_std
        self.add("Conv1", Convolution(normal(rng, (fn, channels, fs, fs), std, dt), zeros(fn, dt),
                                      stride, pad, backend=be), suffix="1")
        self.add("Relu1", Relu(backend=be))
        self.add("Pool1", Pooling(2, 2, stride=2, backend=be))
        self.add("Affine1", Affine(normal(rng, (pool_out, hidden_size), std, dt), zeros(hidden_size, dt),
                                   backend=be), suffix="2")
        self.add("Relu2", Relu(backend=be))
        self.add("Affine2", Affine(normal(rng, (hidden_size, output_size), std, dt), zeros(output_size, dt),
                                   backend=be), suffix="3")


class DeepConvNet(Sequential):
    """conv-relu-conv-relu-pool, three times (16, 16, 32, 32, 64, 64 filters of 3x3), then
    affine 50 - relu - dropout - affine - dropout; He initialisation.  Params W1..W8, b1..b8.
    """

    CONVS = ((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))  # (filters, pad) as in the book

    def __init__(self, input_dim=(1, 28, 28), output_size=10, hidden_size=50, dropout_ratio=0.5,
                 backend=None, dtype="float32", seed=None):
        super().__init__(backend=backend, dtype=dtype)
        rng = numpy.random.default_rng(seed)
        be, dt = self.backend, self.dtype
        channels, size = input_dim[0], input_dim[1]
        for i, (filters, pad) in enumerate(self.CONVS, start=1):
            scale = math.sqrt(2.0 / (channels * 9))
            self.add(f"Conv{i}", Convolution(normal(rng, (filters, channels, 3, 3), scale, dt),
                                             zeros(filters, dt), 1, pad, backend=be), suffix=i)
            self.add(f"Relu{i}", Relu(backend=be))
            channels, size = filters, size + 2 * pad - 2
            if i % 2 == 0:
                self.add(f"Pool{i // 2}", Pooling(2, 2, stride=2, backend=be))
                size //= 2
        flat = channels * size * size
        self.add("Affine1", Affine(normal(rng, (flat, hidden_size), math.sqrt(2.0 / flat), dt),
                                   zeros(hidden_size, dt), backend=be), suffix="7")
        self.add("Relu7", Relu(backend=be))
        self.add("Dropout1", Dropout(dropout_ratio, backend=be, seed=int(rng.integers(2**32))))
        self.add("Affine2", Affine(normal(rng, (hidden_size, output_size), math.sqrt(2.0 / hidden_size), dt),
                                   zeros(output_size, dt), backend=be), suffix="8")
        self.add("Dropout2", Dropout(dropout_ratio, backend=be, seed=int(rng.integers(2**32))))

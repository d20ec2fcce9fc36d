"""Fully connected nets: the classic TwoLayerNet and the deeper MultiLayerNet."""
import numpy

from fastnet.errors import InputError
from fastnet.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid
from fastnet.nets.init import check_layer_sizes, init_scale, normal, zeros
from fastnet.nets.sequential import Sequential


class TwoLayerNet(Sequential):
    """Affine1 - Relu1 - Affine2 - softmax loss, with params W1 b1 W2 b2."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 backend=None, dtype="float32", seed=None):
        check_layer_sizes(input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        super().__init__(backend=backend, dtype=dtype)
        rng = numpy.random.default_rng(seed)
        be, dt = self.backend, self.dtype
        self.add("Affine1", Affine(normal(rng, (input_size, hidden_size), weight_init_std, dt),
                                   zeros(hidden_size, dt), backend=be), suffix="1")
        self.add("Relu1", Relu(backend=be))
        self.add("Affine2", Affine(normal(rng, (hidden_size, output_size), weight_init_std, dt),
                                   zeros(output_size, dt), backend=be), suffix="2")


ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


class MultiLayerNet(Sequential):
    """Affine - [BatchNorm] - activation - [Dropout], repeated, then a final Affine.

    Params W1..Wn, b1..bn (and gamma1, beta1, ... with batch norm); L2 weight decay on the W's.
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                 dropout_ratio=0.5, use_batchnorm=False, backend=None, dtype="float32", seed=None):
        check_layer_sizes(input_size=input_size, hidden_size_list=hidden_size_list, output_size=output_size)
        super().__init__(backend=backend, dtype=dtype, weight_decay_lambda=weight_decay_lambda)
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        rng = numpy.random.default_rng(seed)
        be, dt = self.backend, self.dtype
        sizes = [input_size, *hidden_size_list, output_size]
        for i in range(1, len(sizes)):
            fan_in, fan_out = sizes[i - 1], sizes[i]
            W = normal(rng, (fan_in, fan_out), init_scale(weight_init_std, fan_in), dt)
            self.add(f"Affine{i}", Affine(W, zeros(fan_out, dt), backend=be), suffix=i)
            if i == len(sizes) - 1:
                break
            if use_batchnorm:
                self.add(f"BatchNorm{i}", BatchNormalization(numpy.ones(fan_out, dt), zeros(fan_out, dt),
                                                             backend=be), suffix=i)
            self.add(f"Activation_function{i}", ACTIVATIONS[activation](backend=be))
            if use_dropout:
                seed_i = None if seed is None else int(rng.integers(2**32))
                self.add(f"Dropout{i}", Dropout(dropout_ratio, backend=be, seed=seed_i))
        self.hidden_layer_num = len(hidden_size_list)

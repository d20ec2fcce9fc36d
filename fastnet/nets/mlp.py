"""Fully connected nets: the classic TwoLayerNet and the deeper MultiLayerNet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy

from fastnet.annotations import BackendLike
from fastnet.errors import InputError
from fastnet.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid
from fastnet.nets.init import check_layer_sizes, init_scale, normal, zeros
from fastnet.nets.sequential import Sequential


class TwoLayerNet(Sequential):
    """Affine1 - Relu1 - Affine2 - softmax loss, with params W1 b1 W2 b2 (the book's chapter 5 net).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        The layer widths, e.g. 784, 50, 10 for MNIST.
    weight_init_std : float
        Standard deviation of the initial weights (biases start at zero).
    backend : str or Backend, optional
        ``"numpy"``, ``"numba"``, ``"cupy"``, ``"auto"`` or a backend object; default: the
        default backend (``fastnet.set_default_backend``).
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    seed : int, optional
        Seeds the initial weights (drawn on the host, so every backend starts from the same net)
        and the dropout masks.

    Examples
    --------
    >>> import numpy
    >>> net = TwoLayerNet(784, 50, 10, backend="numpy", seed=0)
    >>> sorted(net.params)
    ['W1', 'W2', 'b1', 'b2']
    >>> net.predict(numpy.zeros((2, 784), numpy.float32)).shape
    (2, 10)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        backend: BackendLike = None,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        check_layer_sizes(input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        super().__init__(backend=backend, dtype=dtype)
        rng = numpy.random.default_rng(seed)
        be, dt = self.backend, self.dtype
        self.add(
            "Affine1",
            Affine(normal(rng, (input_size, hidden_size), weight_init_std, dt), zeros(hidden_size, dt), backend=be),
            suffix="1",
        )
        self.add("Relu1", Relu(backend=be))
        self.add(
            "Affine2",
            Affine(normal(rng, (hidden_size, output_size), weight_init_std, dt), zeros(output_size, dt), backend=be),
            suffix="2",
        )


ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


class MultiLayerNet(Sequential):
    """Affine - [BatchNorm] - activation - [Dropout], repeated, then a final Affine.

    Params W1..Wn, b1..bn (and gamma1, beta1, ... with batch norm); L2 weight decay on the W's.
    The book's MultiLayerNet and MultiLayerNetExtend in one class, with their keyword names.

    Parameters
    ----------
    input_size, output_size : int
        The widths of the input and of the scores.
    hidden_size_list : list of int
        One width per hidden layer, e.g. ``[100, 100, 100]``.
    activation : str
        ``"relu"`` or ``"sigmoid"``.
    weight_init_std : float or str
        The initial weights' standard deviation, or ``"relu"``/``"he"`` (sqrt(2 / fan-in)) or
        ``"sigmoid"``/``"xavier"`` (sqrt(1 / fan-in)).
    weight_decay_lambda : float
        The L2 term the loss adds for the W's (the book's; an optimizer's ``weight_decay`` is the
        other way to decay).
    use_dropout, dropout_ratio : bool, float
        A Dropout after each activation, dropping this share of the values.
    use_batchnorm : bool
        A BatchNormalization before each activation.
    backend : str or Backend, optional
        ``"numpy"``, ``"numba"``, ``"cupy"``, ``"auto"`` or a backend object; default: the
        default backend (``fastnet.set_default_backend``).
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    seed : int, optional
        Seeds the initial weights (drawn on the host, so every backend starts from the same net)
        and the dropout masks.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ratio: float = 0.5,
        use_batchnorm: bool = False,
        backend: BackendLike = None,
        dtype: str = "float32",
        seed: int | None = None,
    ):
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
                self.add(
                    f"BatchNorm{i}",
                    BatchNormalization(numpy.ones(fan_out, dt), zeros(fan_out, dt), backend=be),
                    suffix=i,
                )
            self.add(f"Activation_function{i}", ACTIVATIONS[activation](backend=be))
            if use_dropout:
                seed_i = None if seed is None else int(rng.integers(2**32))
                self.add(f"Dropout{i}", Dropout(dropout_ratio, backend=be, seed=seed_i))
        self.hidden_layer_num = len(hidden_size_list)

"""Convolutional nets: SimpleConvNet and the classic DeepConvNet."""

from __future__ import annotations

import math

import numpy

from fastnet.annotations import BackendLike
from fastnet.errors import InputError
from fastnet.layers import Affine, Convolution, Dropout, Pooling, Relu
from fastnet.nets.init import normal, zeros
from fastnet.nets.sequential import Sequential

DEFAULT_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet(Sequential):
    """conv - relu - pool(2x2, stride 2) - affine - relu - affine; params W1 b1 (conv), W2 b2, W3 b3.

    The book's chapter 7 net, with its constructor.

    Parameters
    ----------
    input_dim : tuple of int
        (channels, height, width) of one image.
    conv_param : dict, optional
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` (default 30, 5, 0, 1); keys left out
        keep their default.
    hidden_size, output_size : int
        The widths of the hidden affine layer and of the scores.
    weight_init_std : float
        Standard deviation of the initial weights.
    backend : str or Backend, optional
        ``"numpy"``, ``"numba"``, ``"cupy"``, ``"auto"`` or a backend object; default: the
        default backend (``fastnet.set_default_backend``).
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    seed : int, optional
        Seeds the initial weights (drawn on the host, so every backend starts from the same net)
        and the dropout masks.

    Raises
    ------
    InputError
        When the input is too small for the filter and the pooling.

    Examples
    --------
    >>> import numpy
    >>> net = SimpleConvNet(backend="numpy", seed=0)
    >>> sorted(net.params)
    ['W1', 'W2', 'W3', 'b1', 'b2', 'b3']
    >>> net.predict(numpy.zeros((2, 1, 28, 28), numpy.float32)).shape
    (2, 10)
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: dict[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
        backend: BackendLike = None,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        super().__init__(backend=backend, dtype=dtype)
        conv = {**DEFAULT_CONV, **(conv_param or {})}
        fn, fs, pad, stride = conv["filter_num"], conv["filter_size"], conv["pad"], conv["stride"]
        channels = input_dim[0]
        rng = numpy.random.default_rng(seed)
        be, dt, std = self.backend, self.dtype, weight_init_std
        conv1 = Convolution(normal(rng, (fn, channels, fs, fs), std, dt), zeros(fn, dt), stride, pad, backend=be)
        pool1 = Pooling(2, 2, stride=2, backend=be)
        pooled = pool1.output_shape(conv1.output_shape((1, *input_dim)))
        if min(pooled[2:]) < 1:
            raise InputError(
                f"SimpleConvNet input {input_dim[1]}x{input_dim[2]} is too small for its "
                f"{fs}x{fs} filter (pad {pad}, stride {stride}) and 2x2 pooling; use a larger "
                f"input or a smaller filter_size"
            )
        self.add("Conv1", conv1, suffix="1")
        self.add("Relu1", Relu(backend=be))
        self.add("Pool1", pool1)
        flat = math.prod(pooled[1:])
        self.add(
            "Affine1", Affine(normal(rng, (flat, hidden_size), std, dt), zeros(hidden_size, dt), backend=be), suffix="2"
        )
        self.add("Relu2", Relu(backend=be))
        self.add(
            "Affine2",
            Affine(normal(rng, (hidden_size, output_size), std, dt), zeros(output_size, dt), backend=be),
            suffix="3",
        )


class DeepConvNet(Sequential):
    """conv-relu-conv-relu-pool, three times (16, 16, 32, 32, 64, 64 filters of 3x3), then
    affine 50 - relu - dropout - affine - dropout; He initialisation.  Params W1..W8, b1..b8.

    Parameters
    ----------
    input_dim : tuple of int
        (channels, height, width) of one image; the layer sizes follow from it.
    output_size, hidden_size : int
        The widths of the scores and of the hidden affine layer.
    dropout_ratio : float
        The share of values each Dropout drops while training.
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
    >>> net = DeepConvNet(backend="numpy", seed=0)
    >>> len(net.params), net.params["W1"].shape, net.params["W7"].shape
    (16, (16, 1, 3, 3), (1024, 50))
    """

    # (filters, filter size, pad) as in the book; a 2x2 pooling follows every second convolution
    CONVS = ((16, 3, 1), (16, 3, 1), (32, 3, 1), (32, 3, 2), (64, 3, 1), (64, 3, 1))

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        output_size: int = 10,
        hidden_size: int = 50,
        dropout_ratio: float = 0.5,
        backend: BackendLike = None,
        dtype: str = "float32",
        seed: int | None = None,
    ):
        super().__init__(backend=backend, dtype=dtype)
        rng = numpy.random.default_rng(seed)
        be, dt = self.backend, self.dtype
        shape: tuple[int, ...] = (1, *input_dim)  # what flows between the layers, for one sample
        for i, (filters, size, pad) in enumerate(self.CONVS, start=1):
            channels = shape[1]
            scale = math.sqrt(2.0 / (channels * size * size))
            conv = Convolution(
                normal(rng, (filters, channels, size, size), scale, dt), zeros(filters, dt), 1, pad, backend=be
            )
            shape = conv.output_shape(shape)
            self.add(f"Conv{i}", conv, suffix=i)
            self.add(f"Relu{i}", Relu(backend=be))
            if i % 2 == 0:
                pool = Pooling(2, 2, stride=2, backend=be)
                shape = pool.output_shape(shape)
                self.add(f"Pool{i // 2}", pool)
        if min(shape[2:]) < 1:
            raise InputError(
                f"DeepConvNet input {input_dim[1]}x{input_dim[2]} is too small for its six "
                f"convolutions and three 2x2 poolings; use larger images"
            )
        flat = math.prod(shape[1:])
        self.add(
            "Affine1",
            Affine(normal(rng, (flat, hidden_size), math.sqrt(2.0 / flat), dt), zeros(hidden_size, dt), backend=be),
            suffix="7",
        )
        self.add("Relu7", Relu(backend=be))
        self.add("Dropout1", Dropout(dropout_ratio, backend=be, seed=int(rng.integers(2**32))))
        self.add(
            "Affine2",
            Affine(
                normal(rng, (hidden_size, output_size), math.sqrt(2.0 / hidden_size), dt),
                zeros(output_size, dt),
                backend=be,
            ),
            suffix="8",
        )
        self.add("Dropout2", Dropout(dropout_ratio, backend=be, seed=int(rng.integers(2**32))))

"""Everything a run is chosen from, by name, defined once: nets (builder and classic recipe),
optimizers, datasets, dtypes and the defaults.

The command, the run configuration, the trainer and the gradient check read these tables.
Adding a net is an entry in ``NETS`` here (its class lives in ``fastnet.nets``); adding an
optimizer is its class and its entry in ``fastnet.optim.OPTIMIZERS``, which this module
re-exports.  Builders import the nets when called, so reading the names stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastnet.datasets.catalog import DATASET_NAMES, SAMPLE_NAME
from fastnet.errors import InputError
from fastnet.optim import OPTIMIZERS, make_optimizer

# --- defaults, stated once ------------------------------------------------------------------------
TRAIN_BATCH = 100  # minibatch of a training step
EVAL_BATCH = 1000  # batch of the test-mode passes (evaluation, fastnet eval)
LOG_EVERY = 50  # steps per logged mean loss
TRAIN_EVAL_SAMPLE = 10_000  # training images fastnet train evaluates after each epoch (--train-eval)
DEFAULT_NET = "two-layer"
DEFAULT_DATASET = "mnist"
DEFAULT_SEED = 0
DTYPES = ("float32", "float64")
DEFAULT_DTYPE = "float32"
CLASSES = 10  # every data set here has ten classes

# --- optimizers: the registry beside their classes (name -> class), and make_optimizer(name, lr)
OPTIMIZER_NAMES = tuple(OPTIMIZERS)


# --- datasets -------------------------------------------------------------------------------------
DATASETS = DATASET_NAMES  # "mnist", "fashion-mnist", "sample" (the embedded MNIST sample)
SAMPLE = SAMPLE_NAME


# --- nets -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """A net's classic training recipe; explicit options override it."""

    optimizer: str
    lr: float
    epochs: int
    hidden: tuple


@dataclass(frozen=True)
class NetEntry:
    """``build(run, backend, input_shape, output_size)``: the net a run configuration describes;
    ``small(backend, seed)``: a tiny float64 version and its input shape, for gradient checks
    (a numerical gradient costs two forward passes per parameter)."""

    name: str
    build: Callable
    small: Callable
    recipe: Recipe
    images: bool  # takes (N, C, H, W) images rather than flat rows


def _two_layer(run, backend, input_shape, output_size):
    from fastnet.nets import TwoLayerNet

    return TwoLayerNet(input_shape[0], run.hidden[0], output_size, **_common(run, backend))


def _mlp(run, backend, input_shape, output_size):
    from fastnet.nets import MultiLayerNet

    return MultiLayerNet(
        input_shape[0],
        list(run.hidden),
        output_size,
        use_dropout=run.dropout > 0,
        dropout_ratio=run.dropout or 0.5,
        use_batchnorm=run.batchnorm,
        **_common(run, backend),
    )


def _simple_conv(run, backend, input_shape, output_size):
    from fastnet.nets import SimpleConvNet

    return SimpleConvNet(
        tuple(input_shape), hidden_size=run.hidden[0], output_size=output_size, **_common(run, backend)
    )


def _deep_conv(run, backend, input_shape, output_size):
    from fastnet.nets import DeepConvNet

    return DeepConvNet(tuple(input_shape), output_size=output_size, **_common(run, backend))


def _common(run, backend):
    return dict(backend=backend, dtype=run.dtype, seed=run.seed)


def _small_two_layer(backend, seed):
    from fastnet.nets import TwoLayerNet

    return TwoLayerNet(16, 10, 10, weight_init_std=0.3, backend=backend, dtype="float64", seed=seed), (16,)


def _small_mlp(backend, seed):
    from fastnet.nets import MultiLayerNet

    return MultiLayerNet(
        16, [10, 8], 10, use_batchnorm=True, weight_decay_lambda=0.01, backend=backend, dtype="float64", seed=seed
    ), (16,)


def _small_simple_conv(backend, seed):
    from fastnet.nets import SimpleConvNet

    conv = {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}
    return SimpleConvNet(
        (1, 8, 8), conv, hidden_size=10, weight_init_std=0.3, backend=backend, dtype="float64", seed=seed
    ), (1, 8, 8)


def _small_deep_conv(backend, seed):
    from fastnet.nets import DeepConvNet

    return DeepConvNet((1, 8, 8), hidden_size=6, dropout_ratio=0.0, backend=backend, dtype="float64", seed=seed), (
        1,
        8,
        8,
    )


NETS = {
    entry.name: entry
    for entry in (
        NetEntry("two-layer", _two_layer, _small_two_layer, Recipe("sgd", 0.1, 17, (50,)), images=False),
        NetEntry("mlp", _mlp, _small_mlp, Recipe("sgd", 0.1, 20, (100, 100, 100, 100, 100)), images=False),
        NetEntry("simple-conv", _simple_conv, _small_simple_conv, Recipe("adam", 0.001, 20, (100,)), images=True),
        NetEntry("deep-conv", _deep_conv, _small_deep_conv, Recipe("adam", 0.001, 20, (50,)), images=True),
    )
}
NET_NAMES = tuple(NETS)


def net_entry(name: str) -> NetEntry:
    if name not in NETS:
        raise InputError(f"unknown net {name!r}; choose one of: {', '.join(NET_NAMES)}")
    return NETS[name]


__all__ = [
    "CLASSES",
    "DATASETS",
    "DEFAULT_DATASET",
    "DEFAULT_DTYPE",
    "DEFAULT_NET",
    "DEFAULT_SEED",
    "DTYPES",
    "EVAL_BATCH",
    "LOG_EVERY",
    "NETS",
    "NET_NAMES",
    "NetEntry",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "Recipe",
    "SAMPLE",
    "TRAIN_BATCH",
    "make_optimizer",
    "net_entry",
]

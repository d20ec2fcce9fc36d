"""The examples in the public API's docstrings run and print what they show (the docs site
renders them, so a stale example would teach the wrong thing)."""

import doctest
import importlib

import pytest

MODULES = [
    "fastnet.optim",
    "fastnet.schedules",
    "fastnet.loading",
    "fastnet.evaluation",
    "fastnet.layers.activations",
    "fastnet.layers.affine",
    "fastnet.layers.batchnorm",
    "fastnet.layers.conv",
    "fastnet.layers.dropout",
    "fastnet.layers.pooling",
    "fastnet.layers.softmax",
    "fastnet.nets.sequential",
    "fastnet.nets.mlp",
    "fastnet.nets.convnets",
    "fastnet.datasets.mnist",
    "fastnet.training.config",
    "fastnet.training.extension",
    "fastnet.training.trainer",
    "fastnet.distributed",
    "fastnet.distributed.data_parallel",
    "fastnet.interop.spec",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples: take it off the list or give it some"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"

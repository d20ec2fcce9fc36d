"""The examples in the public API's docstrings run and print what they show (the docs site
renders them, so a stale example would teach the wrong thing)."""

import doctest
import importlib

import pytest

MODULES = ["fastnet.optim", "fastnet.nets.mlp", "fastnet.nets.convnets", "fastnet.schedules"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"

"""One definition of where a window lands, used by layers, nets and kernels alike."""

from pathlib import Path

import numpy
import pytest

from fastnet.backends import Backend, get_backend
from fastnet.backends.numpy_backend import NumpyBackend
from fastnet.errors import InputError
from fastnet.nets.convnets import DeepConvNet, SimpleConvNet
from fastnet.shapes import conv_output_size, window_output_hw

PACKAGE = Path(__file__).resolve().parents[1] / "fastnet"


@pytest.mark.parametrize(
    "size,filt,stride,pad,expected",
    [(28, 5, 1, 0, 24), (28, 3, 1, 1, 28), (7, 3, 2, 1, 4), (24, 2, 2, 0, 12), (3, 5, 1, 0, -1)],
)
def test_conv_output_size(size, filt, stride, pad, expected):
    assert conv_output_size(size, filt, stride, pad) == expected
    assert window_output_hw(size, size + 2, filt, filt, stride, pad) == (
        expected,
        conv_output_size(size + 2, filt, stride, pad),
    )


def test_only_the_backends_import_the_numpy_kernels():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "numpy_kernels" in p.read_text() and p.parent.name != "backends"
    ]
    assert offenders == []


@pytest.mark.parametrize("input_dim", [(1, 3, 3), (1, 4, 9), (2, 5, 5)])
def test_simple_conv_net_refuses_an_input_smaller_than_its_filter(input_dim):
    with pytest.raises(InputError, match=rf"input {input_dim[1]}x{input_dim[2]} is too small for its 5x5 filter"):
        SimpleConvNet(input_dim=input_dim)


def test_simple_conv_net_takes_non_square_input():
    net = SimpleConvNet(input_dim=(1, 10, 14), conv_param={"filter_num": 2, "filter_size": 3}, hidden_size=4, seed=0)
    assert net.params["W2"].shape == (2 * 4 * 6, 4)
    assert net.predict(numpy.zeros((3, 1, 10, 14), numpy.float32)).shape == (3, 10)


class WideFilterNet(DeepConvNet):
    CONVS = ((4, 5, 2), (4, 3, 0), (6, 1, 0), (6, 3, 1), (8, 3, 1), (8, 2, 0))


def test_deep_conv_net_sizes_come_from_its_layers():
    """Other filter sizes and a non-square input: the first Affine layer still fits."""
    net = WideFilterNet(input_dim=(1, 28, 20), seed=0)
    assert net.params["W1"].shape == (4, 1, 5, 5) and net.params["W6"].shape == (8, 8, 2, 2)
    # 28x20 -> 28x20 -> 26x18 -> pool 13x9 -> 13x9 -> 13x9 -> pool 6x4 -> 6x4 -> 5x3 -> pool 2x1
    assert net.params["W7"].shape == (8 * 2 * 1, 50)
    assert net.predict(numpy.zeros((2, 1, 28, 20), numpy.float32)).shape == (2, 10)


def test_deep_conv_net_refuses_a_tiny_input():
    with pytest.raises(InputError, match="DeepConvNet input 2x2 is too small"):
        DeepConvNet(input_dim=(1, 2, 2))


def test_backend_base_and_numpy_backend_are_named_apart():
    numpy_backend = get_backend("numpy")
    assert type(numpy_backend) is NumpyBackend and isinstance(numpy_backend, Backend)
    assert NumpyBackend is not Backend and numpy_backend.name == "numpy"

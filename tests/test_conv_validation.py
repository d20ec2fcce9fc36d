"""Conv nets refuse NaN/inf wherever it sits in the input, on every backend and in every call."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Convolution
from fastnet.nets import DeepConvNet, SimpleConvNet

F32 = numpy.float32


def small_simple(backend, filter_size=3, pad=0, stride=1):
    conv = {"filter_num": 2, "filter_size": filter_size, "pad": pad, "stride": stride}
    return SimpleConvNet(input_dim=(1, 8, 8), conv_param=conv, hidden_size=4, output_size=3, backend=backend, seed=0)


def data(backend, n=3):
    x = numpy.random.default_rng(0).random((n, 1, 8, 8), dtype=F32)
    return x, numpy.zeros(n, numpy.int64)


# corners and edges (reached only by windows lying partly on the padding), and the middle
POSITIONS = [(0, 0), (0, 7), (7, 0), (7, 7), (0, 4), (4, 7), (3, 3)]


def test_convolution_is_a_gradient_mapping_that_cannot_be_changed():
    layer = Convolution(numpy.ones((2, 1, 3, 3), F32), numpy.zeros(2, F32))
    assert dict(layer.grad_names) == {"W": "dW", "b": "db"}
    with pytest.raises(TypeError):
        layer.grad_names["W"] = "other"


@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf, -numpy.inf])
@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_non_finite_input_anywhere_is_refused_by_predict_and_gradient(backend, bad, position, pad):
    net = small_simple(backend, pad=pad)
    x, t = data(backend)
    x[1, 0][position] = bad
    x, t = backend.asarray(x), backend.asarray(t)
    with pytest.raises(InputError, match="x contains 1 NaN or inf"):
        net.predict(x)
    with pytest.raises(InputError, match="x contains 1 NaN or inf"):
        net.gradient(x, t)


def test_a_convolution_that_skips_pixels_still_refuses_them(backend):
    """Stride 3 with a 2x2 filter never reads row 2: a NaN there still is the input's fault."""
    net = small_simple(backend, filter_size=2, stride=3)
    x, _ = data(backend)
    x[0, 0, 2, 2] = numpy.nan
    with pytest.raises(InputError, match="x contains 1 NaN or inf"):
        net.predict(backend.asarray(x))


@pytest.mark.parametrize("bad", [numpy.nan, -numpy.inf])
@pytest.mark.parametrize("position", [(0, 0), (27, 27), (0, 13), (14, 27)])
def test_deep_conv_net_refuses_non_finite_input(backend, bad, position):
    net = DeepConvNet(backend=backend, seed=0)
    x = numpy.random.default_rng(1).random((2, 1, 28, 28), dtype=F32)
    x[1, 0][position] = bad
    with pytest.raises(InputError, match="x contains 1 NaN or inf"):
        net.gradient(backend.asarray(x), backend.asarray(numpy.zeros(2, numpy.int64)))


def test_the_first_convolution_stays_fused_with_its_relu_while_validating(backend):
    """Checking the input, not the (larger) convolution output, keeps Conv1+Relu1 one pass."""
    net = small_simple(backend, pad=1)
    calls = []
    conv = net.layers["Conv1"]
    original = conv.forward_relu
    conv.forward_relu = lambda x, relu: calls.append(1) or original(x, relu)
    net.predict(backend.asarray(data(backend)[0]))
    assert calls == [1]


def test_finite_input_gives_the_same_answer_with_validation_on_and_off(backend):
    net = small_simple(backend, pad=1)
    x = backend.asarray(data(backend)[0])
    checked = backend.to_numpy(net.predict(x))
    net.validate_inputs = False
    numpy.testing.assert_array_equal(backend.to_numpy(net.predict(x)), checked)

"""net.predict checks each layer's input the first time it sees an input shape, then runs the
layers' unchecked forwards: same numbers, same errors, same caches for a backward."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Affine, Relu
from fastnet.nets import DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet

F32 = numpy.float32


def nets(backend):
    conv = {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1}
    return {
        "two-layer": (TwoLayerNet(784, 20, 10, backend=backend, seed=0), (784,)),
        "mlp-bn-dropout": (
            MultiLayerNet(784, [16, 12], 10, use_batchnorm=True, use_dropout=True, backend=backend, seed=0),
            (784,),
        ),
        "simple-conv": (
            SimpleConvNet((1, 12, 12), conv_param=conv, hidden_size=8, backend=backend, seed=0),
            (1, 12, 12),
        ),
        "deep-conv": (DeepConvNet(backend=backend, seed=0), (1, 28, 28)),
    }


@pytest.mark.parametrize("name", ["two-layer", "mlp-bn-dropout", "simple-conv", "deep-conv"])
@pytest.mark.parametrize("batch", [1, 7])
def test_the_unchecked_forward_gives_the_checked_forwards_bits(backend, name, batch):
    net, shape = nets(backend)[name]
    x = backend.asarray(numpy.random.default_rng(1).random((batch, *shape), dtype=F32))
    first = backend.to_numpy(net.predict(x))  # every layer checks this shape
    assert net._inference_plan().has_passed(x)
    again = backend.to_numpy(net.predict(x))  # the layers' unchecked forwards
    assert numpy.array_equal(first, again)
    with net.trusted_inputs():
        assert numpy.array_equal(backend.to_numpy(net.predict(x)), first)


def test_a_backward_after_predict_uses_the_caches_the_unchecked_forward_left(backend):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    rng = numpy.random.default_rng(2)
    x = backend.asarray(rng.random((5, 784), dtype=F32))
    t = backend.asarray(rng.integers(0, 10, 5))
    checked = {k: backend.to_numpy(v) for k, v in net.gradient(x, t).items()}  # loss -> predict, first shape
    other = backend.asarray(rng.random((5, 784), dtype=F32))
    net.predict(other)  # the plan's caches now hold another batch ...
    again = {k: backend.to_numpy(v) for k, v in net.gradient(x, t).items()}  # ... and this one replaces them
    for key, value in checked.items():
        assert numpy.array_equal(again[key], value), key


def test_a_new_shape_is_checked_and_named(backend):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    net.predict(backend.asarray(numpy.zeros((1, 784), F32)))
    net.predict(backend.asarray(numpy.zeros((1, 784), F32)))
    with pytest.raises(InputError, match="Affine expects 784 features"):
        net.predict(backend.asarray(numpy.zeros((1, 783), F32)))


@pytest.mark.parametrize("batch", [1, 64])  # the input itself, or the first layer's output, is read
def test_nan_is_refused_on_the_unchecked_path_too(backend, batch):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x = numpy.random.default_rng(3).random((batch, 784), dtype=F32)
    net.predict(backend.asarray(x))
    net.predict(backend.asarray(x))
    x[0, 5] = numpy.nan
    with pytest.raises(InputError, match="NaN or inf"):
        net.predict(backend.asarray(x))


def test_a_layer_changed_after_its_shape_passed_is_named_not_a_numpy_error(backend):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x = backend.asarray(numpy.zeros((2, 784), F32))
    net.predict(x)
    net.predict(x)
    net.layers["Affine2"].W = backend.asarray(numpy.zeros((21, 10), F32))  # no longer fits Affine1's 20 outputs
    with pytest.raises(InputError, match="Affine expects 21 features"):
        net.predict(x)


def test_the_plan_follows_the_layers_and_the_dtype():
    rng = numpy.random.default_rng(4)
    net = Sequential(backend="numpy")
    net.add("Affine1", Affine(rng.standard_normal((6, 5)), numpy.zeros(5)), suffix="1")
    x = rng.random((3, 6), dtype=F32)
    net.predict(x)
    plan = net._inference_plan()
    net.add("Relu1", Relu())
    assert net._inference_plan() is not plan
    assert (net.predict(x) >= 0).all() and (net.predict(x) >= 0).all()
    with net.computing_in("float64"):  # the numerical gradient's copies
        assert net._inference_plan().key[-1] == numpy.float64
        with pytest.raises(InputError, match="dtype float32 but the net computes in float64"):
            net.predict(x)
        x64 = x.astype(numpy.float64)
        assert net.predict(x64).dtype == net.predict(x64).dtype == numpy.float64
    assert net.predict(x).dtype == F32


def test_a_book_style_layer_of_the_users_own_runs_as_it_is():
    class Square:  # forward/backward only, no fastnet base class
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dout):
            return 2 * self.x * dout

    rng = numpy.random.default_rng(5)
    net = Sequential(backend="numpy")
    net.add("Affine1", Affine(rng.standard_normal((6, 5)), numpy.zeros(5)), suffix="1")
    net.add("Square", Square())
    x = rng.random((3, 6), dtype=F32)
    first = net.predict(x)
    assert numpy.array_equal(net.predict(x), first)
    assert numpy.array_equal(net.layers["Square"].x, net.layers["Affine1"].forward(x))

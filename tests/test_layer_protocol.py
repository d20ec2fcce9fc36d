"""A layer declares what it is; the net, the profiler and the parity check read the declaration."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Affine, BatchNormalization, Convolution, Dropout, Layer, Pooling, Relu, Sigmoid
from fastnet.layers.protocol import FOREIGN, declaration
from fastnet.nets import Sequential, SimpleConvNet
from fastnet.profiling.layer_timer import _units
from fastnet.profiling.shapes import forward_products


def test_the_classic_layers_declare_kind_parameters_buffers_and_fusing():
    rng = numpy.random.default_rng(0)
    affine = declaration(Affine(rng.random((4, 3)), numpy.zeros(3)))
    assert (affine.kind, affine.params, dict(affine.grads), affine.decay, affine.fuses_with) == (
        "affine",
        ("W", "b"),
        {"W": "dW", "b": "db"},
        ("W",),
        ("relu",),
    )
    bn = declaration(BatchNormalization(numpy.ones(3), numpy.zeros(3)))
    assert (bn.kind, bn.params, bn.buffers, bn.takes_train_flag) == (
        "batchnorm",
        ("gamma", "beta"),
        ("running_mean", "running_var"),
        True,
    )
    conv = declaration(Convolution(rng.random((2, 1, 3, 3)), numpy.zeros(2)))
    assert (conv.kind, conv.fuses_with) == ("conv", ("relu",))
    assert [declaration(layer).kind for layer in (Relu(), Sigmoid(), Dropout(0.1), Pooling(2, 2, 2))] == [
        "relu",
        "sigmoid",
        "dropout",
        "pool",
    ]
    assert declaration(Dropout(0.1)).takes_train_flag and not declaration(Relu()).takes_train_flag


class BookDropout:
    """A book-style layer of the user's own: no declaration, a train_flg in its forward."""

    def __init__(self):
        self.mask = None

    def forward(self, x, train_flg=True):
        self.mask = numpy.ones_like(x, dtype=bool) if train_flg else None
        return x if train_flg else x * 1.0

    def backward(self, dout):
        return dout * self.mask


def test_a_foreign_layer_is_taken_as_it_is():
    declared = declaration(BookDropout())
    assert declared.kind == FOREIGN and not declared.native and declared.takes_train_flag
    rng = numpy.random.default_rng(0)
    net = Sequential(backend="numpy", dtype="float64")
    net.add("Affine1", Affine(rng.random((4, 3)), numpy.zeros(3)), suffix="1")
    net.add("Mine", BookDropout())
    x = rng.random((2, 4))
    assert net.gradient(x, numpy.array([0, 2])).keys() == {"W1", "b1"}
    assert net.output_size == 3
    assert forward_products(net, (4,), 2) == [(2, 4, 3)]


class ScaledRelu(Layer):
    """A layer of one's own that declares it runs the ReLU after it in the same pass."""

    kind = "scale"
    fuses_with = ("relu",)

    def __init__(self):
        super().__init__()
        self.fused = 0

    def forward(self, x):
        return 2 * x

    def forward_relu(self, x, relu):
        self.fused += 1
        return relu.forward(2 * x)

    def backward(self, dout):
        return 2 * dout


def test_fusing_follows_the_declaration_in_the_net_and_the_profiler():
    rng = numpy.random.default_rng(0)
    net = Sequential(backend="numpy", dtype="float64")
    net.add("Scale1", ScaledRelu())
    net.add("Relu1", Relu())
    net.add("Affine1", Affine(rng.random((4, 3)), numpy.zeros(3)), suffix="1")
    net.add("Sigmoid1", Sigmoid())
    net.predict(rng.random((2, 4)))
    assert net.layers["Scale1"].fused == 1
    assert _units(net) == {
        "Scale1": "Scale1+Relu1",
        "Relu1": "Scale1+Relu1",
        "Affine1": "Affine1",
        "Sigmoid1": "Sigmoid1",
    }  # an Affine does not fuse with a Sigmoid
    unfused = Sequential(backend="numpy", dtype="float64", fuse=False)
    unfused.add("Scale1", ScaledRelu())
    unfused.add("Relu1", Relu())
    assert unfused.fused_forward("Scale1", "Relu1") is None


def test_the_profiler_finds_products_from_declared_kinds():
    net = SimpleConvNet(backend="numpy", seed=0)  # conv 30x5x5 on 1x28x28, pool 2, affine 4320-100, 100-10
    assert forward_products(net, (1, 28, 28), 10) == [(10 * 24 * 24, 25, 30), (10, 4320, 100), (10, 100, 10)]
    assert forward_products(net, (1, 28, 28), 10, "conv") == [(10 * 24 * 24, 25, 30)]


def test_a_pooling_runs_the_backward_of_the_relu_before_it_with_its_own(backend):
    """A fusing net calls ``Pooling.backward_relu`` and not the ReLU's backward; its gradients
    equal those of the same net with fusing off (each backward alone), bit for bit."""
    x = numpy.random.default_rng(1).random((4, 1, 12, 12))
    t = numpy.array([0, 3, 9, 3])

    def net(fuse):
        made = SimpleConvNet(
            (1, 12, 12),
            {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1},
            hidden_size=8,
            backend=backend,
            dtype="float64",
            seed=2,
        )
        made.fuse = fuse
        return made

    fused, unfused = net(True), net(False)
    relu = fused.layers["Relu1"]
    relu.backward = lambda dout: pytest.fail("the pooling runs the ReLU's backward")
    got = fused.gradient(backend.asarray(x), backend.asarray(t))
    want = unfused.gradient(backend.asarray(x), backend.asarray(t))
    assert sorted(got) == sorted(want)
    for key in want:
        numpy.testing.assert_array_equal(backend.to_numpy(got[key]), backend.to_numpy(want[key]))
    assert declaration(fused.layers["Pool1"]).fuses_backward_with == ("relu",)


def test_a_pooling_whose_input_was_not_that_relus_output_takes_each_backward_alone():
    pool, relu = Pooling(2, 2, stride=2, backend="numpy"), Relu(backend="numpy")
    x = numpy.random.default_rng(3).standard_normal((1, 2, 4, 4))
    relu.forward(numpy.ones((1, 2, 6, 6)))  # another shape than the pooling's input
    pool.forward(x)
    dout = numpy.ones((1, 2, 2, 2))
    with pytest.raises(InputError, match="Relu"):  # the ReLU's own check names the mismatch
        pool.backward_relu(dout, relu)

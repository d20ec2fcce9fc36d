"""A float32 net stays float32: no layer, result or optimizer slot is silently promoted to float64."""

import numpy
import pytest

from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet
from fastnet.optim import OPTIMIZERS

F32 = numpy.dtype(numpy.float32)


def float_dtypes(value, backend, seen=None):
    """Dtypes of every floating-point array or scalar reachable from ``value`` (attributes, containers)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if backend.is_array(value) or isinstance(value, (numpy.ndarray, numpy.generic)):
        dtype = numpy.dtype(value.dtype)
        return [dtype] if dtype.kind in "fc" else []
    if isinstance(value, dict):
        return [d for v in value.values() for d in float_dtypes(v, backend, seen)]
    if isinstance(value, (list, tuple)):
        return [d for v in value for d in float_dtypes(v, backend, seen)]
    return []


def assert_all_float32(value, backend, where):
    found = float_dtypes(value, backend)
    assert found, f"{where}: nothing to check"
    assert set(found) == {F32}, f"{where}: found dtypes {sorted(set(map(str, found)))}"


def assert_layers_float32(net, where):
    for name, layer in list(net.layers.items()) + [("lastLayer", net.lastLayer)]:
        arrays = {k: v for k, v in vars(layer).items() if k != "backend"}
        if float_dtypes(arrays, net.backend):
            assert_all_float32(arrays, net.backend, f"{where}: {name}")


NETS = {
    "two_layer": (lambda be: TwoLayerNet(20, 8, 4, backend=be, seed=0), (5, 20)),
    "multi_layer_bn_dropout": (
        lambda be: MultiLayerNet(
            20, [8, 6], 4, use_batchnorm=True, use_dropout=True, weight_decay_lambda=0.01, backend=be, seed=0
        ),
        (5, 20),
    ),
    "multi_layer_sigmoid": (
        lambda be: MultiLayerNet(20, [8], 4, activation="sigmoid", weight_init_std="xavier", backend=be, seed=0),
        (5, 20),
    ),
    "simple_conv": (
        lambda be: SimpleConvNet(
            input_dim=(1, 8, 8),
            conv_param={"filter_num": 3, "filter_size": 3, "pad": 1},
            hidden_size=6,
            output_size=4,
            backend=be,
            seed=0,
        ),
        (3, 1, 8, 8),
    ),
    "deep_conv": (
        lambda be: DeepConvNet(input_dim=(1, 8, 8), output_size=4, hidden_size=6, backend=be, seed=0),
        (3, 1, 8, 8),
    ),
}


@pytest.mark.parametrize("kind", NETS)
def test_float32_net_never_makes_float64(backend, kind):
    build, x_shape = NETS[kind]
    net = build(backend)
    rng = numpy.random.default_rng(1)
    x = backend.asarray(rng.random(x_shape, dtype=numpy.float32))
    labels = rng.integers(0, 4, x_shape[0])
    assert_all_float32(dict(net.params), backend, "initial params")

    for t in (backend.asarray(labels), backend.asarray(numpy.eye(4, dtype=numpy.float32)[labels])):
        results = {
            "predict": net.predict(x),
            "predict_train": net.predict(x, train_flg=True),
            "loss": net.loss(x, t),
            "gradient": net.gradient(x, t),
            "last_loss": net.last_loss,
        }
        assert_layers_float32(net, "after gradient")
        results["backward"] = net.lastLayer.backward(1)
        for layer in reversed(net.layers.values()):
            layer.need_input_grad = True
            results["backward"] = layer.backward(results["backward"])
        results["state"] = net.state_arrays()
        assert_all_float32(results, backend, kind)
        assert_layers_float32(net, "after backward")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_stays_float32(backend, name):
    net = MultiLayerNet(10, [6], 3, use_batchnorm=True, backend=backend, seed=0)
    optimizer = OPTIMIZERS[name](lr=0.01)
    rng = numpy.random.default_rng(2)
    x = backend.asarray(rng.random((4, 10), dtype=numpy.float32))
    t = backend.asarray(rng.integers(0, 3, 4))
    for _ in range(3):
        optimizer.update(net.params, net.gradient(x, t))
    assert_all_float32(dict(net.params), backend, f"{name} params")
    if optimizer.slots:
        assert_all_float32(optimizer.state, backend, f"{name} state")
    info, arrays = optimizer.state_dict(backend.to_numpy)
    if optimizer.slots:
        assert_all_float32(arrays, backend, f"{name} state_dict")

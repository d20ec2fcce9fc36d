"""A training step checks each layer's input the first time it sees an input shape, then runs the
layers' unchecked forwards and the loss layer's: the checked step's bits, the same errors, the same
caches for the backward, user layers as they are."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Affine, Relu
from fastnet.nets import MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet
from fastnet.optim import SGD, Momentum

F32 = numpy.float32


def make(name, backend, dtype="float32"):
    conv = {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}
    return {
        "two-layer": lambda: (TwoLayerNet(784, 20, 10, backend=backend, dtype=dtype, seed=0), (784,)),
        "mlp-bn-dropout": lambda: (
            MultiLayerNet(
                784, [16, 12], 10, use_batchnorm=True, use_dropout=True, backend=backend, dtype=dtype, seed=0
            ),
            (784,),
        ),
        "mlp-sigmoid-decay": lambda: (
            MultiLayerNet(
                30, [9], 4, activation="sigmoid", weight_decay_lambda=0.1, backend=backend, dtype=dtype, seed=0
            ),
            (30,),
        ),
        "simple-conv": lambda: (
            SimpleConvNet((1, 10, 10), conv_param=conv, hidden_size=8, backend=backend, dtype=dtype, seed=0),
            (1, 10, 10),
        ),
    }[name]()


def batch(backend, shape, n, classes, seed):
    rng = numpy.random.default_rng(seed)
    return backend.asarray(rng.random((n, *shape), dtype=F32)), backend.asarray(rng.integers(0, classes, n))


def host(backend, arrays):
    return {k: backend.to_numpy(v).copy() for k, v in arrays.items()}


@pytest.mark.parametrize("name", ["two-layer", "mlp-bn-dropout", "mlp-sigmoid-decay", "simple-conv"])
@pytest.mark.parametrize("n", [3, 64])  # 64: the input is checked through the first layer's flag
def test_planned_steps_give_the_checked_steps_bits(backend, name, n):
    planned, shape = make(name, backend)
    checked, _ = make(name, backend)
    classes = planned.output_size
    opt_planned, opt_checked = Momentum(lr=0.1), Momentum(lr=0.1)
    for step in range(4):
        x, t = batch(backend, shape, n, classes, step)
        checked._inference_plan().shapes_passed.clear()  # every layer checks, every step
        g_checked = host(backend, checked.gradient(x, t))
        g_planned = host(backend, planned.gradient(x, t))
        assert planned._inference_plan().has_passed(x, True)
        for key, value in g_checked.items():
            assert numpy.array_equal(g_planned[key], value), f"step {step}: {key}"
        assert float(planned.last_loss) == float(checked.last_loss)
        opt_checked.update(checked.params, layer_grads(checked))
        opt_planned.update(planned.params, layer_grads(planned))
    for key, value in host(backend, checked.state_arrays()).items():
        assert numpy.array_equal(backend.to_numpy(planned.state_arrays()[key]), value), key


def layer_grads(net):
    """The gradient arrays the last ``gradient`` call left on the layers (weight decay included)."""
    return {key: getattr(layer, layer.grad_names[attr]) for key, (layer, attr) in net._param_index.items()}


def test_planned_gradients_match_central_differences(backend):
    net = TwoLayerNet(12, 7, 5, backend=backend, dtype="float64", seed=1)
    rng = numpy.random.default_rng(2)
    x = backend.asarray(rng.random((6, 12)))
    t = backend.asarray(rng.integers(0, 5, 6))
    net.gradient(x, t)  # the shape passes the checks
    assert net._inference_plan().has_passed(x, True)
    backprop = host(backend, net.gradient(x, t))  # the planned step
    numeric = net.numerical_gradient(x, t)
    for key, value in backprop.items():
        diff = numpy.abs(value - numeric[key])
        scale = max(numpy.abs(value).max() + numpy.abs(numeric[key]).max(), 1e-4)
        assert diff.max() / scale < 1e-6, key


@pytest.mark.parametrize("n", [2, 64])
@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf, -numpy.inf])
def test_nan_and_inf_are_refused_after_the_shape_passed(backend, n, bad):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x, t = batch(backend, (784,), n, 10, 0)
    net.gradient(x, t)
    net.gradient(x, t)
    host_x = backend.to_numpy(x).copy()
    host_x[n - 1, 7] = bad
    with pytest.raises(InputError, match=r"^x contains 1 NaN or inf value"):
        net.gradient(backend.asarray(host_x), t)


def test_an_inf_that_the_relu_would_hide_is_refused(backend):
    """+inf times a row of negative weights is -inf before the ReLU and 0 after it."""
    W = -numpy.ones((784, 20), F32)
    net = Sequential(backend=backend)
    net.add("Affine1", Affine(W, numpy.zeros(20, F32)), suffix="1")
    net.add("Relu1", Relu())
    net.add("Affine2", Affine(numpy.ones((20, 10), F32), numpy.zeros(10, F32)), suffix="2")
    x, t = batch(backend, (784,), 64, 10, 0)
    net.gradient(x, t)
    net.gradient(x, t)
    host_x = backend.to_numpy(x).copy()
    host_x[3, 0] = numpy.inf
    with pytest.raises(InputError, match="NaN or inf"):
        net.gradient(backend.asarray(host_x), t)


def test_an_overflow_of_finite_input_is_not_called_a_bad_input(backend):
    """As on the checked path: a non-finite first-layer output from finite input is not refused."""
    big = numpy.full((784, 20), 3e38, F32)
    nets = [Sequential(backend=backend) for _ in range(2)]
    for net in nets:
        net.add("Affine1", Affine(big, numpy.zeros(20, F32)), suffix="1")
        net.add("Relu1", Relu())
        net.add("Affine2", Affine(numpy.ones((20, 10), F32), numpy.zeros(10, F32)), suffix="2")
    x, t = batch(backend, (784,), 64, 10, 0)
    with numpy.errstate(all="ignore"):
        first = backend.to_numpy(nets[0].predict(x, train_flg=True))
        again = backend.to_numpy(nets[0].predict(x, train_flg=True))
    assert not numpy.isfinite(first).all()
    assert numpy.array_equal(first, again, equal_nan=True)


@pytest.mark.parametrize(
    "labels, message",
    [
        (lambda n: numpy.full(n, 10), "t contains label 10, outside the 10 classes"),
        (lambda n: numpy.full(n, -1), "t contains label -1"),
        (lambda n: numpy.zeros(n + 1, numpy.int64), "t has 4 labels but the batch has 3 samples"),
        (lambda n: numpy.zeros(n, F32), "integer class labels are needed"),
        (lambda n: numpy.eye(11, dtype=F32)[:n], r"one-hot t has shape \(3, 11\); expected \(3, 10\)"),
        (lambda n: numpy.full((n, 10), 5, F32), "not a one-hot row"),
    ],
)
def test_bad_labels_are_refused_after_the_shape_passed(backend, labels, message):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x, t = batch(backend, (784,), 3, 10, 0)
    net.gradient(x, t)
    net.gradient(x, t)
    with pytest.raises(InputError, match=message):
        net.gradient(x, backend.asarray(labels(3)))
        net.backend.synchronize()
        net.value_checks.raise_pending()  # a GPU names a bad label when the flags are read


def test_one_hot_labels_after_integer_labels_take_the_same_path(backend):
    planned = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    checked = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x, t = batch(backend, (784,), 5, 10, 0)
    planned.gradient(x, t)
    one_hot = backend.asarray(numpy.eye(10, dtype=F32)[backend.to_numpy(t)])
    got = host(backend, planned.gradient(x, one_hot))
    want = host(backend, checked.gradient(x, one_hot))
    for key, value in want.items():
        assert numpy.array_equal(got[key], value), key


def test_a_new_shape_and_a_wrong_dtype_are_named(backend):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x, t = batch(backend, (784,), 3, 10, 0)
    net.gradient(x, t)
    net.gradient(x, t)
    with pytest.raises(InputError, match="Affine expects 784 features"):
        net.gradient(backend.asarray(numpy.zeros((3, 783), F32)), t)
    with pytest.raises(InputError, match="x has dtype float64 but the net computes in float32"):
        net.gradient(backend.asarray(numpy.zeros((3, 784))), t)


def test_a_layer_changed_after_its_shape_passed_is_named(backend):
    net = TwoLayerNet(784, 20, 10, backend=backend, seed=0)
    x, t = batch(backend, (784,), 3, 10, 0)
    net.gradient(x, t)
    net.gradient(x, t)
    net.layers["Affine2"].W = backend.asarray(numpy.zeros((21, 10), F32))
    with pytest.raises(InputError, match="Affine expects 21 features"):
        net.gradient(x, t)


def test_a_book_style_layer_and_loss_of_the_users_own(backend):
    xp = backend.xp

    class Square:
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dout):
            return 2 * self.x * dout

    class MeanSquare:  # a loss layer with no forward_unchecked
        def forward(self, y, t):
            self.y = y
            return (y * y).mean()

        def backward(self, dout=1):
            return 2 * self.y * dout / self.y.size

    rng = numpy.random.default_rng(5)

    def build():
        net = Sequential(backend=backend, dtype="float64")
        net.add("Affine1", Affine(rng.standard_normal((6, 5)), numpy.zeros(5)), suffix="1")
        net.add("Square", Square())
        net.add("Affine2", Affine(rng.standard_normal((5, 3)), numpy.zeros(3)), suffix="2")
        return net

    net = build()
    x = backend.asarray(rng.random((4, 6)))
    t = backend.asarray(numpy.array([0, 1, 2, 0]))
    first = host(backend, net.gradient(x, t))
    again = host(backend, net.gradient(x, t))
    for key, value in first.items():
        assert numpy.array_equal(again[key], value), key
    assert xp is backend.xp and net.layers["Square"].x is not None
    net.set_loss(MeanSquare())
    loss = float(net.loss(x, t, train_flg=True))
    assert loss == float(net.loss(x, t, train_flg=True)) > 0
    numeric = net.numerical_gradient(x, t)
    got = host(backend, net.gradient(x, t))
    for key in got:
        assert numpy.allclose(got[key], numeric[key], rtol=1e-6, atol=1e-8), key


def test_sgd_through_the_kernels_matches_the_plain_update(backend):
    """net.params reach the backend's fused update; a plain dict of arrays the NumPy expression:
    the same bits, whatever the rate's type."""
    rng = numpy.random.default_rng(7)
    for dtype in (numpy.float32, numpy.float64):
        for lr in (0.01, 1, numpy.float64(0.3), numpy.float32(0.7)):
            net = TwoLayerNet(9, 4, 3, backend=backend, dtype=dtype.__name__, seed=0)
            grads = {k: backend.asarray(rng.standard_normal(v.shape).astype(dtype)) for k, v in net.params.items()}
            plain = {k: v.copy() for k, v in net.params.items()}
            SGD(lr=0.5).update(net.params, grads)  # any rate, then ...
            for k in plain:
                plain[k][...] = net.params[k]
            optimizer, reference = SGD(lr=0.5), SGD(lr=0.5)
            optimizer.lr = reference.lr = lr
            optimizer.update(net.params, grads)
            reference.update(plain, grads)
            for k, value in plain.items():
                assert numpy.array_equal(backend.to_numpy(net.params[k]), backend.to_numpy(value)), (dtype, lr, k)


def test_an_optimizer_keeps_no_kernels_after_an_update(backend):
    """It can be copied (the profiler's twin) and pickled as before."""
    import copy
    import pickle

    net = TwoLayerNet(9, 4, 3, backend=backend, seed=0)
    optimizer = SGD(lr=0.1)
    x, t = batch(backend, (9,), 2, 3, 0)
    optimizer.update(net.params, net.gradient(x, t))
    copy.deepcopy(optimizer)
    pickle.dumps(optimizer)

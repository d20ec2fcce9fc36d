"""PyTorch (CPU, float64) as an independent oracle for the layers' forward and backward passes."""

import numpy
import pytest

from fastnet.layers import BatchNormalization, Convolution, Pooling, SoftmaxWithLoss
from fastnet.nets import TwoLayerNet

torch = pytest.importorskip("torch")
F = torch.nn.functional

F64 = numpy.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


def leaf(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def assert_close(actual, backend, expected_tensor, what):
    numpy.testing.assert_allclose(backend.to_numpy(actual), expected_tensor.detach().numpy(), **TOL, err_msg=what)


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, pad",
    [
        ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0),
        ((2, 3, 7, 6), (4, 3, 3, 2), 2, 1),
        ((1, 2, 9, 9), (3, 2, 5, 5), 3, 2),
    ],
)
def test_convolution_matches_conv2d(backend, rng, x_shape, w_shape, stride, pad):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    layer = Convolution(W, b, stride=stride, pad=pad, backend=backend, dtype=F64)
    out = layer.forward(backend.asarray(x))
    tx, tW, tb = leaf(x), leaf(W), leaf(b)
    expected = F.conv2d(tx, tW, tb, stride=stride, padding=pad)
    assert_close(out, backend, expected, "conv forward")
    G = rng.standard_normal(expected.shape)
    dx = layer.backward(backend.asarray(G))
    expected.backward(torch.tensor(G))
    assert_close(dx, backend, tx.grad, "conv dx")
    assert_close(layer.dW, backend, tW.grad, "conv dW")
    assert_close(layer.db, backend, tb.grad, "conv db")


@pytest.mark.parametrize(
    "x_shape, window, stride, pad",
    [
        ((2, 3, 6, 6), 2, 2, 0),
        ((2, 2, 7, 7), 3, 2, 1),  # overlapping windows with padding
        ((1, 2, 5, 5), 3, 1, 0),
    ],
)
def test_max_pooling_matches_max_pool2d(backend, rng, x_shape, window, stride, pad):
    # Distinct values: with ties the two libraries may route the gradient to different inputs.
    x = rng.permutation(int(numpy.prod(x_shape))).reshape(x_shape).astype(F64) / 10
    layer = Pooling(window, window, stride=stride, pad=pad, backend=backend)
    out = layer.forward(backend.asarray(x))
    tx = leaf(x)
    expected = F.max_pool2d(tx, window, stride=stride, padding=pad)
    assert_close(out, backend, expected, "pool forward")
    G = rng.standard_normal(expected.shape)
    dx = layer.backward(backend.asarray(G))
    expected.backward(torch.tensor(G))
    assert_close(dx, backend, tx.grad, "pool dx")


@pytest.mark.parametrize("x_shape", [(8, 5), (4, 3, 5, 2)])
def test_batchnorm_training_matches_batch_norm(backend, rng, x_shape):
    channels = x_shape[1]
    x = 3 * rng.standard_normal(x_shape) + 2
    gamma, beta = 1 + rng.standard_normal(channels), rng.standard_normal(channels)
    momentum = 0.9
    layer = BatchNormalization(gamma, beta, momentum=momentum, backend=backend, dtype=F64)
    out = layer.forward(backend.asarray(x), train_flg=True)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    running_mean, running_var = torch.zeros(channels, dtype=torch.float64), torch.ones(channels, dtype=torch.float64)
    expected = F.batch_norm(tx, running_mean, running_var, tg, tb, training=True, momentum=1 - momentum, eps=layer.eps)
    assert_close(out, backend, expected, "batchnorm forward")
    G = rng.standard_normal(x_shape)
    dx = layer.backward(backend.asarray(G))
    expected.backward(torch.tensor(G))
    assert_close(dx, backend, tx.grad, "batchnorm dx")
    assert_close(layer.dgamma, backend, tg.grad, "batchnorm dgamma")
    assert_close(layer.dbeta, backend, tb.grad, "batchnorm dbeta")
    # Running statistics: torch keeps the unbiased variance, fastnet (like the classic code) the biased one.
    per_sample = x.size // channels
    assert_close(layer.running_mean, backend, running_mean, "running mean")
    biased_var = momentum + (running_var - momentum) * (per_sample - 1) / per_sample
    assert_close(layer.running_var, backend, biased_var, "running var")


@pytest.mark.parametrize("one_hot", [False, True], ids=["int_labels", "one_hot"])
def test_softmax_with_loss_matches_cross_entropy(backend, rng, one_hot):
    n, classes = 6, 5
    x = 4 * rng.standard_normal((n, classes))
    labels = rng.integers(0, classes, n)
    t = numpy.eye(classes)[labels] if one_hot else labels
    layer = SoftmaxWithLoss(backend=backend)
    loss = layer.forward(backend.asarray(x), backend.asarray(t))
    tx = leaf(x)
    expected = F.cross_entropy(tx, torch.tensor(t))
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    expected.backward()
    assert_close(layer.backward(1), backend, tx.grad, "softmax dx")


def test_softmax_with_loss_is_stable_for_huge_logits(backend):
    x = numpy.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]])
    t = numpy.array([1, 1])
    loss = SoftmaxWithLoss(backend=backend).forward(backend.asarray(x), backend.asarray(t))
    expected = F.cross_entropy(torch.tensor(x), torch.tensor(t)).item()
    assert numpy.isfinite(float(loss)) and float(loss) == pytest.approx(expected, rel=1e-12)


def test_two_layer_net_gradient_matches_autograd(backend, rng):
    net = TwoLayerNet(12, 7, 4, weight_init_std=0.5, backend=backend, dtype=F64, seed=3)
    x, t = rng.standard_normal((5, 12)), rng.integers(0, 4, 5)
    grads = net.gradient(backend.asarray(x), backend.asarray(t))
    p = {k: leaf(backend.to_numpy(v)) for k, v in net.params.items()}
    hidden = torch.relu(torch.tensor(x) @ p["W1"] + p["b1"])
    loss = F.cross_entropy(hidden @ p["W2"] + p["b2"], torch.tensor(t))
    loss.backward()
    assert float(net.last_loss) == pytest.approx(loss.item(), rel=1e-12)
    for key in p:
        assert_close(grads[key], backend, p[key].grad, key)

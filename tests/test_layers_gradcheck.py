"""Every layer's backward agrees with float64 central differences of its forward.

Each check differentiates the random projection L = sum(forward(x) * G), whose output gradient
is exactly G, so one backward call with dout = G gives dL/dx and the parameter gradients.
"""

import numpy
import pytest

from fastnet.gradcheck import numerical_gradient
from fastnet.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu, Sigmoid, SoftmaxWithLoss
from fastnet.nets import Sequential

F64 = numpy.float64
SMOOTH_TOL = 1e-6


def relative_error(analytic, numeric, backend):
    """Largest element-wise |a - n| / (|a| + |n|), with a floor for entries that are both ~0."""
    a = backend.to_numpy(analytic).astype(F64)
    n = backend.to_numpy(numeric).astype(F64)
    assert a.shape == n.shape
    return float(numpy.max(numpy.abs(a - n) / numpy.maximum(numpy.abs(a) + numpy.abs(n), 1e-8)))


def check_layer(backend, layer, x, params=(), tol=SMOOTH_TOL, before_forward=lambda: None, seed=0):
    """Compare dx and every named parameter gradient with central differences of L = sum(out * G)."""
    before_forward()
    out = layer.forward(x)
    G = backend.asarray(numpy.random.default_rng(seed).standard_normal(out.shape))

    def projected_loss():
        before_forward()
        return (layer.forward(x) * G).sum()

    before_forward()
    layer.forward(x)
    dx = layer.backward(G)
    analytic = {"x": dx}
    analytic.update({name: getattr(layer, layer.grad_names[name]).copy() for name in params})
    numeric = {"x": numerical_gradient(projected_loss, x)}
    numeric.update({name: numerical_gradient(projected_loss, getattr(layer, name)) for name in params})
    for name in analytic:
        err = relative_error(analytic[name], numeric[name], backend)
        assert err < tol, f"{type(layer).__name__} d{name}: relative error {err:.2e}"


def away_from_zero(rng, shape, margin=0.1):
    """Values with |v| >= margin, so a ReLU kink is never crossed by a 1e-4 step."""
    u = rng.standard_normal(shape)
    return numpy.sign(u) * (margin + numpy.abs(u))


def distinct_values(rng, shape, spacing=0.01):
    """All-different values spaced far wider than the difference step: no ties in a max."""
    return (rng.permutation(int(numpy.prod(shape))).reshape(shape) - numpy.prod(shape) / 2) * spacing


def test_affine_with_nd_input(backend, rng):
    layer = Affine(rng.standard_normal((24, 5)), rng.standard_normal(5), backend=backend, dtype=F64)
    x = backend.asarray(rng.standard_normal((3, 2, 3, 4)))
    check_layer(backend, layer, x, params=("W", "b"))
    assert layer.backward(backend.asarray(numpy.ones((3, 5)))).shape == (3, 2, 3, 4)


def test_relu(backend, rng):
    x = backend.asarray(away_from_zero(rng, (4, 7)))
    check_layer(backend, Relu(backend=backend), x)


def test_sigmoid(backend, rng):
    x = backend.asarray(3 * rng.standard_normal((4, 7)))
    check_layer(backend, Sigmoid(backend=backend), x)


@pytest.mark.parametrize("one_hot", [False, True], ids=["int_labels", "one_hot"])
@pytest.mark.parametrize("dout", [1.0, 2.5])
def test_softmax_with_loss(backend, rng, one_hot, dout):
    n, classes = 5, 4
    labels = rng.integers(0, classes, n)
    t = numpy.eye(classes)[labels] if one_hot else labels
    t = backend.asarray(t)
    x = backend.asarray(2 * rng.standard_normal((n, classes)))
    layer = SoftmaxWithLoss(backend=backend)
    layer.forward(x, t)
    dx = layer.backward(dout)
    numeric = numerical_gradient(lambda: dout * layer.forward(x, t), x)
    assert relative_error(dx, numeric, backend) < SMOOTH_TOL


def test_dropout_with_fixed_mask(backend, rng):
    layer = Dropout(0.4, backend=backend, seed=7)

    def same_mask():
        layer.rng = backend.rng(7)  # every forward draws the identical mask

    x = backend.asarray(rng.standard_normal((6, 5)))
    check_layer(backend, layer, x, before_forward=same_mask)
    kept = backend.to_numpy(layer.mask)
    assert 0 < kept.sum() < kept.size  # the mask really drops some and keeps some


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 3, 2)], ids=["2d", "4d"])
def test_batchnorm(backend, rng, shape):
    channels = shape[1]
    layer = BatchNormalization(
        1 + 0.5 * rng.standard_normal(channels), rng.standard_normal(channels), backend=backend, dtype=F64
    )
    x = backend.asarray(2 * rng.standard_normal(shape) + 1)
    check_layer(backend, layer, x, params=("gamma", "beta"))


CONV_CASES = [  # (input H, W), filter (FH, FW), stride, pad
    ((5, 5), (3, 3), 1, 0),
    ((6, 5), (3, 2), 2, 1),
    ((7, 7), (3, 3), 3, 2),
    ((4, 6), (1, 1), 1, 0),
]


@pytest.mark.parametrize("size, fsize, stride, pad", CONV_CASES)
def test_convolution(backend, rng, size, fsize, stride, pad):
    W = rng.standard_normal((3, 2) + fsize)
    layer = Convolution(W, rng.standard_normal(3), stride=stride, pad=pad, backend=backend, dtype=F64)
    x = backend.asarray(rng.standard_normal((2, 2) + size))
    check_layer(backend, layer, x, params=("W", "b"))


POOL_CASES = [  # (input H, W), window (PH, PW), stride, pad
    ((4, 4), (2, 2), 2, 0),
    ((5, 5), (3, 3), 1, 0),  # overlapping windows
    ((5, 6), (3, 3), 2, 1),  # overlapping, padded
    ((5, 5), (2, 3), 1, 1),
    ((6, 6), (2, 2), 3, 0),  # windows with gaps between them
]


@pytest.mark.parametrize("size, window, stride, pad", POOL_CASES)
def test_max_pooling(backend, rng, size, window, stride, pad):
    layer = Pooling(*window, stride=stride, pad=pad, backend=backend)
    x = backend.asarray(distinct_values(rng, (2, 3) + size))
    check_layer(backend, layer, x)


def _affine_relu_net(backend, rng, fuse):
    net = Sequential(backend=backend, dtype=F64, fuse=fuse)
    net.add(
        "Affine1", Affine(rng.standard_normal((6, 8)), rng.standard_normal(8), backend=backend, dtype=F64), suffix=1
    )
    net.add("Relu1", Relu(backend=backend))
    net.add(
        "Affine2", Affine(rng.standard_normal((8, 3)), rng.standard_normal(3), backend=backend, dtype=F64), suffix=2
    )
    return net


def _conv_relu_net(backend, rng, fuse):
    net = Sequential(backend=backend, dtype=F64, fuse=fuse)
    net.add(
        "Conv1",
        Convolution(
            rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4), stride=1, pad=1, backend=backend, dtype=F64
        ),
        suffix=1,
    )
    net.add("Relu1", Relu(backend=backend))
    net.add("Pool1", Pooling(2, 2, stride=2, backend=backend))
    net.add(
        "Affine1", Affine(rng.standard_normal((16, 3)), rng.standard_normal(3), backend=backend, dtype=F64), suffix=2
    )
    return net


@pytest.mark.parametrize(
    "build, x_shape", [(_affine_relu_net, (5, 6)), (_conv_relu_net, (3, 2, 4, 4))], ids=["affine_relu", "conv_relu"]
)
def test_fused_and_unfused_paths_agree(backend, build, x_shape):
    nets = [build(backend, numpy.random.default_rng(3), fuse) for fuse in (True, False)]
    data = numpy.random.default_rng(4)
    x = backend.asarray(data.standard_normal(x_shape))
    t = backend.asarray(data.integers(0, 3, x_shape[0]))
    outputs = [backend.to_numpy(net.predict(x)) for net in nets]
    numpy.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-12, atol=0)
    grads = [net.gradient(x, t) for net in nets]
    assert set(grads[0]) == set(grads[1]) == set(nets[0].params)
    for key in grads[0]:
        numpy.testing.assert_allclose(
            backend.to_numpy(grads[0][key]), backend.to_numpy(grads[1][key]), rtol=1e-12, atol=1e-15, err_msg=key
        )
    # The fused pass still leaves the ReLU's output for its backward, as the unfused one does.
    relus = [net.layers["Relu1"].out for net in nets]
    numpy.testing.assert_allclose(backend.to_numpy(relus[0]), backend.to_numpy(relus[1]), rtol=1e-12)


IM2COL_CASES = [  # x shape, filter (FH, FW), stride, pad
    ((2, 3, 5, 5), (3, 3), 1, 0),
    ((1, 2, 6, 5), (3, 2), 2, 1),
    ((2, 1, 7, 7), (3, 3), 3, 2),
    ((3, 2, 4, 4), (2, 2), 2, 0),
    ((1, 1, 5, 4), (5, 4), 1, 0),
]


@pytest.mark.parametrize("x_shape, fsize, stride, pad", IM2COL_CASES)
def test_col2im_is_the_adjoint_of_im2col(backend, rng, x_shape, fsize, stride, pad):
    kernels = backend.kernels
    x = backend.asarray(rng.standard_normal(x_shape))
    col = kernels.im2col(x, *fsize, stride, pad)
    y = backend.asarray(rng.standard_normal(col.shape))
    back = kernels.col2im(y, x_shape, *fsize, stride, pad)
    assert back.shape == x_shape
    lhs = float((col * y).sum())
    rhs = float((x * back).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)

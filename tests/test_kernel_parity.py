"""Every fast kernel against the NumPy reference, on fresh random inputs of several shapes."""

import numpy
import pytest
from tolerances import assert_sums_close, gamma

from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.shapes import conv_output_size

REFERENCE = NumpyKernels(numpy)
DTYPES = [numpy.float32, numpy.float64]
# (N, C, H, W, FH, FW, stride, pad): odd sizes, batch 1, non-square filters, stride and pad.
CONV_CASES = [
    (1, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 7, 6, 3, 2, 2, 1),
    (3, 2, 9, 9, 5, 5, 1, 2),
    (4, 1, 28, 28, 5, 5, 1, 0),
    (2, 4, 8, 7, 1, 1, 3, 0),
]
POOL_CASES = [
    (1, 1, 4, 4, 2, 2, 2, 0),
    (2, 3, 7, 5, 2, 2, 2, 0),
    (3, 2, 9, 8, 3, 3, 2, 1),
    (2, 2, 6, 7, 3, 2, 1, 1),
    (5, 3, 24, 24, 2, 2, 2, 0),
]
MATRIX_SHAPES = [(1, 1), (1, 7), (5, 3), (100, 50), (33, 10)]


@pytest.fixture
def fast(backend):
    if backend.name == "numpy":
        pytest.skip("numpy is the reference itself")
    return backend


def to_host(backend, value):
    return numpy.asarray(backend.to_numpy(value))


def same(backend, got, expected, dtype, magnitude=None, terms=0):
    """``got`` from the fast kernel equals the reference's ``expected``: bit for bit where the op
    only moves, picks or masks values (``terms=0``), else within the rounding of sums of ``terms``
    products whose absolute values add up to ``magnitude`` (``tests/tolerances.py``)."""
    got = to_host(backend, got)
    assert got.dtype == numpy.dtype(dtype), f"dtype {got.dtype}, expected {numpy.dtype(dtype)}"
    assert got.shape == expected.shape
    if terms == 0:
        numpy.testing.assert_array_equal(got, expected)
    else:
        assert_sums_close(got, expected, magnitude, terms, dtype)


def absolute(*arrays):
    return [numpy.abs(a) for a in arrays]


def normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def distinct(rng, shape, dtype):
    """Distinct values in random order: max pooling then has a single maximum per window."""
    size = int(numpy.prod(shape))
    return (rng.permutation(size).reshape(shape) / size - 0.5).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,m", MATRIX_SHAPES)
def test_affine_and_relu_kernels(fast, rng, dtype, n, m):
    k, xp = fast.kernels, fast.asarray
    x, W, b = normal(rng, (n, 13), dtype), normal(rng, (13, m), dtype), normal(rng, (m,), dtype)
    dout = normal(rng, (n, m), dtype)
    magnitude = REFERENCE.affine_forward(*absolute(x, W, b))  # 13 products and the bias per value
    same(fast, k.affine_forward(xp(x), xp(W), xp(b)), REFERENCE.affine_forward(x, W, b), dtype, magnitude, 14)
    out = REFERENCE.affine_relu_forward(x, W, b)
    same(fast, k.affine_relu_forward(xp(x), xp(W), xp(b)), out, dtype, magnitude, 14)
    magnitudes = REFERENCE.affine_backward(*absolute(x, W, dout))
    for need_dx in (True, False):
        got = k.affine_backward(xp(x), xp(W), xp(dout), need_dx)
        expected = REFERENCE.affine_backward(x, W, dout, need_dx)
        assert (got[0] is None) == (not need_dx)
        # dx sums over the m outputs, dW and db over the n rows
        for g, e, size, terms in zip(got, expected, magnitudes, (m, n, n), strict=True):
            if e is not None:
                same(fast, g, e, dtype, size, terms)
    same(fast, k.bias_grad(xp(dout)), REFERENCE.bias_grad(dout), dtype, REFERENCE.bias_grad(abs(dout)), n)
    same(fast, k.relu_forward(xp(dout)), REFERENCE.relu_forward(dout), dtype)
    same(fast, k.relu_backward(xp(dout), xp(out)), REFERENCE.relu_backward(dout, out), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 2), (1, 10), (7, 3), (100, 10)])
@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_cross_entropy(fast, rng, dtype, n, c, one_hot):
    x = (normal(rng, (n, c), dtype) * 5).astype(dtype)
    labels = rng.integers(0, c, n)
    t = numpy.eye(c, dtype=dtype)[labels] if one_hot else labels
    loss, y = fast.kernels.softmax_cross_entropy(fast.asarray(x), fast.asarray(t))
    ref_loss, ref_y = REFERENCE.softmax_cross_entropy(x, t)
    # Rounding z = x - max costs u*|z|, which exp turns into a relative error of the same size; the
    # row sum adds c roundings and carries the largest such error into every y: per value at most
    # (|z| + max|z| + c + 5) u, so 2 max|z| + c + 5 "terms" bound it.
    spread = float(numpy.abs(x - x.max(axis=1, keepdims=True)).max())
    terms = int(numpy.ceil(2 * spread)) + c + 5
    same(fast, y, ref_y, dtype, ref_y, terms)
    assert to_host(fast, loss).dtype == numpy.dtype(dtype)
    # Each row's loss log(sum) - z_t adds log's rounding to that; the mean adds n more terms.
    row_size = float(numpy.log(numpy.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1)).max()) + spread + 1
    assert_sums_close(to_host(fast, loss), ref_loss, row_size, terms + n + 1, dtype, "loss")
    for dout in (1.0, 0.5):
        got = fast.kernels.softmax_cross_entropy_backward(y, fast.asarray(t), dout)
        expected = REFERENCE.softmax_cross_entropy_backward(ref_y, t, dout)
        same(fast, got, expected, dtype, (ref_y + 1) * dout / n, terms + 3)


def test_softmax_cross_entropy_is_stable_for_huge_logits(fast):
    x = numpy.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=numpy.float32)
    loss, y = fast.kernels.softmax_cross_entropy(fast.asarray(x), fast.asarray(numpy.array([0, 2])))
    assert numpy.isfinite(to_host(fast, y)).all()
    numpy.testing.assert_allclose(float(loss), numpy.log(3) / 2, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels(fast, rng, dtype, case):
    n, c, h, w, fh, fw, stride, pad = case
    k = fast.kernels
    oh, ow = conv_output_size(h, fh, stride, pad), conv_output_size(w, fw, stride, pad)
    x = normal(rng, (n, c, h, w), dtype)
    col = REFERENCE.im2col(x, fh, fw, stride, pad)
    same(fast, k.im2col(fast.asarray(x), fh, fw, stride, pad), col, dtype)
    dcol = normal(rng, col.shape, dtype)
    overlap = -(-fh // stride) * -(-fw // stride)  # windows that cover one pixel, at most
    same(
        fast,
        k.col2im(fast.asarray(dcol), x.shape, fh, fw, stride, pad),
        REFERENCE.col2im(dcol, x.shape, fh, fw, stride, pad),
        dtype,
        REFERENCE.col2im(abs(dcol), x.shape, fh, fw, stride, pad),
        overlap,
    )
    rows, b = normal(rng, (n * oh * ow, 4), dtype), normal(rng, (4,), dtype)
    for relu in (False, True):
        got = k.conv_bias_act(fast.asarray(rows), fast.asarray(b), n, oh, ow, relu)
        same(
            fast,
            got,
            REFERENCE.conv_bias_act(rows.copy(), b, n, oh, ow, relu),
            dtype,
            REFERENCE.conv_bias_act(abs(rows), abs(b), n, oh, ow),
            1,
        )
    nchw = normal(rng, (n, 4, oh, ow), dtype)
    same(fast, k.nchw_to_rows(fast.asarray(nchw)), REFERENCE.nchw_to_rows(nchw), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_is_the_adjoint_of_im2col(backend, rng, dtype, case):
    """<im2col(x), y> == <x, col2im(y)> on every backend, the reference included."""
    n, c, h, w, fh, fw, stride, pad = case
    k = backend.kernels
    x = rng.standard_normal((n, c, h, w))
    oh, ow = conv_output_size(h, fh, stride, pad), conv_output_size(w, fw, stride, pad)
    y = rng.standard_normal((n * oh * ow, c * fh * fw))
    col = to_host(backend, k.im2col(backend.asarray(x.astype(dtype)), fh, fw, stride, pad))
    img = to_host(backend, k.col2im(backend.asarray(y.astype(dtype)), x.shape, fh, fw, stride, pad))
    assert col.dtype == img.dtype == numpy.dtype(dtype)
    lhs = numpy.vdot(col.astype(numpy.float64), y.astype(dtype).astype(numpy.float64))
    rhs = numpy.vdot(x.astype(dtype).astype(numpy.float64), img.astype(numpy.float64))
    # im2col only copies; col2im rounds each pixel's sum of overlapping windows in dtype, and the
    # two dot products round in float64 over every term.
    overlap, total = -(-fh // stride) * -(-fw // stride), col.size
    size = numpy.vdot(numpy.abs(col.astype(numpy.float64)), numpy.abs(y.astype(dtype).astype(numpy.float64)))
    assert abs(lhs - rhs) <= (gamma(overlap + 1, dtype) + 2 * gamma(total, numpy.float64)) * size


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool(backend, rng, dtype, case):
    n, c, h, w, ph, pw, stride, pad = case
    x = distinct(rng, (n, c, h, w), dtype)
    ref_out, ref_cache = REFERENCE.maxpool_forward(x, ph, pw, stride, pad)
    out, cache = backend.kernels.maxpool_forward(backend.asarray(x), ph, pw, stride, pad)
    same(backend, out, ref_out, dtype)
    dout = normal(rng, ref_out.shape, dtype)
    dx = backend.kernels.maxpool_backward(backend.asarray(dout), cache, x.shape, ph, pw, stride, pad)
    expected = REFERENCE.maxpool_backward(dout, ref_cache, x.shape, ph, pw, stride, pad)
    # Overlapping windows (stride < size) add several gradients into one pixel.
    overlap = -(-ph // stride) * -(-pw // stride)
    same(
        backend,
        dx,
        expected,
        dtype,
        REFERENCE.maxpool_backward(abs(dout), ref_cache, x.shape, ph, pw, stride, pad),
        overlap,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_takes_the_first_nan_and_the_first_of_equal_maxima(backend, rng, dtype, case):
    """As numpy's max and argmax: a window holding NaN gives its first NaN, ties the first maximum;
    the gradient then goes to that position."""
    n, c, h, w, ph, pw, stride, pad = case
    x = numpy.round(normal(rng, (n, c, h, w), dtype))  # few distinct values: many ties
    x.flat[rng.choice(x.size, size=max(2, x.size // 9), replace=False)] = numpy.nan
    ref_out, ref_cache = REFERENCE.maxpool_forward(x, ph, pw, stride, pad)
    out, cache = backend.kernels.maxpool_forward(backend.asarray(x), ph, pw, stride, pad)
    assert numpy.isnan(ref_out).any() and not numpy.isnan(ref_out).all()
    numpy.testing.assert_array_equal(to_host(backend, out), ref_out)  # NaN where NaN
    dout = normal(rng, ref_out.shape, dtype)
    dx = backend.kernels.maxpool_backward(backend.asarray(dout), cache, x.shape, ph, pw, stride, pad)
    expected = REFERENCE.maxpool_backward(dout, ref_cache, x.shape, ph, pw, stride, pad)
    overlap = -(-ph // stride) * -(-pw // stride)
    magnitude = REFERENCE.maxpool_backward(abs(dout), ref_cache, x.shape, ph, pw, stride, pad)
    same(backend, dx, expected, dtype, magnitude, overlap if overlap > 1 else 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_relu_backward_is_the_pooling_then_the_relu_mask(backend, rng, dtype, case):
    """The fused backward of a ReLU and the pooling after it equals the two backwards in turn,
    bit for bit where windows do not overlap: about half the ReLU's outputs are 0 (the first
    window's maximum among them, whose gradient the mask then stops), odd sizes leave a last row or column
    in no window, and a -0.0 gradient comes out as the reference's sum from zero makes it."""
    n, c, h, w, ph, pw, stride, pad = case
    relu_out = numpy.maximum(distinct(rng, (n, c, h, w), dtype), 0)
    relu_out[:, :, :ph, :pw] = 0  # a window whose maximum is a 0 of the ReLU (the first one wins)
    ref_out, ref_cache = REFERENCE.maxpool_forward(relu_out, ph, pw, stride, pad)
    _, cache = backend.kernels.maxpool_forward(backend.asarray(relu_out), ph, pw, stride, pad)
    dout = normal(rng, ref_out.shape, dtype)
    dout.flat[::7] = -0.0
    expected = REFERENCE.relu_backward(
        REFERENCE.maxpool_backward(dout, ref_cache, relu_out.shape, ph, pw, stride, pad), relu_out
    )
    assert (ref_out == 0).any() and (expected != 0).any()  # the mask matters, and lets some through
    got = backend.kernels.maxpool_relu_backward(
        backend.asarray(dout), cache, backend.asarray(relu_out), relu_out.shape, ph, pw, stride, pad
    )
    overlap = -(-ph // stride) * -(-pw // stride)
    magnitude = REFERENCE.maxpool_backward(abs(dout), ref_cache, relu_out.shape, ph, pw, stride, pad)
    same(backend, got, expected, dtype, magnitude, overlap if overlap > 1 else 0)
    if overlap == 1:
        assert numpy.array_equal(numpy.signbit(to_host(backend, got)), numpy.signbit(expected))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_gradient_flows_only_to_each_window_maximum(backend, rng, dtype):
    x = distinct(rng, (2, 3, 6, 6), dtype)
    out, cache = backend.kernels.maxpool_forward(backend.asarray(x), 2, 2, 2, 0)
    dx = to_host(
        backend,
        backend.kernels.maxpool_backward(backend.asarray(numpy.ones(out.shape, dtype)), cache, x.shape, 2, 2, 2, 0),
    )
    windows = x.reshape(2, 3, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 3, 4)
    is_max = x == numpy.repeat(numpy.repeat(windows.max(axis=-1), 2, axis=2), 2, axis=3)
    numpy.testing.assert_array_equal(dx, is_max.astype(dtype))


def test_kernels_leave_their_inputs_alone(fast, rng):
    host = [
        normal(rng, (3, 2, 7, 7), numpy.float32),
        normal(rng, (3 * 25, 4), numpy.float32),
        normal(rng, (4,), numpy.float32),
        normal(rng, (5, 4), numpy.float32),
        numpy.array([0, 3, 1, 2, 0]),
    ]
    x, rows, b, y, t = (fast.asarray(a) for a in host)
    k = fast.kernels
    k.im2col(x, 3, 3, 1, 1)
    k.conv_bias_act(rows, b, 3, 5, 5, relu=True)
    k.nchw_to_rows(x)
    k.maxpool_forward(x, 2, 2, 2, 0)
    k.relu_backward(y, y)
    k.affine_relu_forward(y, y.T, y[:, 0])
    k.softmax_cross_entropy(y, t)
    k.softmax_cross_entropy_backward(y, t)
    for original, device in zip(host, (x, rows, b, y, t), strict=True):
        numpy.testing.assert_array_equal(to_host(fast, device), original)


def test_conv_layout_is_contiguous_nchw(fast, rng):
    rows = fast.asarray(normal(rng, (2 * 3 * 4, 5), numpy.float32))
    out = fast.kernels.conv_bias_act(rows, fast.asarray(numpy.zeros(5, numpy.float32)), 2, 3, 4)
    assert out.shape == (2, 5, 3, 4) and out.flags.c_contiguous


# (N, C, H, W, FN, FH, FW, stride, pad): the book's 3x3 layers, wide filters, strides, pads wider than the filter
CONV_LAYER_CASES = [
    (3, 1, 28, 28, 4, 3, 3, 1, 1),
    (2, 3, 7, 6, 4, 3, 2, 2, 1),
    (2, 3, 9, 9, 5, 5, 5, 1, 2),
    (5, 4, 8, 8, 6, 3, 3, 1, 2),
    (2, 4, 8, 7, 3, 1, 1, 3, 0),
    (2, 2, 5, 5, 3, 3, 3, 1, 3),
    (3, 2, 6, 9, 4, 2, 4, 1, 0),
    (1, 2, 10, 7, 3, 4, 3, 3, 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_LAYER_CASES)
def test_conv_forward_and_backward(fast, rng, dtype, case):
    n, c, h, w, fn, fh, fw, stride, pad = case
    x, W, b = normal(rng, (n, c, h, w), dtype), normal(rng, (fn, c, fh, fw), dtype), normal(rng, (fn,), dtype)
    k, put = fast.kernels, fast.asarray
    size, size_cache = REFERENCE.conv_forward(*absolute(x, W, b), stride, pad)
    for relu in (False, True):
        want, ref_cache = REFERENCE.conv_forward(x, W, b, stride, pad, relu)
        got, cache = k.conv_forward(put(x), put(W), put(b), stride, pad, relu)
        same(fast, got, want, dtype, size, c * fh * fw + 1)
    dout = normal(rng, want.shape, dtype)
    sizes = REFERENCE.conv_backward(abs(dout), abs(W), size_cache)
    oh, ow = want.shape[2:]
    # dx: each pixel gathers fn filters over the windows covering it; dW and db sum over n*oh*ow
    terms = (fn * -(-fh // stride) * -(-fw // stride), n * oh * ow, n * oh * ow)
    for need_dx in (True, False):
        expected = REFERENCE.conv_backward(dout, W, ref_cache, need_dx)
        result = k.conv_backward(put(dout), put(W), cache, need_dx)
        assert (result[0] is None) == (not need_dx)
        for g, e, magnitude, count in zip(result, expected, sizes, terms, strict=True):
            if e is not None:
                same(fast, g, e, dtype, magnitude, count)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,m", MATRIX_SHAPES)
def test_affine_relu_forward_finite_is_affine_relu_forward_and_a_flag(backend, rng, dtype, n, m):
    """The same bits as the backend's own affine_relu_forward; the flag says whether x @ W + b
    was finite before the ReLU (an inf that the ReLU turns into 0 included)."""
    k, xp = backend.kernels, backend.asarray
    x, W, b = normal(rng, (n, 13), dtype), normal(rng, (13, m), dtype), normal(rng, (m,), dtype)
    out, finite = k.affine_relu_forward_finite(xp(x), xp(W), xp(b))
    same(backend, out, to_host(backend, k.affine_relu_forward(xp(x), xp(W), xp(b))), dtype)
    assert bool(finite)
    W_negative = -numpy.abs(W)  # +inf in x: -inf in every output of its row, 0 after the ReLU
    for bad in (numpy.nan, numpy.inf, -numpy.inf):
        x_bad = x.copy()
        x_bad[n - 1, 4] = bad
        with numpy.errstate(invalid="ignore"):
            out, finite = k.affine_relu_forward_finite(xp(x_bad), xp(W_negative), xp(b))
        assert not bool(finite), bad
    huge = numpy.full((13, m), numpy.finfo(dtype).max, dtype)
    with numpy.errstate(over="ignore"):
        _, finite = k.affine_relu_forward_finite(xp(numpy.abs(x) + 1), xp(huge), xp(b))
    assert not bool(finite)  # an overflow too: the net then reads x to tell the two apart


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (50,), (784, 50), (3, 2, 5, 5)])
def test_sgd_update_is_the_numpy_expression_bit_for_bit(backend, rng, dtype, shape):
    for lr in (0.01, 3, numpy.float64(0.1), numpy.float32(0.1)):
        param, grad = normal(rng, shape, dtype), normal(rng, shape, dtype)
        expected = param.copy()
        expected -= lr * grad
        on_backend = backend.asarray(param)
        assert backend.kernels.sgd_update(on_backend, backend.asarray(grad), lr) is None
        same(backend, on_backend, expected, dtype)


def test_sgd_update_writes_through_a_non_contiguous_parameter(backend, rng):
    whole = backend.asarray(normal(rng, (6, 8), numpy.float32))
    grad = backend.asarray(normal(rng, (6, 4), numpy.float32))
    expected = to_host(backend, whole).copy()
    expected[:, ::2] -= 0.5 * to_host(backend, grad)
    backend.kernels.sgd_update(whole[:, ::2], grad, 0.5)
    same(backend, whole, expected, numpy.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (50,), (784, 50), (3, 2, 5, 5)])
def test_momentum_and_adam_updates_are_the_optimizers_expressions_bit_for_bit(backend, rng, dtype, shape):
    """Several steps, so the moments are not zero; signed zeros and exact ties included."""
    from fastnet.optim import adam_step, momentum_step

    param, v = normal(rng, shape, dtype), normal(rng, shape, dtype)
    m, v2 = normal(rng, shape, dtype), numpy.abs(normal(rng, shape, dtype))
    small = param * dtype(1e-3)  # the size of a step: its last bits then show in the parameter
    want = [a.copy() for a in (small, v, small, m, v2)]
    got = [backend.asarray(a.copy()) for a in want]  # asarray may hand back the same array
    for step in range(3):
        grad = normal(rng, shape, dtype)
        grad.flat[::3] = -0.0
        momentum_step(want[0], grad, want[1], 0.05, 0.9)
        adam_step(want[2], grad, want[3], want[4], 0.001 * (step + 1), 0.9, 0.999)
        on_backend = backend.asarray(grad)
        assert backend.kernels.momentum_update(got[0], on_backend, got[1], 0.05, 0.9) is None
        assert backend.kernels.adam_update(got[2], on_backend, got[3], got[4], 0.001 * (step + 1), 0.9, 0.999) is None
    for g, w in zip(got, want, strict=True):
        same(backend, g, w, dtype)
        assert numpy.array_equal(numpy.signbit(to_host(backend, g)), numpy.signbit(w))

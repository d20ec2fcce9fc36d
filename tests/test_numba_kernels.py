"""The numba backend: how it loads, its disk cache, and training that matches the numpy backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from tolerances import assert_sums_close

from fastnet.backends import get_backend, unavailable_reason
from fastnet.nets.convnets import SimpleConvNet
from fastnet.nets.mlp import TwoLayerNet
from fastnet.optim import SGD

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    unavailable_reason("numba") is not None, reason=f"numba backend unavailable: {unavailable_reason('numba')}"
)


def run_python(code, **env):
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_backend_loads_with_numpy_arrays_and_numba_kernels():
    from fastnet.backends.numba_kernels import NumbaKernels

    backend = get_backend("numba")
    assert backend.name == "numba"
    assert backend.xp is numpy
    assert isinstance(backend.kernels, NumbaKernels)


def test_importing_fastnet_does_not_import_numba():
    code = "import sys, fastnet; print('numba' in sys.modules)"
    assert run_python(code) == "False"


def test_cache_can_be_switched_off():
    code = (
        "import json, numpy, fastnet, fastnet.backends.numba_kernels as k, fastnet.backends.numba_jit as j;"
        "b = fastnet.get_backend('numba');"
        "x = numpy.arange(24, dtype=numpy.float32).reshape(2, 3, 4) - 12;"
        "out = b.kernels.relu_forward(x);"
        "print(json.dumps([j.CACHE, [c.__name__ for c in type(k._relu._cache).__mro__], float(out.sum())]))"
    )
    off = json.loads(run_python(code, FASTNET_NUMBA_CACHE="0"))
    on = json.loads(run_python(code, FASTNET_NUMBA_CACHE="1"))
    expected = float(numpy.maximum(numpy.arange(24) - 12, 0).sum())
    assert off[0] is False and on[0] is True
    # numba's own record of the choice (the cache on is numba's FunctionCache, made forgiving)
    assert off[1][0] == "NullCache" and "FunctionCache" in on[1]
    assert off[2] == on[2] == expected


def test_an_unreadable_cache_is_compiled_afresh_not_a_traceback(tmp_path):
    """Cache files cut short by a full disk or overwritten with garbage cost a compilation."""
    code = (
        "import numpy; from fastnet.nets.mlp import TwoLayerNet; "
        "net = TwoLayerNet(6, 4, 3, backend='numba', seed=1); "
        "x = numpy.linspace(0, 1, 12, dtype=numpy.float32).reshape(2, 6); "
        "print(float(net.loss(x, numpy.array([0, 2]))))"
    )
    cache = tmp_path / "cache"
    first = run_python(code, NUMBA_CACHE_DIR=str(cache))
    written = [p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert written
    for path in written:
        path.write_bytes(b"\x80garbage" if path.suffix == ".nbi" else b"")
    assert run_python(code, NUMBA_CACHE_DIR=str(cache)) == first
    assert run_python(code, NUMBA_CACHE_DIR=str(cache)) == first  # and the rewritten cache reads back


def train_losses(net, x, t, steps, lr=0.1):
    optimizer = SGD(lr=lr)
    losses = []
    for _ in range(steps):
        grads = net.gradient(x, t)
        losses.append(float(net.last_loss))
        optimizer.update(net.params, grads)
    return numpy.array(losses)


def random_data(shape, n, seed=0):
    rng = numpy.random.default_rng(seed)
    return rng.random((n, *shape), dtype=numpy.float32), rng.integers(0, 10, n)


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-4), ("float64", 1e-10)])
def test_two_layer_net_trains_like_numpy(dtype, rtol):
    x, t = random_data((784,), 300)
    x = x.astype(dtype)
    losses = {
        name: train_losses(TwoLayerNet(784, 50, 10, backend=name, dtype=dtype, seed=3), x, t, 20)
        for name in ("numpy", "numba")
    }
    assert losses["numba"][-1] < losses["numba"][0]  # it really trains
    numpy.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=rtol)


def test_simple_conv_net_trains_like_numpy():
    x, t = random_data((1, 12, 12), 40, seed=1)
    conv = {"filter_num": 6, "filter_size": 3, "pad": 1, "stride": 1}
    losses, params = {}, {}
    for name in ("numpy", "numba"):
        net = SimpleConvNet(input_dim=(1, 12, 12), conv_param=conv, hidden_size=20, backend=name, seed=5)
        losses[name] = train_losses(net, x, t, 5)
        params[name] = {k: numpy.array(v) for k, v in net.params.items()}
    numpy.testing.assert_allclose(losses["numba"], losses["numpy"], rtol=1e-4)
    for key in params["numpy"]:
        numpy.testing.assert_allclose(params["numba"][key], params["numpy"][key], rtol=1e-4, atol=1e-6)


def test_out_of_range_label_is_a_clear_error_at_the_layer():
    """Labels are checked before the kernel (its contract): the user sees one InputError."""
    from fastnet.errors import InputError
    from fastnet.layers import SoftmaxWithLoss

    layer = SoftmaxWithLoss(backend="numba")
    with pytest.raises(InputError, match="label 7"):
        layer.forward(numpy.zeros((2, 3), numpy.float32), numpy.array([0, 7]))


def test_cross_entropy_kernel_never_reads_past_a_row():
    """Unchecked labels (trusted inputs) break the contract; the kernel still stays in bounds."""
    kernels = get_backend("numba").kernels
    x = numpy.zeros((2, 3), numpy.float32)
    with pytest.raises(IndexError):
        kernels.softmax_cross_entropy(x, numpy.array([0, 7]))
    _, y = kernels.softmax_cross_entropy(x, numpy.array([0, 1]))
    with pytest.raises(IndexError):
        kernels.softmax_cross_entropy_backward(y, numpy.array([0, 7]))


@pytest.mark.parametrize("x_dtype,dout_dtype", [(numpy.float16, numpy.float32), (numpy.float32, numpy.float16)])
def test_pooling_backward_follows_its_forward_path_not_the_dtype_of_dout(x_dtype, dout_dtype):
    """A float16 x takes the reference forward, a float32 dout could take the fast backward (and
    the other way round): the gradient must still be the reference's."""
    from fastnet.backends.numpy_kernels import NumpyKernels

    rng = numpy.random.default_rng(4)
    x = (rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 216 - 0.5).astype(x_dtype)
    dout = rng.standard_normal((2, 3, 3, 3)).astype(dout_dtype)
    reference = NumpyKernels(numpy)
    want_out, want_cache = reference.maxpool_forward(x, 2, 2, 2, 0)
    want = reference.maxpool_backward(dout, want_cache, x.shape, 2, 2, 2, 0)
    kernels = get_backend("numba").kernels
    out, cache = kernels.maxpool_forward(x, 2, 2, 2, 0)
    got = kernels.maxpool_backward(dout, cache, x.shape, 2, 2, 2, 0)
    numpy.testing.assert_array_equal(out, want_out)
    assert got.dtype == want.dtype
    numpy.testing.assert_allclose(got, want, rtol=1e-3)


def numba_kernels(**settings):
    """A fresh numba kernel set with its convolution settings changed (the backend's stays as it is)."""
    from fastnet.backends.numba_kernels import NumbaKernels

    kernels = NumbaKernels()
    for name, value in settings.items():
        setattr(kernels, name, value)
    return kernels


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("window", [(2, 2, 2, 0), (2, 2, 1, 0), (3, 3, 2, 1)])
def test_pooling_in_shares_of_the_batch_matches_one_thread(threads, window):
    """Pooling shares a batch among the convolution threads: shares that do not divide the batch
    evenly give the very same output, positions and gradients as one thread."""
    rng = numpy.random.default_rng(9)
    x = rng.standard_normal((7, 3, 9, 8)).astype(numpy.float32)
    x.flat[::37] = numpy.nan
    relu_out = numpy.maximum(x, 0)
    alone, shared = numba_kernels(conv_threads=1), numba_kernels(conv_threads=threads, min_share_pool_elements=1)
    assert len(shared._shares(7, 3 * 9 * 8, shared.min_share_pool_elements)) == threads
    results = []
    for kernels in (alone, shared):
        out, cache = kernels.maxpool_forward(relu_out, *window)
        dout = numpy.random.default_rng(10).standard_normal(out.shape).astype(numpy.float32)
        results.append(
            (
                out,
                cache.value,
                kernels.maxpool_backward(dout, cache, x.shape, *window),
                kernels.maxpool_relu_backward(dout, cache, relu_out, x.shape, *window),
            )
        )
    for one, many in zip(*results, strict=True):
        numpy.testing.assert_array_equal(many, one)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("threads,chunk_bytes", [(1, 1), (2, 1), (3, 5000), (2, 1 << 19)])
@pytest.mark.parametrize("stride,pad", [(1, 1), (1, 0), (2, 1), (1, 3)])
def test_convolution_in_chunks_and_threads_matches_the_reference(dtype, threads, chunk_bytes, stride, pad):
    """Chunks of one image or several, shares of the batch that do not divide evenly: the same answer."""
    from fastnet.backends.numpy_kernels import NumpyKernels

    rng = numpy.random.default_rng(8)
    x = rng.standard_normal((7, 3, 9, 8)).astype(dtype)
    W, b = rng.standard_normal((5, 3, 3, 3)).astype(dtype), rng.standard_normal(5).astype(dtype)
    # min_share_macs 1: every thread gets a share, however little work (the default keeps a
    # batch this small on one thread)
    settings = {"conv_threads": threads, "conv_chunk_bytes": chunk_bytes, "min_share_macs": 1}
    reference, kernels = NumpyKernels(numpy), numba_kernels(**settings)
    want, ref_cache = reference.conv_forward(x, W, b, stride, pad, True)
    got, cache = kernels.conv_forward(x, W, b, stride, pad, True)
    size, size_cache = reference.conv_forward(numpy.abs(x), numpy.abs(W), numpy.abs(b), stride, pad)
    assert_sums_close(got, want, size, 3 * 3 * 3 + 1, dtype, "out")
    dout = rng.standard_normal(want.shape).astype(dtype)
    sizes = reference.conv_backward(numpy.abs(dout), numpy.abs(W), size_cache)
    n, _, oh, ow = want.shape
    terms = (5 * 3 * 3, n * oh * ow, n * oh * ow)  # dx: 5 filters over <= 3x3 windows; dW, db: every pixel
    for g, e, magnitude, count, what in zip(
        kernels.conv_backward(dout, W, cache),
        reference.conv_backward(dout, W, ref_cache),
        sizes,
        terms,
        ("dx", "dW", "db"),
        strict=True,
    ):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert_sums_close(g, e, magnitude, count, dtype, what)
    again = kernels.conv_backward(dout, W, kernels.conv_forward(x, W, b, stride, pad, True)[1])
    for g, h in zip(again, kernels.conv_backward(dout, W, cache), strict=True):
        numpy.testing.assert_array_equal(g, h)  # deterministic: the partial sums add in a fixed order


@pytest.mark.parametrize("need_dx", [True, False])
def test_large_dense_products_split_among_the_convolution_threads_match_the_reference(need_dx):
    """With the BLAS on one thread beside several convolution threads (a conv net's choice), a
    large Affine's products run in row shares on those threads; the answers are the reference's."""
    from fastnet.backends.numpy_kernels import NumpyKernels
    from fastnet.threads import LARGE_PRODUCT_MACS, ThreadChoice, using_threads

    rng = numpy.random.default_rng(13)
    n, k, m = 64, 4096, 128
    assert n * k * m >= LARGE_PRODUCT_MACS
    x, W = rng.standard_normal((n, k)).astype(numpy.float32), rng.standard_normal((k, m)).astype(numpy.float32)
    b, dout = rng.standard_normal(m).astype(numpy.float32), rng.standard_normal((n, m)).astype(numpy.float32)
    kernels, reference = numba_kernels(), NumpyKernels(numpy)
    shares = []
    split = kernels._split_images
    kernels._split_images = lambda rows, part, macs, least, blas=True: (
        shares.append(len(kernels._shares(rows, macs, least))) or split(rows, part, macs, least, blas)
    )
    with using_threads(ThreadChoice(1, 2, "a conv net's choice")):
        out = kernels.affine_relu_forward(x, W, b)
        dx, dW, db = kernels.affine_backward(x, W, dout, need_dx)
    assert shares == [2, 2]
    assert_sums_close(out, reference.affine_relu_forward(x, W, b), abs(x) @ abs(W) + abs(b), k + 1, numpy.float32)
    want_dx, want_dW, want_db = reference.affine_backward(x, W, dout, need_dx)
    assert (dx is None) == (not need_dx)
    if need_dx:
        assert_sums_close(dx, want_dx, abs(dout) @ abs(W).T, m, numpy.float32)
    assert_sums_close(dW, want_dW, abs(x).T @ abs(dout), n, numpy.float32)
    numpy.testing.assert_array_equal(db, kernels.bias_grad(dout))
    with using_threads(ThreadChoice(2, 2, "an MLP's choice")):  # a multi-threaded BLAS does it whole
        shares.clear()
        kernels.affine_relu_forward(x, W, b)
        kernels.affine_backward(x, W, dout, need_dx)
        assert shares == []


@pytest.mark.parametrize("algorithm,stride", [("im2col", 1), ("im2col", 2), ("winograd", 1)])
def test_convolution_gives_the_same_bits_on_any_number_of_threads(algorithm, stride):
    """The threads take chunks as they come free, and the chunks' gradients are added in batch
    order: one, two or three threads give the very same outputs and gradients."""
    rng = numpy.random.default_rng(11)
    x = rng.standard_normal((13, 16, 10, 9)).astype(numpy.float32)
    W, b = rng.standard_normal((8, 16, 3, 3)).astype(numpy.float32), rng.standard_normal(8).astype(numpy.float32)
    results = []
    for threads in (1, 2, 3):
        kernels = numba_kernels(conv_threads=threads, min_share_macs=1, conv_algorithm=algorithm)
        assert kernels._conv_algorithm_for(x.shape, W.shape, stride) == algorithm
        assert len(kernels._chunks_of(13, 13)) >= threads  # every thread can get a chunk
        out, cache = kernels.conv_forward(x, W, b, stride, 1, True)
        dout = numpy.random.default_rng(12).standard_normal(out.shape).astype(numpy.float32)
        results.append((out, *kernels.conv_backward(dout, W, cache)))
    for many in results[1:]:
        for got, want in zip(many, results[0], strict=True):
            numpy.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "stride,pad,filt", [(1, 1, (3, 3)), (1, 0, (2, 4)), (1, 3, (3, 3)), (2, 1, (3, 2)), (3, 2, (4, 3))]
)
def test_column_builders_and_their_adjoints(stride, pad, filt):
    """<columns(x), y> == <x, image_grad(y)> for the padded-plane (stride 1) and the general builders."""
    from fastnet.shapes import window_output_hw

    rng = numpy.random.default_rng(2)
    kernels = numba_kernels()
    g, c, h, w = 3, 2, 9, 7
    W = numpy.zeros((4, c, *filt))
    x = rng.standard_normal((g, c, h, w))
    oh, ow, run, _ = kernels._conv_plan(x.shape, W, stride, pad)
    assert (oh, ow) == window_output_hw(h, w, *filt, stride, pad) and run == oh * ow
    padded = kernels._padded_buffer(g, c, h, w, pad, x.dtype) if stride == 1 else None
    cols = numpy.full((c * filt[0] * filt[1], g * run), numpy.nan)
    kernels._columns(x, *filt, stride, pad, oh, ow, padded, cols)
    y = rng.standard_normal(cols.shape)
    summed = kernels._padded_buffer(g, c, h, w, pad, x.dtype) if stride == 1 else None
    dx = numpy.full(x.shape, numpy.nan)
    kernels._image_grad(y, *filt, stride, pad, oh, ow, summed, dx)
    lhs = numpy.vdot(cols, y)
    numpy.testing.assert_allclose(lhs, numpy.vdot(x, dx), rtol=1e-12)


def test_convolution_backward_follows_its_forward_path():
    """A float16 x takes the reference forward; the backward follows it, whatever dout's dtype."""
    from fastnet.backends.numpy_kernels import NumpyKernels

    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6)).astype(numpy.float16)
    W, b = rng.standard_normal((4, 3, 3, 3)).astype(numpy.float16), numpy.zeros(4, numpy.float16)
    kernels, reference = get_backend("numba").kernels, NumpyKernels(numpy)
    out, cache = kernels.conv_forward(x, W, b, 1, 1)
    assert not cache.fast
    dout = rng.standard_normal(out.shape).astype(numpy.float32)
    want = reference.conv_backward(dout, W, reference.conv_forward(x, W, b, 1, 1)[1])
    sizes = reference.conv_backward(
        numpy.abs(dout), numpy.abs(W), reference.conv_forward(numpy.abs(x), numpy.abs(W), b, 1, 1)[1]
    )
    # Its parts may sum in another order: dx over 4 filters x 3x3 windows, dW and db over 2x6x6 pixels.
    for g, e, magnitude, terms in zip(kernels.conv_backward(dout, W, cache), want, sizes, (36, 72, 72), strict=True):
        assert g.dtype == e.dtype
        assert_sums_close(g, e, magnitude, terms, e.dtype)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_convolution_threads_work_in_a_forked_child():
    """A child forked after the worker threads started still convolves (e.g. a forked data worker)."""
    code = (
        "import os, numpy; from fastnet.backends.numba_kernels import NumbaKernels; k = NumbaKernels();"
        "k.conv_threads = 2; k.min_share_macs = 1;"
        "x = numpy.ones((4, 2, 6, 6), numpy.float32); W = numpy.ones((3, 2, 3, 3), numpy.float32);"
        "b = numpy.zeros(3, numpy.float32); k.conv_forward(x, W, b, 1, 1);"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    out, _ = k.conv_forward(x, W, b, 1, 1); os._exit(0 if out[0, 0, 2, 2] == 18 else 3)\n"
        "_, status = os.waitpid(pid, 0); print(os.waitstatus_to_exitcode(status))"
    )
    assert run_python(code) == "0"

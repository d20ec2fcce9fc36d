"""The cupy backend: its CUDA kernels against the numpy reference, and nets living on the GPU.

Tests that need a GPU carry the ``gpu`` marker and skip with the reason the cupy backend
cannot load.  The kernel comparisons, gradient checks and training run also run "host
emulated": the very CUDA source of ``cupy_kernels`` is compiled with the host C++ compiler
behind a tiny shim and every GPU thread of a small grid is run in turn (the kernels are pure
gathers, so running threads one after another is equivalent).  That checks the kernels'
index arithmetic and the Python code around them on machines without a GPU; the ``gpu``
runs check the same things on the device through CuPy.
"""

import shutil
import subprocess

import numpy
import pytest
from cuda_host import HostKernelsBackend, HostLauncher, build_host_library, kernel_table

from fastnet.backends import get_backend, unavailable_reason
from fastnet.backends.cupy_kernels import SOURCE, CupyKernels, name_expressions
from fastnet.backends.dispatch import Cache
from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.errors import InputError
from fastnet.gradcheck import check_net_gradients
from fastnet.layers import Affine, Convolution, Pooling, Relu
from fastnet.nets import MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet
from fastnet.optim import Adam, Momentum

CUPY_REASON = unavailable_reason("cupy")
needs_gpu = [
    pytest.mark.gpu,
    pytest.mark.skipif(CUPY_REASON is not None, reason=f"backend cupy unavailable: {CUPY_REASON}"),
]
REF = NumpyKernels(numpy)
DTYPES = [numpy.float32, numpy.float64]


# --- running the CUDA source on the host (tests/cuda_host.py) ---------------------------------------
@pytest.fixture(scope="session")
def host_library(tmp_path_factory):
    lib = build_host_library(tmp_path_factory.mktemp("kernels"))
    if lib is None:
        pytest.skip("no C++ compiler to run the CUDA kernels on the host")
    return lib


class Engine:
    """Where the fast kernels run, and how arrays get there and back."""

    def __init__(self, backend):
        self.backend = backend
        self.kernels = backend.kernels

    def put(self, a):
        return self.backend.asarray(numpy.array(a))

    def get(self, a):
        return self.backend.to_numpy(a)


@pytest.fixture(params=[pytest.param("host", id="host-emulated"), pytest.param("gpu", marks=needs_gpu, id="gpu")])
def engine(request):
    if request.param == "gpu":
        return Engine(get_backend("cupy"))
    launcher = HostLauncher(request.getfixturevalue("host_library"))
    return Engine(HostKernelsBackend(numpy, kernels=CupyKernels(numpy, launch=launcher)))


def test_cuda_source_compiles_with_nvcc(tmp_path):
    """The same instances NVRTC builds on the device, compiled here for a recent GPU."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    source = tmp_path / "kernels.cu"
    source.write_text(SOURCE + kernel_table(name_expressions()))
    result = subprocess.run(
        [nvcc, "-std=c++17", "-arch=sm_80", "-c", str(source), "-o", str(tmp_path / "kernels.o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if "kernels.cu" in line]
    assert not ours, "\n".join(ours)


# --- every kernel against the numpy reference ----------------------------------------------------
def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == numpy.float32 else {"rtol": 1e-12, "atol": 1e-12}


def _normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,m", [(1, 1, 1), (7, 13, 5), (64, 100, 33)])
def test_affine_relu_forward(engine, rng, dtype, n, d, m):
    x, W, b = _normal(rng, (n, d), dtype), _normal(rng, (d, m), dtype), _normal(rng, m, dtype)
    got = engine.get(engine.kernels.affine_relu_forward(engine.put(x), engine.put(W), engine.put(b)))
    assert got.dtype == dtype
    numpy.testing.assert_allclose(got, REF.affine_relu_forward(x, W, b), **_tol(dtype))
    assert (got >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (4, 9), (3, 2, 5, 5)])
def test_relu_backward(engine, rng, dtype, shape):
    dout, out = _normal(rng, shape, dtype), numpy.maximum(_normal(rng, shape, dtype), 0)
    got = engine.get(engine.kernels.relu_backward(engine.put(dout), engine.put(out)))
    assert got.dtype == dtype
    numpy.testing.assert_array_equal(got, REF.relu_backward(dout, out))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("n,f,oh,ow", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 8, 6, 6)])
def test_conv_bias_act(engine, rng, dtype, relu, n, f, oh, ow):
    rows, b = _normal(rng, (n * oh * ow, f), dtype), _normal(rng, f, dtype)
    got = engine.get(engine.kernels.conv_bias_act(engine.put(rows), engine.put(b), n, oh, ow, relu))
    want = REF.conv_bias_act(rows.copy(), b, n, oh, ow, relu)
    assert got.shape == (n, f, oh, ow) and got.dtype == dtype
    numpy.testing.assert_array_equal(got, want)


# (N, C, H, W), (FH, FW), stride, pad
CONV_GEOMETRIES = [
    ((1, 1, 3, 3), (3, 3), 1, 0),
    ((2, 3, 7, 7), (3, 3), 1, 1),
    ((2, 2, 8, 6), (3, 2), 2, 1),
    ((1, 2, 5, 5), (5, 5), 1, 2),
    ((3, 4, 9, 9), (2, 2), 2, 0),
    ((2, 1, 10, 7), (4, 3), 3, 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,filt,stride,pad", CONV_GEOMETRIES)
def test_im2col_and_col2im(engine, rng, dtype, shape, filt, stride, pad):
    x = _normal(rng, shape, dtype)
    col = engine.get(engine.kernels.im2col(engine.put(x), *filt, stride, pad))
    want = REF.im2col(x, *filt, stride, pad)
    assert col.dtype == dtype
    numpy.testing.assert_array_equal(col, want)
    dcol = _normal(rng, want.shape, dtype)
    dx = engine.get(engine.kernels.col2im(engine.put(dcol), shape, *filt, stride, pad))
    assert dx.shape == shape and dx.dtype == dtype
    numpy.testing.assert_allclose(dx, REF.col2im(dcol, shape, *filt, stride, pad), **_tol(dtype))
    # col2im is the adjoint of im2col: <im2col(x), dcol> == <x, col2im(dcol)>
    lhs = numpy.vdot(col.astype(numpy.float64), dcol.astype(numpy.float64))
    rhs = numpy.vdot(x.astype(numpy.float64), dx.astype(numpy.float64))
    assert lhs == pytest.approx(rhs, rel=1e-4 if dtype == numpy.float32 else 1e-10)


# (N, C, H, W), (PH, PW), stride, pad
POOL_GEOMETRIES = [
    ((1, 1, 2, 2), (2, 2), 2, 0),
    ((2, 3, 8, 8), (2, 2), 2, 0),
    ((2, 2, 7, 7), (3, 3), 2, 1),
    ((1, 3, 6, 5), (3, 2), 1, 1),
    ((3, 1, 9, 9), (4, 4), 3, 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,window,stride,pad", POOL_GEOMETRIES)
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool(engine, rng, dtype, shape, window, stride, pad, ties):
    x = _normal(rng, shape, dtype)
    if ties:  # few distinct values: the first maximum of a window must win, as in numpy
        x = numpy.round(x).astype(dtype)
    out, arg = engine.kernels.maxpool_forward(engine.put(x), *window, stride, pad)
    want_out, want_arg = REF.maxpool_forward(x, *window, stride, pad)
    numpy.testing.assert_array_equal(engine.get(out), want_out)
    assert arg.fast  # the cache records the path that made it
    numpy.testing.assert_array_equal(engine.get(arg.value), want_arg)
    dout = _normal(rng, want_out.shape, dtype)
    want_dx = REF.maxpool_backward(dout, want_arg, shape, *window, stride, pad)
    dx = engine.get(engine.kernels.maxpool_backward(engine.put(dout), arg, shape, *window, stride, pad))
    assert dx.dtype == dtype
    numpy.testing.assert_allclose(dx, want_dx, **_tol(dtype))
    # an int64 argmax is accepted too
    dx64 = engine.kernels.maxpool_backward(
        engine.put(dout), Cache(True, engine.put(want_arg)), shape, *window, stride, pad
    )
    numpy.testing.assert_allclose(engine.get(dx64), want_dx, **_tol(dtype))


@pytest.mark.parametrize("x_dtype,dout_dtype", [(numpy.float16, numpy.float32), (numpy.float32, numpy.float16)])
def test_maxpool_backward_follows_its_forward_path(engine, rng, x_dtype, dout_dtype):
    """A float16 x takes the reference forward; the backward follows it, whatever dout's dtype."""
    x = _normal(rng, (2, 3, 7, 7), x_dtype)
    out, cache = engine.kernels.maxpool_forward(engine.put(x), 3, 3, 2, 1)
    assert cache.fast == (x_dtype != numpy.float16)
    want_out, want_arg = REF.maxpool_forward(x, 3, 3, 2, 1)
    dout = _normal(rng, want_out.shape, dout_dtype)
    dx = engine.get(engine.kernels.maxpool_backward(engine.put(dout), cache, x.shape, 3, 3, 2, 1))
    want = REF.maxpool_backward(dout, want_arg, x.shape, 3, 3, 2, 1)
    assert dx.dtype == want.dtype
    numpy.testing.assert_allclose(dx, want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 2), (5, 10), (64, 37)])
@pytest.mark.parametrize("label_dtype", [numpy.int64, numpy.int32, numpy.uint8, "onehot"])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_softmax_cross_entropy(engine, rng, dtype, n, c, label_dtype, scale):
    x = _normal(rng, (n, c), dtype, scale)  # scale 300: exp would overflow without the shift
    labels = rng.integers(0, c, n)
    t = numpy.eye(c, dtype=dtype)[labels] if label_dtype == "onehot" else labels.astype(label_dtype)
    loss, y = engine.kernels.softmax_cross_entropy(engine.put(x), engine.put(t))
    want_loss, want_y = REF.softmax_cross_entropy(x, t)
    assert loss.shape == () and engine.get(loss).dtype == dtype and y.dtype == dtype
    assert numpy.isfinite(engine.get(loss))
    tol = _tol(dtype) if scale == 1.0 else {"rtol": 1e-5 if dtype == numpy.float32 else 1e-12, "atol": 1e-3}
    numpy.testing.assert_allclose(engine.get(loss), want_loss, **tol)
    numpy.testing.assert_allclose(engine.get(y), want_y, **_tol(dtype))
    for dout in (1, 2.5):
        dx = engine.get(engine.kernels.softmax_cross_entropy_backward(y, engine.put(t), dout))
        assert dx.dtype == dtype
        numpy.testing.assert_allclose(dx, REF.softmax_cross_entropy_backward(want_y, t, dout), **_tol(dtype))


# --- whole nets: gradient checks and a training run --------------------------------------------------
def _conv_pool_net(backend):
    """Strided, padded convolution and overlapping, padded pooling (the hard index cases)."""
    rng = numpy.random.default_rng(3)
    net = Sequential(backend=backend, dtype="float64")
    net.add(
        "Conv1",
        Convolution(
            rng.standard_normal((3, 2, 3, 3)) * 0.5, rng.standard_normal(3) * 0.1, stride=2, pad=1, backend=backend
        ),
        suffix="1",
    )
    net.add("Relu1", Relu(backend=backend))
    net.add("Pool1", Pooling(3, 3, stride=2, pad=1, backend=backend))
    net.add("Affine1", Affine(rng.standard_normal((12, 4)) * 0.5, numpy.zeros(4), backend=backend), suffix="2")
    return net


GRAD_NETS = {
    "two_layer": (lambda be: TwoLayerNet(6, 5, 3, weight_init_std=0.5, backend=be, dtype="float64", seed=1), (4, 6), 3),
    "mlp_batchnorm_decay": (
        lambda be: MultiLayerNet(
            6, [5, 4], 3, use_batchnorm=True, weight_decay_lambda=0.1, backend=be, dtype="float64", seed=2
        ),
        (5, 6),
        3,
    ),
    "mlp_sigmoid": (
        lambda be: MultiLayerNet(6, [5], 3, activation="sigmoid", backend=be, dtype="float64", seed=4),
        (4, 6),
        3,
    ),
    "simple_conv": (
        lambda be: SimpleConvNet(
            (2, 6, 6),
            {"filter_num": 3, "filter_size": 3, "pad": 1},
            hidden_size=4,
            output_size=3,
            weight_init_std=0.3,
            backend=be,
            dtype="float64",
            seed=5,
        ),
        (3, 2, 6, 6),
        3,
    ),
    "conv_pool_strided": (_conv_pool_net, (2, 2, 8, 8), 4),
}


@pytest.mark.parametrize("net_name", list(GRAD_NETS))
@pytest.mark.parametrize("onehot", [False, True])
def test_gradients_float64(engine, net_name, onehot):
    make, x_shape, classes = GRAD_NETS[net_name]
    rng = numpy.random.default_rng(7)
    net = make(engine.backend)
    labels = rng.integers(0, classes, x_shape[0])
    t = numpy.eye(classes)[labels] if onehot else labels
    report = check_net_gradients(net, engine.put(rng.standard_normal(x_shape)), engine.put(t))
    assert {r.name for r in report} == set(net.params)
    for r in report:
        assert r.max_relative_error < 1e-5, r
        assert r.mean_absolute_difference < 1e-8, r


def _train_losses(net, optimizer, x, t, steps=16, batch=16):
    """Minibatches from a fixed host permutation so every backend sees the same batches."""
    be = net.backend
    order = numpy.random.default_rng(0).permutation(x.shape[0])
    xd, td, losses = be.asarray(x), be.asarray(t), []
    for step in range(steps):
        idx = be.asarray(order[(step * batch) % x.shape[0] :][:batch])
        grads = net.gradient(xd[idx], td[idx])
        optimizer.update(net.params, grads)
        losses.append(float(net.last_loss))
    return losses


@pytest.mark.parametrize(
    "make,x_shape",
    [
        (lambda be: TwoLayerNet(20, 16, 5, weight_init_std=0.3, backend=be, seed=11), (64, 20)),
        (
            lambda be: SimpleConvNet(
                (1, 10, 10),
                {"filter_num": 4, "filter_size": 3},
                hidden_size=8,
                output_size=5,
                weight_init_std=0.3,
                backend=be,
                seed=12,
            ),
            (64, 1, 10, 10),
        ),
    ],
)
def test_training_matches_numpy(engine, make, x_shape):
    rng = numpy.random.default_rng(9)
    x = rng.standard_normal(x_shape).astype(numpy.float32)
    t = rng.integers(0, 5, x_shape[0])
    want = _train_losses(make("numpy"), Momentum(lr=0.1), x, t)
    got = _train_losses(make(engine.backend), Momentum(lr=0.1), x, t)
    assert numpy.mean(want[-4:]) < 0.85 * numpy.mean(want[:4])  # it learns: the match means something
    # float32 sums run in another order on the GPU; over 16 steps the drift stays far below 1e-3
    numpy.testing.assert_allclose(got, want, rtol=1e-3)


# --- GPU only: arrays live on the device ------------------------------------------------------------
@pytest.fixture
def gpu():
    return get_backend("cupy")


@pytest.mark.gpu
@pytest.mark.skipif(CUPY_REASON is not None, reason=f"backend cupy unavailable: {CUPY_REASON}")
class TestOnDevice:
    def test_parameters_gradients_and_optimizer_state_live_on_the_gpu(self, gpu):
        import cupy

        net = SimpleConvNet((1, 12, 12), {"filter_num": 4, "filter_size": 3}, hidden_size=8, backend=gpu, seed=1)
        x = gpu.rng(0).random((8, 1, 12, 12), dtype="float32")
        t = gpu.asarray(numpy.arange(8) % 10)
        optimizer = Adam()
        for _ in range(2):
            grads = net.gradient(x, t)
            optimizer.update(net.params, grads)
        assert isinstance(net.last_loss, cupy.ndarray) and net.last_loss.shape == ()
        for key, value in net.params.items():
            assert isinstance(value, cupy.ndarray) and value.dtype == numpy.float32, key
            assert isinstance(grads[key], cupy.ndarray) and grads[key].dtype == numpy.float32, key
        slots = [v for table in optimizer.state.values() for v in table.values()]
        assert len(slots) == 2 * len(net.params)
        assert all(isinstance(v, cupy.ndarray) and v.dtype == numpy.float32 for v in slots)

    def test_device_random_is_seeded_and_on_the_gpu(self, gpu):
        import cupy

        a, b = gpu.rng(5).random((4, 3), dtype="float32"), gpu.rng(5).random((4, 3), dtype="float32")
        assert isinstance(a, cupy.ndarray) and a.dtype == numpy.float32
        numpy.testing.assert_array_equal(gpu.to_numpy(a), gpu.to_numpy(b))
        assert ((gpu.to_numpy(a) >= 0) & (gpu.to_numpy(a) < 1)).all()
        perm = gpu.rng(5).permutation(1000)
        assert isinstance(perm, cupy.ndarray)
        assert sorted(gpu.to_numpy(perm).tolist()) == list(range(1000))

    def test_move_cpu_gpu_cpu(self, gpu, rng):
        import cupy

        net = MultiLayerNet(10, [8], 3, use_batchnorm=True, backend="numpy", seed=3)
        x = rng.standard_normal((6, 10)).astype(numpy.float32)
        net.gradient(x, numpy.arange(6) % 3)  # moves the batch-norm running statistics
        before = net.predict(x)
        net.to(gpu)
        assert all(isinstance(v, cupy.ndarray) for v in net.state_arrays().values())
        numpy.testing.assert_allclose(gpu.to_numpy(net.predict(gpu.asarray(x))), before, rtol=1e-5, atol=1e-6)
        net.to("numpy")
        assert all(isinstance(v, numpy.ndarray) for v in net.state_arrays().values())
        numpy.testing.assert_array_equal(net.predict(x), before)

    @pytest.mark.parametrize("source,target", [("cupy", "numpy"), ("numpy", "cupy")])
    def test_save_on_one_device_load_on_the_other(self, tmp_path, rng, source, target):
        be_src, be_dst = get_backend(source), get_backend(target)
        trained = SimpleConvNet((1, 10, 10), {"filter_num": 3, "filter_size": 3}, hidden_size=6, backend=be_src, seed=4)
        x = rng.standard_normal((5, 1, 10, 10)).astype(numpy.float32)
        Momentum(lr=0.1).update(trained.params, trained.gradient(be_src.asarray(x), be_src.asarray(numpy.arange(5))))
        trained.save_params(tmp_path / "net.npz")
        fresh = SimpleConvNet((1, 10, 10), {"filter_num": 3, "filter_size": 3}, hidden_size=6, backend=be_dst, seed=99)
        fresh.load_params(tmp_path / "net.npz")
        want = be_src.to_numpy(trained.predict(be_src.asarray(x)))
        got = be_dst.to_numpy(fresh.predict(be_dst.asarray(x)))
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_host_array_into_a_gpu_net_is_refused(self, gpu, rng):
        net = TwoLayerNet(4, 3, 2, backend=gpu, seed=0)
        x = rng.standard_normal((2, 4)).astype(numpy.float32)
        with pytest.raises(InputError, match=r"x is a numpy\.ndarray on the host.*backend\.asarray\(x\)"):
            net.predict(x)
        with pytest.raises(InputError, match="numpy.ndarray"):
            net.loss(gpu.asarray(x), numpy.array([0, 1]))

    def test_info_names_the_gpu(self, gpu):
        info = gpu.info()
        assert info["gpu"] and info["total_memory_bytes"] > 2**28
        assert info["cupy"] == gpu.xp.__version__
        assert "GiB" in gpu.describe() and info["gpu"] in gpu.describe()

"""The numba backend's Winograd convolutions, F(2x2, 3x3) and F(4x4, 3x3), against the float64
im2col reference.

The error bound (forward, dx, dW) is derived, not guessed.  Winograd computes each result as a sum
of products of an input value, a filter value and transform coefficients, through a fixed sequence
of stages; every term passes through at most D roundings, so (Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., section 3.1, the same lemma as gamma_k in ``tolerances.py``) the
computed result is within gamma_D * S of the exact one, where S is the same computation run on the
absolute values of the inputs *and of the transform matrices*.  S is at least the direct
convolution's sum of |terms| (the coefficients of a direct term add up to 1 over the paths that
carry it), so 2 * gamma_(k+1) * S with k = max(D, the reference's own sum length) covers both the
Winograd path and a reference computed in the same dtype.

A transform step that applies a matrix whose rows have at most z nonzero entries rounds each
term at most 2z - 1 times (z products, z - 1 additions; one more when the step adds into what is
there, one more per overlapping tile).  Roundings per term:

F(2x2, 3x3) (B^T, A^T: entries 0, +-1; G: +-1/2, exact):
    forward  filter G g G^T: 2 + 2, input B^T d B: 1 + 1, the product: 1, the sum over C
             channels: C, output A^T m A: 2 + 2, the bias: 1           -> D = C + 12
    dx       output gradient A dy A^T: 1 + 1, filter: 4, product: 1, the sum over K filters: K,
             input adjoint B v B^T: 2 + 2, up to 4 overlapping tiles: 4   -> D = K + 15
    dW       input: 2, output gradient: 2, product: 1, the sum over the T tiles of the batch in
             chunks and threads: T + 2, filter adjoint G^T u G: 2 + 2     -> D = T + 11
F(4x4, 3x3) (B^T rows: <= 4 nonzeros, its columns <= 5; A^T rows <= 5, its columns <= 4; G's
entries 1/6, 1/12, 1/24 inexact, so the filter side is computed in float64 and rounded once:
counted as the float64 steps' roundings, coefficient representation included, plus 1):
    forward  filter 2 x (1 + 1 + 2) + 1 = 9, input 2 x 7 = 14, product 1, sum C, output 2 x 9 = 18,
             bias 1                                                     -> D = C + 43
    dx       output gradient 2 x 7 = 14, filter 9, product 1, sum K, input adjoint (adding into
             what is there, two tiles each way) 2 x 11 = 22             -> D = K + 46
    dW       input 14, output gradient 14, product 1, sum T + 2, filter adjoint 2 x 6 + 1 = 13
                                                                        -> D = T + 44
The reference sums 9 C products (forward), 9 K (dx), N OH OW (dW).

S is computed here in float64 by an independent NumPy Winograd (einsum over tiles) that takes the
transform matrices as arguments.
"""

import numpy
import pytest
from tolerances import assert_sums_close

from fastnet.backends import unavailable_reason
from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.layers import Convolution

REFERENCE = NumpyKernels(numpy)
F64 = numpy.float64
DTYPES = [numpy.float32, numpy.float64]

pytestmark = pytest.mark.skipif(
    unavailable_reason("numba") is not None, reason=f"numba unavailable: {unavailable_reason('numba')}"
)

# The transforms of F(2x2, 3x3) and F(4x4, 3x3) (Lavin and Gray, 2016), written out independently
# of the kernels.
BT = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=F64)
G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=F64)
AT = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=F64)
BT4 = numpy.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=F64,
)
G4 = numpy.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
AT4 = numpy.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=F64)
# algorithm: (B^T, G, A^T, the roundings D beyond the forward's C, dx's K and dW's T)
TRANSFORMS = {"winograd": (BT, G, AT, (12, 15, 11)), "winograd4": (BT4, G4, AT4, (43, 46, 44))}

# (N, C, H, W, K, pad): DeepConvNet's maps (28, 14, 7), odd and non-square outputs, pad 0 to 3,
# batch 1, a single channel, a single filter, an output of one pixel, 8x8 planes.
CASES = [
    (2, 3, 7, 7, 4, 1),
    (1, 1, 5, 6, 2, 0),
    (3, 4, 14, 14, 5, 1),
    (2, 2, 6, 5, 3, 3),
    (1, 2, 3, 3, 1, 0),
    (2, 5, 9, 8, 3, 2),
    (2, 16, 28, 28, 4, 1),
    (1, 1, 4, 7, 3, 1),
    (3, 4, 8, 8, 5, 1),  # planes a divisor of 4 KiB apart: the data gradient's own loop order
]


class Tiles:
    """Winograd in float64 NumPy, with the transforms given: the exact result for B^T, G, A^T and,
    for their absolute values and absolute inputs, the magnitudes S of the error bound."""

    def __init__(self, bt, g, at, x_shape, pad):
        self.bt, self.g, self.at, self.pad = bt, g, at, pad
        self.m, self.t = at.shape  # outputs and inputs per tile side
        n, c, h, w = x_shape
        self.x_shape = x_shape
        self.oh, self.ow = h + 2 * pad - 2, w + 2 * pad - 2
        self.th, self.tw = -(-self.oh // self.m), -(-self.ow // self.m)

    def padded(self, n, c):
        return numpy.zeros((n, c, self.m * self.th + self.t - self.m, self.m * self.tw + self.t - self.m))

    def input(self, x):
        """(N, C, th, tw, t, t): B^T d B for every tile."""
        n, c, h, w = self.x_shape
        p, m = self.pad, self.m
        padded = self.padded(n, c)
        padded[:, :, p : p + h, p : p + w] = x
        d = numpy.lib.stride_tricks.sliding_window_view(padded, (self.t, self.t), axis=(2, 3))[:, :, ::m, ::m]
        return numpy.einsum("ai,ncyxij,bj->ncyxab", self.bt, d[:, :, : self.th, : self.tw], self.bt)

    def filters(self, W):
        return numpy.einsum("ai,kcij,bj->kcab", self.g, W, self.g)

    def output_grad(self, dout):
        """(N, K, th, tw, t, t): A dy A^T for every m x m tile of dout, zero past its edges."""
        n, k = dout.shape[:2]
        m = self.m
        grid = numpy.zeros((n, k, m * self.th, m * self.tw))
        grid[:, :, : self.oh, : self.ow] = dout
        dy = grid.reshape(n, k, self.th, m, self.tw, m).transpose(0, 1, 2, 4, 3, 5)
        return numpy.einsum("ai,nkyxij,bj->nkyxab", self.at.T, dy, self.at.T)

    def forward(self, x, W, b):
        m = numpy.einsum("ncyxab,kcab->nkyxab", self.input(x), self.filters(W))
        y = numpy.einsum("ia,nkyxab,jb->nkyixj", self.at, m, self.at)
        n, k = y.shape[:2]
        y = y.reshape(n, k, self.m * self.th, self.m * self.tw)[:, :, : self.oh, : self.ow]
        return y + b[None, :, None, None]

    def dx(self, dout, W):
        dv = numpy.einsum("nkyxab,kcab->ncyxab", self.output_grad(dout), self.filters(W))
        d = numpy.einsum("ia,ncyxab,jb->ncyxij", self.bt.T, dv, self.bt.T)
        n, c, h, w = self.x_shape
        m, t = self.m, self.t
        padded = self.padded(n, c)
        for ty in range(self.th):
            for tx in range(self.tw):
                padded[:, :, m * ty : m * ty + t, m * tx : m * tx + t] += d[:, :, ty, tx]
        return padded[:, :, self.pad : self.pad + h, self.pad : self.pad + w]

    def dW(self, dout, x):
        du = numpy.einsum("nkyxab,ncyxab->kcab", self.output_grad(dout), self.input(x))
        return numpy.einsum("ai,kcab,bj->kcij", self.g, du, self.g)


def exact(x_shape, pad, algorithm="winograd"):
    bt, g, at, _ = TRANSFORMS[algorithm]
    return Tiles(bt, g, at, x_shape, pad)


def magnitudes(x_shape, pad, algorithm="winograd"):
    bt, g, at, _ = TRANSFORMS[algorithm]
    return Tiles(abs(bt), abs(g), abs(at), x_shape, pad)


@pytest.fixture(params=list(TRANSFORMS))
def kernels(request, monkeypatch):
    """The numba kernel set with a Winograd algorithm forced wherever it applies (3x3, stride 1)."""
    from fastnet.backends.numba_kernels import NumbaKernels

    k = NumbaKernels()
    monkeypatch.setattr(k, "conv_algorithm", request.param)
    return k


@pytest.mark.parametrize("algorithm", list(TRANSFORMS))
def test_the_float64_tiles_are_the_convolution(rng, algorithm):
    """The test's own Winograd is exact in float64 (it is the magnitude's model): agreement with
    im2col within 2 * gamma of the longest sum, on the magnitude of the absolute transforms."""
    n, c, h, w, k, pad = 2, 3, 7, 6, 4, 1
    x, W, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3)), rng.standard_normal(k)
    want, cache = REFERENCE.conv_forward(x, W, b, 1, pad)
    dout = rng.standard_normal(want.shape)
    dx, dW, _ = REFERENCE.conv_backward(dout, W, cache)
    tiles, size = exact(x.shape, pad, algorithm), magnitudes(x.shape, pad, algorithm)
    ax, aW, ad = abs(x), abs(W), abs(dout)
    more = TRANSFORMS[algorithm][3]
    assert_sums_close(tiles.forward(x, W, b), want, size.forward(ax, aW, abs(b)), 9 * c + more[0], F64)
    assert_sums_close(tiles.dx(dout, W), dx, size.dx(ad, aW), 9 * k + more[1], F64)
    assert_sums_close(tiles.dW(dout, x), dW, size.dW(ad, ax), n * want[0, 0].size + more[2], F64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunking", ["whole", "chunks", "pairs"])
def test_winograd_against_the_float64_reference(kernels, rng, monkeypatch, dtype, case, chunking):
    n, c, h, w, k, pad = case
    if chunking == "chunks":  # one image per chunk, two threads: the sums split up every way
        kernels.conv_chunk_bytes = 1
        kernels.conv_threads = 2
        kernels.min_share_macs = 1
    algorithm = kernels.conv_algorithm
    if chunking == "pairs":  # two images per chunk, one thread: an odd batch ends on a smaller chunk
        name = "_winograd_plan" if algorithm == "winograd" else "_winograd4_plan"
        plan = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *args: (*plan(*args)[:-1], 2))
        kernels.conv_threads = 1
    x, W, b = (rng.standard_normal(s).astype(dtype) for s in ((n, c, h, w), (k, c, 3, 3), (k,)))
    assert kernels._conv_algorithm_for(x.shape, W.shape, 1) == algorithm
    x64, W64, b64 = x.astype(F64), W.astype(F64), b.astype(F64)
    size = magnitudes(x.shape, pad, algorithm)
    more = TRANSFORMS[algorithm][3]
    want, cache = REFERENCE.conv_forward(x64, W64, b64, 1, pad)
    oh, ow = want.shape[2:]
    side = size.m
    tiles = n * -(-oh // side) * -(-ow // side)
    for relu in (False, True):
        got, got_cache = kernels.conv_forward(x, W, b, 1, pad, relu)
        assert got.dtype == dtype and got.flags.c_contiguous
        expected = numpy.maximum(want, 0) if relu else want
        bound_terms = max(c + more[0], 9 * c + 1)
        assert_sums_close(got, expected, size.forward(abs(x64), abs(W64), abs(b64)), bound_terms, dtype, "forward")
    dout = rng.standard_normal(want.shape).astype(dtype)
    dx, dW, db = REFERENCE.conv_backward(dout.astype(F64), W64, cache)
    for need_dx in (True, False):
        got_dx, got_dW, got_db = kernels.conv_backward(dout, W, got_cache, need_dx)
        assert got_dW.dtype == got_db.dtype == dtype and got_dW.shape == W.shape
        ad = abs(dout.astype(F64))
        assert_sums_close(got_dW, dW, size.dW(ad, abs(x64)), max(tiles + more[2], n * oh * ow), dtype, "dW")
        assert_sums_close(got_db, db, ad.sum(axis=(0, 2, 3)), n * oh * ow, dtype, "db")
        if need_dx:
            assert got_dx.dtype == dtype and got_dx.shape == x.shape
            assert_sums_close(got_dx, dx, size.dx(ad, abs(W64)), max(k + more[1], 9 * k), dtype, "dx")
        else:
            assert got_dx is None


def test_the_algorithm_is_chosen_by_shape(monkeypatch):
    from fastnet.backends.numba_kernels import NumbaKernels

    k = NumbaKernels()
    monkeypatch.delenv("FASTNET_CONV_ALGORITHM", raising=False)
    deep = [((100, 1, 28, 28), (16, 1, 3, 3)), ((100, 16, 28, 28), (16, 16, 3, 3)), ((100, 64, 7, 7), (64, 64, 3, 3))]
    forward = [k._conv_algorithm_for(x, W, 1) for x, W in deep]
    backward = [k._conv_algorithm_for(x, W, 1, backward=True) for x, W in deep]
    assert forward == ["im2col", "winograd", "winograd"]
    assert backward == ["im2col", "winograd", "winograd"]
    # one image holds too few tiles (196 at 28x28, 16 at 8x8) for 16 products to pay
    assert k._conv_algorithm_for((1, 16, 28, 28), (16, 16, 3, 3), 1) == "im2col"
    assert k._conv_algorithm_for((1, 64, 8, 8), (64, 64, 3, 3), 1, backward=True) == "im2col"
    assert k._conv_algorithm_for((16, 64, 8, 8), (64, 64, 3, 3), 1) == "winograd"
    for W in ((64, 64, 5, 5), (64, 64, 3, 2)):
        assert k._conv_algorithm_for((2, 64, 9, 9), W, 1) == "im2col"
    assert k._conv_algorithm_for((2, 64, 9, 9), (64, 64, 3, 3), 2) == "im2col"
    monkeypatch.setenv("FASTNET_CONV_ALGORITHM", "im2col")  # the reference path, forced
    assert k._conv_algorithm_for((100, 64, 7, 7), (64, 64, 3, 3), 1) == "im2col"
    monkeypatch.setenv("FASTNET_CONV_ALGORITHM", "winograd")
    assert k._conv_algorithm_for((100, 1, 28, 28), (16, 1, 3, 3), 1) == "winograd"
    assert k._conv_algorithm_for((100, 1, 28, 28), (16, 1, 5, 5), 1) == "im2col"
    monkeypatch.setenv("FASTNET_CONV_ALGORITHM", "winograd4")  # F(4x4, 3x3): only when asked for
    assert k._conv_algorithm_for((100, 16, 28, 28), (16, 16, 3, 3), 1, backward=True) == "winograd4"
    assert k._conv_algorithm_for((100, 16, 28, 28), (16, 16, 5, 5), 1) == "im2col"
    monkeypatch.setattr(k, "conv_algorithm", "im2col")  # the kernel set's own setting wins
    assert k._conv_algorithm_for((100, 64, 7, 7), (64, 64, 3, 3), 1) == "im2col"
    monkeypatch.setenv("FASTNET_CONV_ALGORITHM", "fft")
    monkeypatch.setattr(k, "conv_algorithm", None)
    with pytest.raises(ValueError, match="FASTNET_CONV_ALGORITHM"):
        k._conv_algorithm_for((1, 1, 3, 3), (1, 1, 3, 3), 1)


def test_either_backward_follows_either_forward(kernels, rng, monkeypatch):
    """The backward chooses by shape too, not from the forward: im2col's backward after a Winograd
    forward (and the reverse) is the same gradient."""
    x, W, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    dout = rng.standard_normal((2, 4, 7, 7))
    _, cache = kernels.conv_forward(x, W, b, 1, 1)
    winograd = kernels.conv_backward(dout, W, cache)
    monkeypatch.setattr(kernels, "conv_algorithm", "im2col")
    im2col = kernels.conv_backward(dout, W, cache)
    for a, e in zip(winograd, im2col, strict=True):
        numpy.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_unsupported_inputs_get_the_reference_answer(kernels, rng):
    """The contract's fallback: float16 (and mixed dtypes) take the reference, exactly."""
    h = numpy.float16
    x, W, b = rng.standard_normal((2, 3, 6, 6)).astype(h), rng.standard_normal((4, 3, 3, 3)).astype(h), numpy.ones(4, h)
    out, cache = kernels.conv_forward(x, W, b, 1, 1)
    want, ref_cache = REFERENCE.conv_forward(x, W, b, 1, 1)
    assert not cache.fast
    numpy.testing.assert_array_equal(out, want)
    dout = rng.standard_normal(want.shape).astype(h)
    expected = REFERENCE.conv_backward(dout, W, ref_cache)
    for got, want_grad in zip(kernels.conv_backward(dout, W, cache), expected, strict=True):
        numpy.testing.assert_array_equal(got, want_grad)
    out, cache = kernels.conv_forward(x.astype(numpy.float32), W.astype(numpy.float64), b.astype(numpy.float32), 1, 1)
    assert not cache.fast


def test_winograd_leaves_its_inputs_alone_and_passes_nan(kernels, rng):
    x = rng.standard_normal((3, 4, 7, 7)).astype(numpy.float32)
    W, b = rng.standard_normal((5, 4, 3, 3)).astype(numpy.float32), rng.standard_normal(5).astype(numpy.float32)
    dout = rng.standard_normal((3, 5, 7, 7)).astype(numpy.float32)
    copies = [a.copy() for a in (x, W, b, dout)]
    _, cache = kernels.conv_forward(x, W, b, 1, 1, relu=True)
    kernels.conv_backward(dout, W, cache)
    for original, now in zip(copies, (x, W, b, dout), strict=True):
        numpy.testing.assert_array_equal(now, original)
    x[0, 0, 3, 3] = numpy.nan  # a NaN reaches every output whose window holds it, ReLU or not
    out, _ = kernels.conv_forward(x, W, b, 1, 1, relu=True)
    assert numpy.isnan(out[0, :, 2:5, 2:5]).all() and numpy.isfinite(out[1:]).all()


@pytest.mark.parametrize("algorithm", list(TRANSFORMS))
@pytest.mark.parametrize("size, pad", [((5, 5), 0), ((7, 6), 1), ((4, 4), 2)])
def test_convolution_layer_gradients_on_the_winograd_path(rng, monkeypatch, algorithm, size, pad):
    """A Convolution layer on the numba backend, Winograd forced: float64 central differences."""
    from test_layers_gradcheck import check_layer

    from fastnet.backends import get_backend

    backend = get_backend("numba")
    monkeypatch.setattr(backend.kernels, "conv_algorithm", algorithm)
    layer = Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), 1, pad, backend=backend, dtype=F64)
    assert backend.kernels._conv_algorithm_for((2, 2, *size), layer.W.shape, 1) == algorithm
    check_layer(backend, layer, rng.standard_normal((2, 2, *size)), params=("W", "b"))

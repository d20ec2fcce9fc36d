"""Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 16 multiplications per 2x2 outputs, not 36.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016).  Each 2x2 tile of
the output is computed from a 4x4 tile d of the (zero-padded) input and a 3x3 filter g as

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* element by element, summed over channels)

so, with U = G g G^T (16, K, C) for the filters and V = B^T d B (16, C, tiles) for the input, the
sum over channels is one matrix product per tile position: M[p] = U[p] @ V[p], (K x C) @ (C x
tiles), 16 BLAS products.  An output whose height or width is odd is covered by a tile grid one
row or column larger; the extra outputs are never written.

The backward is the exact adjoint of that forward (the same tiles, the same products, transposed):

    dM = A dY A^T                 the output gradient's tiles, transformed
    dU[p] = dM[p] @ V[p]^T        then dW = G^T dU G
    dV[p] = U[p]^T @ dM[p]        then dx gets B dV B^T added back at each tile's place

The transforms are compiled loops over the planes (the matrices B, A have entries 0 and +-1, G has
+-1/2: the transforms are additions).  Every function here works on a chunk of G images; the
caller (``numba_conv.NumbaConvolution``) splits the batch into chunks and threads.
"""

from __future__ import annotations

import numpy as np

from fastnet.backends.numba_jit import jit as _jit

# G (4 x 3): the filter transform.  0.5 and its multiples are exact in every float dtype.
FILTER_TRANSFORM = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def tile_grid(oh: int, ow: int) -> tuple[int, int]:
    """Tiles down and across: enough 2x2 tiles to cover an OH x OW output."""
    return (oh + 1) // 2, (ow + 1) // 2


def filter_tiles(W):
    """W (K, C, 3, 3) -> U (16, K, C), contiguous: U[4a + b] = (G W G^T)[a, b], in W's dtype."""
    g = FILTER_TRANSFORM.astype(W.dtype)
    k, c = W.shape[:2]
    left = np.tensordot(g, W, axes=(1, 2))  # (4, K, C, 3): G W
    both = np.tensordot(left, g, axes=(3, 1))  # (4, K, C, 4): G W G^T
    return np.ascontiguousarray(both.transpose(0, 3, 1, 2)).reshape(16, k, c)


def filter_grad(dU):
    """dU (16, K, C) -> dW (K, C, 3, 3) = G^T dU G: the adjoint of :func:`filter_tiles`."""
    g = FILTER_TRANSFORM.astype(dU.dtype)
    k, c = dU.shape[1:]
    tiles = dU.reshape(4, 4, k, c)
    left = np.tensordot(g, tiles, axes=(0, 0))  # (3, 4, K, C): G^T dU
    both = np.tensordot(left, g, axes=(1, 0))  # (3, K, C, 3): G^T dU G
    return np.ascontiguousarray(both.transpose(1, 2, 0, 3))


def position_stride(channels: int, tiles: int, itemsize: int) -> int:
    """Elements from one tile position's (channels x tiles) matrix to the next's.  At least the
    matrix, and not a multiple of 4 KiB in bytes: the transforms read or write all 16 positions of
    a tile together, and 16 streams 4 KiB apart fall into one set of the L1 cache and evict each
    other (measured: a skew of one cache line per position made the transforms several times
    faster).  Rounded up to 4 KiB, plus 64 bytes."""
    page = 4096 // itemsize
    return -(-channels * tiles // page) * page + 64 // itemsize


def positions(buffer, channels: int, tiles: int, itemsize: int):
    """(rows, matrices): the start of a flat buffer as the 16 rows (16, stride) the transforms index
    and as the 16 (channels x tiles) matrices the products take (views of the same memory)."""
    stride = position_stride(channels, tiles, itemsize)
    rows = buffer[: 16 * stride].reshape(16, stride)
    return rows, rows[:, : channels * tiles].reshape(16, channels, tiles)


# Flat arrays indexed with unsigned offsets: numba then drops the negative-index check that keeps
# the loops from being vectorised (see numba_conv.py).
_u = np.uint64


@_jit
def pad_to_tiles(x, pad, hp, wp, flat):
    """x (G, C, H, W) -> G*C planes of hp x wp in ``flat``, x at row and column ``pad``.  Only the
    interiors are written: the caller hands a zeroed buffer, whose borders stay zero."""
    g, c, h, w = x.shape
    plane = hp * wp
    src = x.reshape(-1)
    for p in range(g * c):
        for y in range(h):
            s = _u((p * h + y) * w)
            d = _u(p * plane + (pad + y) * wp + pad)
            for q in range(_u(w)):
                flat[d + q] = src[s + q]


@_jit(inline="always")
def _bt(d0, d1, d2, d3):
    """B^T v for a 4-vector v.  B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@_jit(inline="always")
def _b(v0, v1, v2, v3):
    """B v for a 4-vector v (the adjoint of ``_bt``)."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@_jit(inline="always")
def _at(m0, m1, m2, m3):
    """A^T v for a 4-vector v.  A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]."""
    return m0 + m1 + m2, m1 - m2 - m3


@_jit(inline="always")
def _a(y0, y1):
    """A v for a 2-vector v (the adjoint of ``_at``)."""
    return y0, y0 + y1, y0 - y1, -y1


@_jit(inline="always")
def _offsets(o, step):
    """o + p * step for the 16 tile positions p, as unsigned offsets."""
    o1 = o + step
    o2 = o1 + step
    o3 = o2 + step
    o4 = o3 + step
    o5 = o4 + step
    o6 = o5 + step
    o7 = o6 + step
    o8 = o7 + step
    o9 = o8 + step
    o10 = o9 + step
    o11 = o10 + step
    o12 = o11 + step
    o13 = o12 + step
    o14 = o13 + step
    o15 = o14 + step
    return o, o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11, o12, o13, o14, o15


@_jit
def input_tiles(flat, g, c, hp, wp, th, tw, V):
    """V = B^T d B for every 4x4 tile d (stride 2) of the G*C padded planes of hp x wp in ``flat``.
    V is a contiguous :func:`positions` buffer: position p of tile t of channel c is V[p, c*T + t],
    T = G*th*tw."""
    plane = hp * wp
    tiles = th * tw
    width = g * tiles
    out = V.reshape(-1)
    w1 = _u(wp)
    w2, w3, two = w1 + w1, w1 + w1 + w1, _u(2)
    for b in range(g):
        for ch in range(c):
            for ty in range(th):
                s0 = _u((b * c + ch) * plane + 2 * ty * wp)
                q = _offsets(_u(ch * width + b * tiles + ty * tw), _u(V.shape[1]))
                for tx in range(_u(tw)):
                    s = s0 + two * tx
                    # d B: B^T on each row of the tile
                    a0, a1, a2, a3 = _bt(flat[s], flat[s + 1], flat[s + 2], flat[s + 3])
                    b0, b1, b2, b3 = _bt(flat[s + w1], flat[s + w1 + 1], flat[s + w1 + 2], flat[s + w1 + 3])
                    c0, c1, c2, c3 = _bt(flat[s + w2], flat[s + w2 + 1], flat[s + w2 + 2], flat[s + w2 + 3])
                    e0, e1, e2, e3 = _bt(flat[s + w3], flat[s + w3 + 1], flat[s + w3 + 2], flat[s + w3 + 3])
                    # then B^T on each column: position 4i + j holds row i, column j
                    out[q[0] + tx], out[q[4] + tx], out[q[8] + tx], out[q[12] + tx] = _bt(a0, b0, c0, e0)
                    out[q[1] + tx], out[q[5] + tx], out[q[9] + tx], out[q[13] + tx] = _bt(a1, b1, c1, e1)
                    out[q[2] + tx], out[q[6] + tx], out[q[10] + tx], out[q[14] + tx] = _bt(a2, b2, c2, e2)
                    out[q[3] + tx], out[q[7] + tx], out[q[11] + tx], out[q[15] + tx] = _bt(a3, b3, c3, e3)


@_jit(inline="always")
def _output_tile(src, q, t, bias, relu):
    """The 2x2 outputs A^T m A + bias of the tile at offset t (ReLU optional)."""
    # A^T on each column of m, then on each row
    r00, r10 = _at(src[q[0] + t], src[q[4] + t], src[q[8] + t], src[q[12] + t])
    r01, r11 = _at(src[q[1] + t], src[q[5] + t], src[q[9] + t], src[q[13] + t])
    r02, r12 = _at(src[q[2] + t], src[q[6] + t], src[q[10] + t], src[q[14] + t])
    r03, r13 = _at(src[q[3] + t], src[q[7] + t], src[q[11] + t], src[q[15] + t])
    y00, y01 = _at(r00, r01, r02, r03)
    y10, y11 = _at(r10, r11, r12, r13)
    y00 += bias
    y01 += bias
    y10 += bias
    y11 += bias
    if relu:  # NaN passes through, as with numpy.maximum
        y00 = 0 if y00 < 0 else y00
        y01 = 0 if y01 < 0 else y01
        y10 = 0 if y10 < 0 else y10
        y11 = 0 if y11 < 0 else y11
    return y00, y01, y10, y11


@_jit
def output_tiles(M, b, relu, th, tw, out):
    """out (G, K, OH, OW) = A^T m A + bias (ReLU optional; NaN passes through it) for every tile m
    of the :func:`positions` buffer M (K channels); outputs of the tile grid past OH or OW are
    dropped."""
    g, k, oh, ow = out.shape
    tiles = th * tw
    width = g * tiles
    src = M.reshape(-1)
    dst = out.reshape(-1)
    w1, two = _u(ow), _u(2)
    full = _u(ow // 2)  # tiles with both columns inside the output
    for bi in range(g):
        for kk in range(k):
            bias = b[kk]
            for ty in range(th):
                q = _offsets(_u(kk * width + bi * tiles + ty * tw), _u(M.shape[1]))
                d0 = _u(((bi * k + kk) * oh + 2 * ty) * ow)
                if 2 * ty + 1 < oh:
                    for tx in range(full):
                        d = d0 + two * tx
                        dst[d], dst[d + 1], dst[d + w1], dst[d + w1 + 1] = _output_tile(src, q, tx, bias, relu)
                else:
                    for tx in range(full):
                        d = d0 + two * tx
                        dst[d], dst[d + 1], _, _ = _output_tile(src, q, tx, bias, relu)
                if ow % 2:  # the last tile's second column lies past the output
                    y00, _, y10, _ = _output_tile(src, q, full, bias, relu)
                    d = d0 + two * full
                    dst[d] = y00
                    if 2 * ty + 1 < oh:
                        dst[d + w1] = y10


@_jit
def output_grad_tiles(dout, th, tw, dM):
    """dM (a :func:`positions` buffer, K channels) = A dy A^T for every 2x2 tile dy of dout
    (G, K, OH, OW), zero past its edges: the adjoint of :func:`output_tiles` (less the bias)."""
    g, k, oh, ow = dout.shape
    tiles = th * tw
    width = g * tiles
    src = dout.reshape(-1)
    out = dM.reshape(-1)
    zero = np.zeros(1, dtype=dM.dtype)[0]  # past the edges (a zero of dM's type)
    w1, two = _u(ow), _u(2)
    for bi in range(g):
        for kk in range(k):
            for ty in range(th):
                q = _offsets(_u(kk * width + bi * tiles + ty * tw), _u(dM.shape[1]))
                s0 = _u(((bi * k + kk) * oh + 2 * ty) * ow)
                two_rows = 2 * ty + 1 < oh
                for tx in range(_u(tw)):
                    s = s0 + two * tx
                    two_cols = two * tx + 1 < ow
                    y00 = src[s]
                    y01 = src[s + 1] if two_cols else zero
                    y10 = src[s + w1] if two_rows else zero
                    y11 = src[s + w1 + 1] if two_rows and two_cols else zero
                    # A on each row of the tile, then on each column
                    a0, a1, a2, a3 = _a(y00, y01)
                    b0, b1, b2, b3 = _a(y10, y11)
                    out[q[0] + tx], out[q[4] + tx], out[q[8] + tx], out[q[12] + tx] = _a(a0, b0)
                    out[q[1] + tx], out[q[5] + tx], out[q[9] + tx], out[q[13] + tx] = _a(a1, b1)
                    out[q[2] + tx], out[q[6] + tx], out[q[10] + tx], out[q[14] + tx] = _a(a2, b2)
                    out[q[3] + tx], out[q[7] + tx], out[q[11] + tx], out[q[15] + tx] = _a(a3, b3)


@_jit
def add_input_grad_tiles(dV, g, c, hp, wp, th, tw, flat):
    """The adjoint of :func:`input_tiles`: B dv B^T of every tile dv of the :func:`positions`
    buffer dV added into the padded planes in ``flat`` (zeroed by the caller) at the tile's place,
    tile after tile."""
    plane = hp * wp
    tiles = th * tw
    width = g * tiles
    src = dV.reshape(-1)
    w1 = _u(wp)
    w2, w3, two = w1 + w1, w1 + w1 + w1, _u(2)
    for b in range(g):
        for ch in range(c):
            for ty in range(th):
                s0 = _u((b * c + ch) * plane + 2 * ty * wp)
                q = _offsets(_u(ch * width + b * tiles + ty * tw), _u(dV.shape[1]))
                for tx in range(_u(tw)):
                    # B on each column of dv: rows a, b, c, e of the result
                    a0, b0, c0, e0 = _b(src[q[0] + tx], src[q[4] + tx], src[q[8] + tx], src[q[12] + tx])
                    a1, b1, c1, e1 = _b(src[q[1] + tx], src[q[5] + tx], src[q[9] + tx], src[q[13] + tx])
                    a2, b2, c2, e2 = _b(src[q[2] + tx], src[q[6] + tx], src[q[10] + tx], src[q[14] + tx])
                    a3, b3, c3, e3 = _b(src[q[3] + tx], src[q[7] + tx], src[q[11] + tx], src[q[15] + tx])
                    s = s0 + two * tx
                    for row, (r0, r1, r2, r3) in ((s, (a0, a1, a2, a3)), (s + w1, (b0, b1, b2, b3))):
                        d0, d1, d2, d3 = _b(r0, r1, r2, r3)  # then B on the row, added in place
                        flat[row] += d0
                        flat[row + 1] += d1
                        flat[row + 2] += d2
                        flat[row + 3] += d3
                    for row, (r0, r1, r2, r3) in ((s + w2, (c0, c1, c2, c3)), (s + w3, (e0, e1, e2, e3))):
                        d0, d1, d2, d3 = _b(r0, r1, r2, r3)
                        flat[row] += d0
                        flat[row + 1] += d1
                        flat[row + 2] += d2
                        flat[row + 3] += d3


@_jit
def crop_tiles(flat, pad, hp, wp, dx):
    """dx (G, C, H, W) = the part of the hp x wp planes in ``flat`` at row and column ``pad``."""
    g, c, h, w = dx.shape
    plane = hp * wp
    dst = dx.reshape(-1)
    for p in range(g * c):
        for y in range(h):
            s = _u(p * plane + (pad + y) * wp + pad)
            d = _u((p * h + y) * w)
            for q in range(_u(w)):
                dst[d + q] = flat[s + q]

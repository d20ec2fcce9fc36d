"""Winograd F(2x2, 3x3): 3x3 stride-1 convolutions with 16 multiplications per 2x2 outputs, not 36.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016).  Each 2x2 tile of
the output is computed from a 4x4 tile d of the (zero-padded) input and a 3x3 filter g as

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* element by element, summed over channels)

so, with U = G g G^T (16, K, C) for the filters and V = B^T d B for the input, the sum over
channels is one matrix product per tile position p: 16 BLAS products.  An output whose height or
width is odd is covered by a tile grid one row or column larger; the extra outputs are never
written.

The backward is the exact adjoint of that forward (the same tiles, the same products, transposed):

    dM = A dY A^T                 the output gradient's tiles, transformed
    dU[p] = dM[p]^T V[p]          then dW = G^T dU G
    dV[p] = dM[p] U[p]            then dx gets B dV B^T added back at each tile's place

The transforms are compiled loops (the matrices B, A have entries 0 and +-1, G has +-1/2: the
transforms are additions) over a chunk of G images at a time, with the chunk's planes (its images
and channels) last: see the section below.  The caller (``numba_conv.NumbaConvolution``) splits
the batch into chunks and threads.
"""

from __future__ import annotations

import numpy as np

from fastnet.backends.numba_jit import jit as _jit
from fastnet.backends.numba_sums import channel_sums

# G (4 x 3): the filter transform.  0.5 and its multiples are exact in every float dtype.
FILTER_TRANSFORM = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def tile_grid(oh: int, ow: int) -> tuple[int, int]:
    """Tiles down and across: enough 2x2 tiles to cover an OH x OW output."""
    return (oh + 1) // 2, (ow + 1) // 2


# G (x) G (16, 9): entry [4a + b, 3i + j] = G[a, i] G[b, j] (exact: 0, 1/4, 1/2 or 1), so that
# U = G W G^T for every filter at once is one matrix product, and so is its adjoint (a few
# microseconds; two tensordots and a transpose took up to 140 on DeepConvNet's 64x64 filters).
_FILTER_PAIRS = {np.dtype(t): np.kron(FILTER_TRANSFORM, FILTER_TRANSFORM).astype(t) for t in (np.float32, np.float64)}


def _filter_pairs(dtype):
    pairs = _FILTER_PAIRS.get(dtype)
    return pairs if pairs is not None else np.kron(FILTER_TRANSFORM, FILTER_TRANSFORM).astype(dtype)


def filter_tiles(W, channels_first=False):
    """W (K, C, 3, 3) -> U (16, K, C), contiguous: U[4a + b] = (G W G^T)[a, b], in W's dtype;
    ``channels_first``: (16, C, K), what the forward multiplies by."""
    k, c = W.shape[:2]
    if channels_first:
        flat = np.ascontiguousarray(W.transpose(1, 0, 2, 3)).reshape(c * k, 9)
        return np.matmul(_filter_pairs(W.dtype), flat.T).reshape(16, c, k)
    return np.matmul(_filter_pairs(W.dtype), np.ascontiguousarray(W).reshape(k * c, 9).T).reshape(16, k, c)


def filter_grad(dU):
    """dU (16, K, C) -> dW (K, C, 3, 3) = G^T dU G: the adjoint of :func:`filter_tiles`."""
    k, c = dU.shape[1:]
    flat = np.ascontiguousarray(dU).reshape(16, k * c)
    return np.matmul(flat.T, _filter_pairs(dU.dtype)).reshape(k, c, 3, 3)


def position_stride(channels: int, tiles: int, itemsize: int) -> int:
    """Elements from one tile position's (tiles x channels) matrix to the next's.  At least the
    matrix, and not a multiple of 4 KiB in bytes: the transforms read or write all 16 positions of
    a tile together, and 16 streams 4 KiB apart fall into one set of the L1 cache and evict each
    other (measured: a skew of one cache line per position made the transforms several times
    faster).  Rounded up to 4 KiB, plus 64 bytes."""
    page = 4096 // itemsize
    return -(-channels * tiles // page) * page + 64 // itemsize


def positions(buffer, channels: int, tiles: int, itemsize: int, count: int = 16):
    """(rows, matrices): the start of a flat buffer as the ``count`` rows (count, stride) the
    transforms index and as the ``count`` (tiles x channels) matrices the products take (views of
    the same memory): a tile's values for all channels side by side, as the transforms below write
    and read them.  16 tile positions here; F(4x4, 3x3) has 36."""
    stride = position_stride(channels, tiles, itemsize)
    rows = buffer[: count * stride].reshape(count, stride)
    return rows, rows[:, : channels * tiles].reshape(count, tiles, channels)


# Flat arrays indexed with unsigned offsets: numba then drops the negative-index check that keeps
# the loops from being vectorised (see numba_conv.py).
_u = np.uint64


# --- the forward, with the planes last --------------------------------------------------------------
# The forward's transforms work on a chunk's G*C planes side by side: every value of a tile position
# for all planes (the images and channels of the chunk) is one contiguous run, so each step below is
# a loop over a long run reading two or three runs of one array and writing one run of another --
# loops numba vectorises (a loop that reads and writes 16 runs at once stays scalar: the compiler
# would need a run-time overlap check for every pair).  The position matrices are then (tiles * G,
# C) and (tiles * G, K): the products take the filters transposed, U^T (16, C, K).
#
#   planes_last   x (G, C, H, W) -> P (hp, 2, tw + 1, G*C): padded, the columns split by parity
#                 (by x % 4 for F(4x4, 3x3), which shares this and planes_first with step=4)
#   input_rows    P -> R (hp, 4, tw, G*C): d B on every row of every tile (4 runs per row)
#   input_cols    R -> V: B^T on the columns (16 runs per row of tiles)
#   output_tiles_planes_last  M -> out (G, K, OH, OW): A^T on the columns, on the rows, bias, ReLU


@_jit
def planes_last(x, pad, th, tw, P, step=2):
    """P (hp, step, tw+1, G*C), all of it written: P[y, x % step, x // step, q] is plane q of x,
    zero-padded by ``pad`` (and past the tile grid), at row y and column x; hp = step th + 2.
    ``step`` is the tile's outputs per side: 2 here, 4 for F(4x4, 3x3) (numba_winograd4)."""
    g, c, h, w = x.shape
    gc = g * c
    hp, wp = step * th + 2, step * tw + 2
    src = x.reshape(-1)
    dst = P.reshape(-1)
    zero = np.zeros(1, dtype=P.dtype)[0]
    plane = _u(h * w)
    for y in range(hp):
        yy = y - pad
        for xx in range(wp):
            d = _u(((step * y + xx % step) * (tw + 1) + xx // step) * gc)
            col = xx - pad
            if 0 <= yy < h and 0 <= col < w:
                s = _u(yy * w + col)
                for q in range(_u(gc)):
                    dst[d + q] = src[s + q * plane]
            else:
                for q in range(_u(gc)):
                    dst[d + q] = zero


@_jit
def input_tiles_planes_last(P, th, tw, gc, R, V):
    """V = B^T d B for every tile d of the planes in P (:func:`planes_last`): position p of tile
    t = ty*tw + tx of plane q at V[p, t*gc + q] (V a :func:`positions` row buffer).  R (hp*4*tw*gc)
    is room for the rows' transforms."""
    hp = 2 * th + 2
    n = _u(tw * gc)
    half = _u((tw + 1) * gc)
    g1 = _u(gc)
    src = P.reshape(-1)
    rows = R.reshape(-1)
    # d B, row by row: the four columns of a tile are the even and odd halves at tx and tx + 1
    for y in range(hp):
        e = _u(2 * y) * half
        o = e + half
        r = _u(4 * y) * n
        for i in range(n):
            rows[r + i] = src[e + i] - src[e + g1 + i]
        r += n
        for i in range(n):
            rows[r + i] = src[o + i] + src[e + g1 + i]
        r += n
        for i in range(n):
            rows[r + i] = src[e + g1 + i] - src[o + i]
        r += n
        for i in range(n):
            rows[r + i] = src[o + i] - src[o + g1 + i]
    # then B^T on the columns: rows 2ty .. 2ty + 3 of the transformed rows
    out = V.reshape(-1)
    vs = _u(V.shape[1])
    four = _u(4) * n
    for ty in range(th):
        base = _u(ty) * n
        for j in range(4):
            a0 = _u(8 * ty + j) * n
            a1, a2, a3 = a0 + four, a0 + four + four, a0 + four + four + four
            d0 = _u(j) * vs + base
            d1, d2, d3 = d0 + _u(4) * vs, d0 + _u(8) * vs, d0 + _u(12) * vs
            for i in range(n):
                out[d0 + i] = rows[a0 + i] - rows[a2 + i]
            for i in range(n):
                out[d1 + i] = rows[a1 + i] + rows[a2 + i]
            for i in range(n):
                out[d2 + i] = rows[a2 + i] - rows[a1 + i]
            for i in range(n):
                out[d3 + i] = rows[a1 + i] - rows[a3 + i]


@_jit
def tile_row_to_planes(scratch, first, step, n, ty, b, relu, dst, g, k, oh, ow):
    """Row ``ty`` of output tiles (``step`` x ``step`` outputs each) into the flat planes ``dst``
    (G, K, OH, OW): output row a, column xo of the row is run ``first + step*a + xo % step`` of
    ``scratch`` (runs of n), at ``(xo // step) * G*K + image*K + filter``; bias added, ReLU
    optional (NaN passes through it, as with numpy.maximum), outputs past OH or OW dropped.
    F(2x2, 3x3) and F(4x4, 3x3) (``step`` 2 and 4) both place their outputs so."""
    gk = g * k
    mask, shift = _u(step - 1), _u(1 if step == 2 else 2)
    for bi in range(g):
        for kk in range(k):
            bias = b[kk]
            q = _u(bi * k + kk)
            for a in range(step):
                y = step * ty + a
                if y >= oh:
                    break
                d = _u(((bi * k + kk) * oh + y) * ow)
                row = _u(first + step * a)
                for xo in range(_u(ow)):
                    v = scratch[(row + (xo & mask)) * n + (xo >> shift) * _u(gk) + q] + bias
                    if relu and v < 0:
                        v = 0
                    dst[d + xo] = v


@_jit
def planes_to_tile_row(src, first, step, n, ty, tw, zero, scratch, g, k, oh, ow):
    """The adjoint layout of :func:`tile_row_to_planes`, without the bias: row ``ty`` of tiles of
    the planes ``src`` (G, K, OH, OW) into the runs of ``scratch``, ``zero`` past OH or OW."""
    gk = g * k
    mask, shift = _u(step - 1), _u(1 if step == 2 else 2)
    for a in range(step):
        y = step * ty + a
        row = _u(first + step * a)
        for bi in range(g):
            for kk in range(k):
                q = _u(bi * k + kk)
                d = _u(((bi * k + kk) * oh + y) * ow)
                for xo in range(_u(step * tw)):
                    v = src[d + xo] if y < oh and xo < ow else zero
                    scratch[(row + (xo & mask)) * n + (xo >> shift) * _u(gk) + q] = v


@_jit
def output_tiles_planes_last(M, b, relu, th, tw, work, out):
    """out (G, K, OH, OW) = A^T m A + bias (ReLU optional; NaN passes through it) for every tile m of
    M, position p of tile t = ty*tw + tx, image i, filter k at M[p, (t*G + i)*K + k] (a
    :func:`positions` row buffer); outputs of the tile grid past OH or OW are dropped.  ``work``
    holds 12*tw*G*K values."""
    g, k, oh, ow = out.shape
    gk = g * k
    n = _u(tw * gk)
    src = M.reshape(-1)
    ms = _u(M.shape[1])
    dst = out.reshape(-1)
    scratch = work.reshape(-1)
    for ty in range(th):
        base = _u(ty) * n
        # A^T on the columns: r[a, j] (8 runs) from positions j, 4 + j, 8 + j, 12 + j
        for j in range(4):
            m0 = _u(j) * ms + base
            m1, m2, m3 = m0 + _u(4) * ms, m0 + _u(8) * ms, m0 + _u(12) * ms
            r0, r1 = _u(j) * n, _u(4 + j) * n
            for i in range(n):
                scratch[r0 + i] = src[m0 + i] + src[m1 + i] + src[m2 + i]
            for i in range(n):
                scratch[r1 + i] = src[m1 + i] - src[m2 + i] - src[m3 + i]
        # then on the rows: y[a, c] (4 runs) after the eight
        for a in range(2):
            r = _u(4 * a) * n
            y0, y1 = _u(8 + 2 * a) * n, _u(9 + 2 * a) * n
            for i in range(n):
                scratch[y0 + i] = scratch[r + i] + scratch[r + n + i] + scratch[r + n + n + i]
            for i in range(n):
                scratch[y1 + i] = scratch[r + n + i] - scratch[r + n + n + i] - scratch[r + n + n + n + i]
        tile_row_to_planes(scratch, 8, 2, n, ty, b, relu, dst, g, k, oh, ow)


# --- the backward, with the planes last: the adjoints of the three forward steps ---------------------
@_jit
def output_grad_tiles_planes_last(dout, th, tw, work, dM):
    """dM = A dy A^T for every 2x2 tile dy of dout (G, K, OH, OW), zero past its edges: position p of
    tile t, image i, filter k at dM[p, (t*G + i)*K + k] (a :func:`positions` row buffer).  The
    adjoint of :func:`output_tiles_planes_last` (less the bias); ``work`` holds 12*tw*G*K values."""
    g, k, oh, ow = dout.shape
    gk = g * k
    n = _u(tw * gk)
    src = dout.reshape(-1)
    out = dM.reshape(-1)
    ms = _u(dM.shape[1])
    scratch = work.reshape(-1)
    zero = np.zeros(1, dtype=dM.dtype)[0]
    for ty in range(th):
        # y[a, c] (4 runs at 8n .. 11n): the tile row's outputs, image and filter last
        planes_to_tile_row(src, 8, 2, n, ty, tw, zero, scratch, g, k, oh, ow)
        # A on the rows: r[a, j] at (4a + j) n
        for a in range(2):
            y0, y1 = _u(8 + 2 * a) * n, _u(9 + 2 * a) * n
            r = _u(4 * a) * n
            for i in range(n):
                scratch[r + i] = scratch[y0 + i]
            for i in range(n):
                scratch[r + n + i] = scratch[y0 + i] + scratch[y1 + i]
            for i in range(n):
                scratch[r + n + n + i] = scratch[y0 + i] - scratch[y1 + i]
            for i in range(n):
                scratch[r + n + n + n + i] = -scratch[y1 + i]
        # then on the columns: positions j, 4 + j, 8 + j, 12 + j
        base = _u(ty) * n
        for j in range(4):
            r0, r1 = _u(j) * n, _u(4 + j) * n
            m0 = _u(j) * ms + base
            m1, m2, m3 = m0 + _u(4) * ms, m0 + _u(8) * ms, m0 + _u(12) * ms
            for i in range(n):
                out[m0 + i] = scratch[r0 + i]
            for i in range(n):
                out[m1 + i] = scratch[r0 + i] + scratch[r1 + i]
            for i in range(n):
                out[m2 + i] = scratch[r0 + i] - scratch[r1 + i]
            for i in range(n):
                out[m3 + i] = -scratch[r1 + i]


@_jit
def input_grad_tiles_planes_last(dV, th, tw, gc, R, P):
    """The adjoint of :func:`input_tiles_planes_last`: B dv B^T of every tile dv of dV added up, at
    the tiles' places, into P (hp, 2, tw+1, G*C), all of which is written.  R as there."""
    hp = 2 * th + 2
    n = _u(tw * gc)
    half = _u((tw + 1) * gc)
    g1 = _u(gc)
    src = dV.reshape(-1)
    vs = _u(dV.shape[1])
    rows = R.reshape(-1)
    four = _u(4) * n
    for i in range(_u(hp) * four):
        rows[i] = 0
    # B on the columns, added into rows 2ty .. 2ty + 3 (shared with the next row of tiles)
    for ty in range(th):
        base = _u(ty) * n
        for j in range(4):
            a0 = _u(8 * ty + j) * n
            a1, a2, a3 = a0 + four, a0 + four + four, a0 + four + four + four
            d0 = _u(j) * vs + base
            d1, d2, d3 = d0 + _u(4) * vs, d0 + _u(8) * vs, d0 + _u(12) * vs
            for i in range(n):
                rows[a0 + i] += src[d0 + i]
            for i in range(n):
                rows[a1 + i] += src[d1 + i] - src[d2 + i] + src[d3 + i]
            for i in range(n):
                rows[a2 + i] += src[d1 + i] + src[d2 + i] - src[d0 + i]
            for i in range(n):
                rows[a3 + i] -= src[d3 + i]
    # then B on the rows, into the even and odd halves at tx and tx + 1
    dst = P.reshape(-1)
    for y in range(hp):
        e = _u(2 * y) * half
        o = e + half
        r = _u(4 * y) * n
        for i in range(half + half):
            dst[e + i] = 0
        for i in range(n):
            dst[e + i] += rows[r + i]
        for i in range(n):
            dst[e + g1 + i] += rows[r + n + i] + rows[r + n + n + i] - rows[r + i]
        for i in range(n):
            dst[o + i] += rows[r + n + i] - rows[r + n + n + i] + rows[r + n + n + n + i]
        for i in range(n):
            dst[o + g1 + i] -= rows[r + n + n + n + i]


@_jit
def planes_first(P, pad, th, tw, dx, step=2):
    """dx (G, C, H, W) = the planes in P (:func:`planes_last`'s layout, the same ``step``) at row
    and column ``pad``: the adjoint of :func:`planes_last`."""
    g, c, h, w = dx.shape
    gc = g * c
    dst = dx.reshape(-1)
    src = P.reshape(-1)
    plane = _u(h * w)
    if 4096 % (h * w * dx.itemsize) == 0:
        # Planes a divisor of 4 KiB apart (8x8 float32: 256 bytes): writing one value to each plane
        # in turn lands every 16th in one set of the L1 cache, which thrashes (measured 4-5x
        # slower).  Plane by plane instead: contiguous writes, the reads a stride apart.
        block = _u((tw + 1) * gc)
        mask, shift = step - 1, (1 if step == 2 else 2)  # step is 2 or 4: x % step, x // step
        for q in range(gc):
            for yy in range(h):
                row = _u(step * (yy + pad)) * block + _u(q)
                d = _u(q) * plane + _u(yy * w)
                for col in range(w):
                    xx = col + pad
                    dst[d + _u(col)] = src[row + _u(xx & mask) * block + _u(xx >> shift) * _u(gc)]
        return
    for yy in range(h):
        y = yy + pad
        for col in range(w):
            xx = col + pad
            s = _u(((step * y + xx % step) * (tw + 1) + xx // step) * gc)
            d = _u(yy * w + col)
            for q in range(_u(gc)):
                dst[d + q * plane] = src[s + q]


# --- a chunk's passes joined: each call releases the interpreter's lock once ------------------------
# With two convolution threads, every compiled call that returns has to take the lock back from the
# other thread; fewer, longer calls per chunk hand it over less often.


@_jit
def input_tiles(x, pad, th, tw, P, gc, R, V):
    """:func:`planes_last` then :func:`input_tiles_planes_last`: the input's tiles V of a chunk."""
    planes_last(x, pad, th, tw, P)
    input_tiles_planes_last(P, th, tw, gc, R, V)


@_jit
def gradient_and_input_tiles(dout, work, dM, x, pad, th, tw, P, gc, R, V, db):
    """The output gradient's tiles dM, the input's tiles V and the bias gradient db of a chunk,
    for its backward."""
    g, k, oh, ow = dout.shape
    channel_sums(dout.reshape(g, k, oh * ow), db)
    output_grad_tiles_planes_last(dout, th, tw, work, dM)
    input_tiles(x, pad, th, tw, P, gc, R, V)


@_jit
def input_grad(dV, th, tw, gc, R, P, pad, dx):
    """:func:`input_grad_tiles_planes_last` then :func:`planes_first`: the chunk's dx from dV."""
    input_grad_tiles_planes_last(dV, th, tw, gc, R, P)
    planes_first(P, pad, th, tw, dx)

"""Winograd F(4x4, 3x3): 36 multiplications per 4x4 outputs where F(2x2, 3x3) takes 64 and the
direct convolution 144.

The same algorithm as ``numba_winograd`` (read its docstring first) with 6x6 input tiles at a
stride of 4, 36 tile positions, and the transforms of Lavin and Gray (2016), section 4.2:

    B^T (6 x 6): entries 0, +-1, +-2, +-4, -5     G (6 x 3): +-1/4, +-1/6, 1/12, 1/24, 1/6, 1
    A^T (4 x 6): entries 0, +-1, +-2, 4, +-8

The products save 44% of F(2x2, 3x3)'s multiply-adds; the price is a larger rounding error (the
transforms' entries are larger: ``tests/test_winograd.py`` bounds it the same derived way) and
a tile grid of 4 that may overrun the output by up to 3 rows and columns.

The transforms run, as there, on a chunk's planes side by side (the planes last), each step a
matrix applied to runs of values: one loop per row of the matrix, reading the runs of its nonzero
entries and writing one (:func:`_apply`), which numba vectorises.  The chunk's column split is by
x mod 4.
"""

from __future__ import annotations

import numpy as np

from fastnet.backends.numba_jit import jit as _jit
from fastnet.backends.numba_winograd import planes_to_tile_row, tile_row_to_planes

M_OUT = 4  # outputs per tile side
TILE = 6  # inputs per tile side
POSITIONS = TILE * TILE

INPUT_TRANSFORM_T = np.array(  # B^T
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=np.float64,
)
FILTER_TRANSFORM = np.array(  # G
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=np.float64,
)
OUTPUT_TRANSFORM_T = np.array(  # A^T
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    dtype=np.float64,
)


def tile_grid(oh: int, ow: int) -> tuple[int, int]:
    """Tiles down and across: enough 4x4 tiles to cover an OH x OW output."""
    return -(-oh // M_OUT), -(-ow // M_OUT)


def filter_tiles(W):
    """W (K, C, 3, 3) -> U (36, K, C), contiguous: U[6a + b] = (G W G^T)[a, b], computed in float64
    and rounded once to W's dtype (G's entries 1/6, 1/12, 1/24 are not exact in any float)."""
    k, c = W.shape[:2]
    g = FILTER_TRANSFORM
    left = np.tensordot(g, W.astype(np.float64), axes=(1, 2))  # (6, K, C, 3): G W
    both = np.tensordot(left, g, axes=(3, 1))  # (6, K, C, 6): G W G^T
    return np.ascontiguousarray(both.transpose(0, 3, 1, 2), dtype=W.dtype).reshape(POSITIONS, k, c)


def filter_grad(dU):
    """dU (36, K, C) -> dW (K, C, 3, 3) = G^T dU G, in float64 and rounded once: the adjoint of
    :func:`filter_tiles`."""
    k, c = dU.shape[1:]
    g = FILTER_TRANSFORM
    tiles = dU.astype(np.float64).reshape(TILE, TILE, k, c)
    left = np.tensordot(g, tiles, axes=(0, 0))  # (3, 6, K, C): G^T dU
    both = np.tensordot(left, g, axes=(1, 0))  # (3, K, C, 3): G^T dU G
    return np.ascontiguousarray(both.transpose(1, 2, 0, 3), dtype=dU.dtype)


def transforms(dtype):
    """(B^T, A^T, B, A) in ``dtype`` (their entries are small integers: exact), for the kernels."""
    bt, at = INPUT_TRANSFORM_T.astype(dtype), OUTPUT_TRANSFORM_T.astype(dtype)
    return bt, at, np.ascontiguousarray(bt.T), np.ascontiguousarray(at.T)


_u = np.uint64


@_jit
def _apply(T, src, src_at, dst, dst_at, n, add):
    """dst[dst_at[r] + i] (+)= sum over k of T[r, k] * src[src_at[k] + i], for i < n: a matrix
    applied to runs of n values, one loop per row of T over the runs of its nonzero entries (at
    most 6, each loop reading that many runs and writing one: vectorised).  ``add``: add into dst
    instead of overwriting it.  The terms are added in the order of k."""
    rows, cols = T.shape
    c = np.empty(6, dtype=T.dtype)
    o = np.empty(6, dtype=np.uint64)
    for r in range(rows):
        d = dst_at[r]
        m = 0
        for k in range(cols):
            if T[r, k] != 0:
                c[m] = T[r, k]
                o[m] = src_at[k]
                m += 1
        c0, c1, c2, c3, c4, c5 = c[0], c[1], c[2], c[3], c[4], c[5]
        o0, o1, o2, o3, o4, o5 = o[0], o[1], o[2], o[3], o[4], o[5]
        if add:
            if m == 1:
                for i in range(n):
                    dst[d + i] += c0 * src[o0 + i]
            elif m == 2:
                for i in range(n):
                    dst[d + i] += c0 * src[o0 + i] + c1 * src[o1 + i]
            elif m == 3:
                for i in range(n):
                    dst[d + i] += c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i]
            elif m == 4:
                for i in range(n):
                    dst[d + i] += c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i] + c3 * src[o3 + i]
            elif m == 5:
                for i in range(n):
                    dst[d + i] += (
                        c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i] + c3 * src[o3 + i] + c4 * src[o4 + i]
                    )
            elif m == 6:
                for i in range(n):
                    dst[d + i] += (
                        c0 * src[o0 + i]
                        + c1 * src[o1 + i]
                        + c2 * src[o2 + i]
                        + c3 * src[o3 + i]
                        + c4 * src[o4 + i]
                        + c5 * src[o5 + i]
                    )
        else:
            if m == 0:
                for i in range(n):
                    dst[d + i] = 0
            elif m == 1:
                for i in range(n):
                    dst[d + i] = c0 * src[o0 + i]
            elif m == 2:
                for i in range(n):
                    dst[d + i] = c0 * src[o0 + i] + c1 * src[o1 + i]
            elif m == 3:
                for i in range(n):
                    dst[d + i] = c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i]
            elif m == 4:
                for i in range(n):
                    dst[d + i] = c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i] + c3 * src[o3 + i]
            elif m == 5:
                for i in range(n):
                    dst[d + i] = (
                        c0 * src[o0 + i] + c1 * src[o1 + i] + c2 * src[o2 + i] + c3 * src[o3 + i] + c4 * src[o4 + i]
                    )
            else:
                for i in range(n):
                    dst[d + i] = (
                        c0 * src[o0 + i]
                        + c1 * src[o1 + i]
                        + c2 * src[o2 + i]
                        + c3 * src[o3 + i]
                        + c4 * src[o4 + i]
                        + c5 * src[o5 + i]
                    )


@_jit
def _row_starts(y, tw, gc):
    """Where the six columns 4 tx + k of the tiles on row y start in the planes (tx = 0)."""
    at = np.empty(6, dtype=np.uint64)
    for k in range(6):
        at[k] = _u(((4 * y + k % 4) * (tw + 1) + k // 4) * gc)
    return at


@_jit
def input_tiles(P, bt, th, tw, gc, R, V):
    """V = B^T d B for every tile d of the planes in P: position p of tile t = ty*tw + tx of plane
    q at V[p, t*gc + q] (V a (36, stride) row buffer).  R: room for (4 th + 2) * 6 * tw * gc."""
    hp = 4 * th + 2
    n = _u(tw * gc)
    src = P.reshape(-1)
    rows = R.reshape(-1)
    out = V.reshape(-1)
    vs = _u(V.shape[1])
    to = np.empty(6, dtype=np.uint64)
    for y in range(hp):  # d B on every row: row y's six transformed columns at (6y + j) n
        for j in range(6):
            to[j] = _u(6 * y + j) * n
        _apply(bt, src, _row_starts(y, tw, gc), rows, to, n, False)
    frm = np.empty(6, dtype=np.uint64)
    for ty in range(th):  # then B^T on the columns
        for j in range(6):
            for k in range(6):
                frm[k] = _u(6 * (4 * ty + k) + j) * n
            for i in range(6):
                to[i] = _u(6 * i + j) * vs + _u(ty) * n
            _apply(bt, rows, frm, out, to, n, False)


@_jit
def input_grad_tiles(dV, b, th, tw, gc, R, P):
    """The adjoint of :func:`input_tiles` (``b`` = B): B dv B^T of every tile dv of dV added up,
    at the tiles' places, into P, all of which is written."""
    hp = 4 * th + 2
    n = _u(tw * gc)
    src = dV.reshape(-1)
    vs = _u(dV.shape[1])
    rows = R.reshape(-1)
    for i in range(_u(hp * 6) * n):
        rows[i] = 0
    frm = np.empty(6, dtype=np.uint64)
    to = np.empty(6, dtype=np.uint64)
    for ty in range(th):  # B on the columns, added into rows 4ty .. 4ty + 5
        for j in range(6):
            for i in range(6):
                frm[i] = _u(6 * i + j) * vs + _u(ty) * n
            for k in range(6):
                to[k] = _u(6 * (4 * ty + k) + j) * n
            _apply(b, src, frm, rows, to, n, True)
    dst = P.reshape(-1)
    half = _u((tw + 1) * gc)
    for y in range(hp):  # then B on the rows, added into the column classes at tx and tx + 1
        start = _u(4 * y) * half
        for i in range(_u(4) * half):
            dst[start + i] = 0
        for j in range(6):
            frm[j] = _u(6 * y + j) * n
        _apply(b, rows, frm, dst, _row_starts(y, tw, gc), n, True)


@_jit
def output_tiles(M, bias, relu, at, th, tw, work, out):
    """out (G, K, OH, OW) = A^T m A + bias (ReLU optional; NaN passes through it) for every tile m
    of M (position p of tile t, image i, filter k at M[p, (t*G + i)*K + k]); outputs of the tile
    grid past OH or OW are dropped.  ``work`` holds 40 * tw * G * K values."""
    g, k, oh, ow = out.shape
    gk = g * k
    n = _u(tw * gk)
    src = M.reshape(-1)
    ms = _u(M.shape[1])
    dst = out.reshape(-1)
    scratch = work.reshape(-1)
    frm = np.empty(6, dtype=np.uint64)
    to = np.empty(6, dtype=np.uint64)
    for ty in range(th):
        for j in range(6):  # A^T on the columns: r[a, j] at (6a + j) n
            for i in range(6):
                frm[i] = _u(6 * i + j) * ms + _u(ty) * n
            for a in range(4):
                to[a] = _u(6 * a + j) * n
            _apply(at, src, frm, scratch, to, n, False)
        for a in range(4):  # then on the rows: y[a, c] at (24 + 4a + c) n
            for j in range(6):
                frm[j] = _u(6 * a + j) * n
            for c in range(4):
                to[c] = _u(24 + 4 * a + c) * n
            _apply(at, scratch, frm, scratch, to, n, False)
        tile_row_to_planes(scratch, 24, M_OUT, n, ty, bias, relu, dst, g, k, oh, ow)


@_jit
def output_grad_tiles(dout, a_mat, th, tw, work, dM):
    """dM = A dy A^T for every 4x4 tile dy of dout (G, K, OH, OW), zero past its edges (``a_mat``
    = A): the adjoint of :func:`output_tiles`, less the bias.  ``work`` as there."""
    g, k, oh, ow = dout.shape
    gk = g * k
    n = _u(tw * gk)
    src = dout.reshape(-1)
    out = dM.reshape(-1)
    ms = _u(dM.shape[1])
    scratch = work.reshape(-1)
    zero = np.zeros(1, dtype=dM.dtype)[0]
    frm = np.empty(6, dtype=np.uint64)
    to = np.empty(6, dtype=np.uint64)
    for ty in range(th):
        # y[a, c] at (24 + 4a + c) n: the tile row's outputs, planes last
        planes_to_tile_row(src, 24, M_OUT, n, ty, tw, zero, scratch, g, k, oh, ow)
        for a in range(4):  # A on the rows: r[a, j] at (6a + j) n
            for c in range(4):
                frm[c] = _u(24 + 4 * a + c) * n
            for j in range(6):
                to[j] = _u(6 * a + j) * n
            _apply(a_mat, scratch, frm, scratch, to, n, False)
        for j in range(6):  # then on the columns: positions 6i + j
            for a in range(4):
                frm[a] = _u(6 * a + j) * n
            for i in range(6):
                to[i] = _u(6 * i + j) * ms + _u(ty) * n
            _apply(a_mat, scratch, frm, out, to, n, False)

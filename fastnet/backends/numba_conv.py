"""Numba convolutions: a few images at a time, on every usable core.

A convolution cuts the batch into chunks of images whose column matrix (or Winograd tiles) fits in
the cache; the convolution threads (``conv_threads``, read from the thread choice in force,
``fastnet.threads``; fewer when a share would hold too little work) each take the next chunk
nobody has taken, and compute it with a single-threaded BLAS: small products on every core at
once instead of BLAS threads waking up and waiting for each other around every small product.
The chunks' gradients are added in batch order, so the bits do not depend on the thread count.
3x3 stride-1 layers may take Winograd F(2x2, 3x3) tiles instead of columns (``numba_winograd``;
F(4x4, 3x3), ``numba_winograd4``, on request), chosen by shape and batch in one place,
:meth:`NumbaConvolution._conv_algorithm_for`.  Max pooling shares the same threads in fixed
shares of the batch (``_split_images``).  Also here: the contract's im2col/col2im and row-layout
ops, for callers that use them directly.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading

import numpy as np
from threadpoolctl import ThreadpoolController

from fastnet.backends import numba_winograd as wino
from fastnet.backends import numba_winograd4 as wino4
from fastnet.backends.dispatch import fast_path
from fastnet.backends.numba_jit import jit as _jit
from fastnet.backends.numba_sums import channel_sums
from fastnet.errors import InputError
from fastnet.shapes import window_output_hw
from fastnet.threads import conv_threads


@functools.cache
def _blas_controller():
    """numpy's BLAS under threadpoolctl (found once: a lookup scans every loaded library)."""
    return ThreadpoolController().select(user_api="blas")


class _single_threaded_blas:  # noqa: N801 - used as a context, like threadpoolctl's limit()
    """numpy's BLAS on one thread inside the block, as it was after.  Only a library that runs more
    threads is called to change: reading the count is one call, a microsecond; threadpoolctl's
    ``limit`` costs several, paid per convolution, which one image notices."""

    def __enter__(self):
        self.changed = []
        for lib in _blas_controller().lib_controllers:
            threads = lib.get_num_threads()
            if threads is not None and threads > 1:
                lib.set_num_threads(1)
                self.changed.append((lib, threads))
        return self

    def __exit__(self, *exc):
        for lib, threads in self.changed:
            lib.set_num_threads(threads)


ALGORITHMS = ("auto", "im2col", "winograd", "winograd4")


def _algorithm_from_environment() -> str:
    """FASTNET_CONV_ALGORITHM (auto, im2col, winograd or winograd4; unset or empty: auto), read at
    each call."""
    raw = os.environ.get("FASTNET_CONV_ALGORITHM")
    if raw is None:
        return "auto"
    choice = raw.strip().lower() or "auto"
    if choice not in ALGORITHMS:
        raise InputError(f"FASTNET_CONV_ALGORITHM={choice!r}: expected one of {', '.join(ALGORITHMS)}")
    return choice


# --- convolution: im2col / col2im and the output layout -----------------------------------------
@_jit
def _im2col(x, fh, fw, stride, pad, oh, ow, col):
    n, c, h, w = x.shape
    for b in range(n):
        for y in range(oh):
            top = y * stride - pad
            for xo in range(ow):
                left = xo * stride - pad
                row = (b * oh + y) * ow + xo
                k = 0
                if top >= 0 and left >= 0 and top + fh <= h and left + fw <= w:
                    for ch in range(c):  # the window lies inside the image: no bounds checks
                        for i in range(fh):
                            for j in range(fw):
                                col[row, k] = x[b, ch, top + i, left + j]
                                k += 1
                else:
                    for ch in range(c):
                        for i in range(fh):
                            yy = top + i
                            for j in range(fw):
                                xx = left + j
                                col[row, k] = x[b, ch, yy, xx] if 0 <= yy < h and 0 <= xx < w else 0
                                k += 1


@_jit
def _col2im(col, fh, fw, stride, pad, oh, ow, img):
    n, c, h, w = img.shape
    for b in range(n):
        for y in range(oh):
            for xo in range(ow):
                row = (b * oh + y) * ow + xo
                k = 0
                for ch in range(c):
                    for i in range(fh):
                        yy = y * stride + i - pad
                        for j in range(fw):
                            xx = xo * stride + j - pad
                            if 0 <= yy < h and 0 <= xx < w:
                                img[b, ch, yy, xx] += col[row, k]
                            k += 1


@_jit
def _rows_to_nchw(rows, b, relu, out):
    """rows (N*P, F) + bias -> out (N, F, P), ReLU optional, in one pass."""
    n, f, p = out.shape
    for bi in range(n):
        base = bi * p
        for q in range(p):
            for k in range(f):
                v = rows[base + q, k] + b[k]
                if relu and v < 0:
                    v = 0
                out[bi, k, q] = v


@_jit
def _nchw_to_rows(x, rows):
    n, f, p = x.shape
    for bi in range(n):
        base = bi * p
        for k in range(f):
            for q in range(p):
                rows[base + q, k] = x[bi, k, q]


# --- convolution, a few images at a time: planes in, planes out ------------------------------------
# The fast convolution works on a chunk of G images whose column matrix fits in the cache: the
# transposed column matrix colT (C*FH*FW, G*OH*OW) is built from the images by copying whole rows
# (a gather), the filter matrix multiplies it from the left, and the result is already in the
# images' channel-major order.  Nothing of size N*OH*OW x C*FH*FW is ever written to memory.
@_jit
def _im2col_t(x, fh, fw, stride, pad, oh, ow, colT):
    """x (G, C, H, W) -> colT (C*FH*FW, G*OH*OW): row (c, i, j) holds x[:, c] shifted by (i, j)."""
    g, c, h, w = x.shape
    p = oh * ow
    for ch in range(c):
        for i in range(fh):
            for j in range(fw):
                r = (ch * fh + i) * fw + j
                # the output columns [x0, x1) read input columns xo*stride + j - pad inside the image
                x0 = min(ow, max(0, (pad - j + stride - 1) // stride))
                x1 = max(x0, min(ow, (w - 1 + pad - j) // stride + 1))
                off = j - pad
                for b in range(g):
                    for y in range(oh):
                        base = b * p + y * ow
                        yy = y * stride + i - pad
                        if yy < 0 or yy >= h:
                            colT[r, base : base + ow] = 0
                            continue
                        colT[r, base : base + x0] = 0
                        if stride == 1:  # a contiguous run: a plain copy
                            colT[r, base + x0 : base + x1] = x[b, ch, yy, x0 + off : x1 + off]
                        else:
                            for xo in range(x0, x1):
                                colT[r, base + xo] = x[b, ch, yy, xo * stride + off]
                        colT[r, base + x1 : base + ow] = 0


@_jit
def _col2im_t(dcolT, fh, fw, stride, pad, oh, ow, dx):
    """Adjoint of _im2col_t as a gather: each image row sums the colT entries copied from it."""
    g, c, h, w = dx.shape
    p = oh * ow
    for b in range(g):
        for ch in range(c):
            for yy in range(h):
                for xx in range(w):
                    dx[b, ch, yy, xx] = 0
                for i in range(fh):
                    t = yy + pad - i
                    if t < 0 or t % stride != 0 or t // stride >= oh:
                        continue
                    base = b * p + (t // stride) * ow
                    for j in range(fw):
                        r = (ch * fh + i) * fw + j
                        if stride == 1:
                            # input column xx gets output column xx + pad - j where that exists
                            x0 = max(0, j - pad)
                            x1 = min(w, ow + j - pad)
                            off = base + pad - j
                            for xx in range(x0, x1):
                                dx[b, ch, yy, xx] += dcolT[r, off + xx]
                        else:
                            for xx in range(w):
                                u = xx + pad - j
                                if u >= 0 and u % stride == 0 and u // stride < ow:
                                    dx[b, ch, yy, xx] += dcolT[r, base + u // stride]


# --- stride 1: columns from padded planes ----------------------------------------------------------
# With stride 1, row (c, i, j) of the column matrix is, for each output row, a run of OW values of
# the padded plane shifted by (i, j): building it is a plain copy per output row, and the data
# gradient adds the same runs back, in order, with no scatter.  (The kernels can also compute on the
# padded width, one run per plane, dropping the extra columns afterwards: that wasted 7-29% of the
# products on DeepConvNet's layers and measured slower.)
# These kernels index flat arrays with unsigned offsets (``_u``): with signed indexes numba must
# allow for negative ones counting from the end, and that check alone keeps the copies from being
# vectorised (measured: the column build and the add-back became 4-6x faster).
_u = np.uint64


@_jit
def _pad_planes(x, pad, flat):
    """x (G, C, H, W) -> the interiors of G*C padded planes in ``flat``; the borders stay as they are
    (zero: the buffer is allocated zeroed and nothing else writes them)."""
    g, c, h, w = x.shape
    wp = w + 2 * pad
    plane = (h + 2 * pad) * wp
    src = x.reshape(-1)
    for p in range(g * c):
        for y in range(h):
            s = _u((p * h + y) * w)
            d = _u(p * plane + (pad + y) * wp + pad)
            for q in range(_u(w)):
                flat[d + q] = src[s + q]


@_jit
def _plane_cols(flat, g, c, plane, fh, fw, wpad, oh, wo, colT):
    """colT (C*FH*FW, G*OH*WO), contiguous, from G*C padded planes of width ``wpad`` in ``flat``:
    row (c, i, j), image b, output row y = the WO values from flat[(b*C + c)*plane + (y+i)*wpad + j].
    WO = OW computes only the outputs; WO = wpad computes on the padded width, one run per plane."""
    width = colT.shape[1]
    out = colT.reshape(-1)
    for ch in range(c):
        for i in range(fh):
            for j in range(fw):
                r = (ch * fh + i) * fw + j
                for b in range(g):
                    for y in range(oh):
                        s = _u((b * c + ch) * plane + (y + i) * wpad + j)
                        d = _u(r * width + (b * oh + y) * wo)
                        for q in range(_u(wo)):
                            out[d + q] = flat[s + q]


@_jit
def _add_plane_cols(dcolT, g, c, plane, fh, fw, wpad, oh, wo, flat):
    """Adjoint of _plane_cols: flat (zeroed by the caller) gets every run added back, in order."""
    width = dcolT.shape[1]
    src = dcolT.reshape(-1)
    for b in range(g):
        for ch in range(c):
            for i in range(fh):
                for j in range(fw):
                    r = (ch * fh + i) * fw + j
                    for y in range(oh):
                        d = _u((b * c + ch) * plane + (y + i) * wpad + j)
                        s = _u(r * width + (b * oh + y) * wo)
                        for q in range(_u(wo)):
                            flat[d + q] += src[s + q]


@_jit
def _rows_to_planes(rows, b, relu, out):
    """rows (F, G*P), contiguous, + bias -> out (G, F, P...), ReLU optional (NaN passes through it)."""
    g, f = out.shape[0], out.shape[1]
    p = out.size // max(1, g * f)
    width = rows.shape[1]
    src = rows.reshape(-1)
    dst = out.reshape(-1)
    for bi in range(g):
        for k in range(f):
            bk = b[k]
            s = _u(k * width + bi * p)
            d = _u((bi * f + k) * p)
            for q in range(_u(p)):
                v = src[s + q] + bk
                if relu and v < 0:
                    v = 0
                dst[d + q] = v


@_jit
def _planes_to_rows(dout, rows):
    """dout (G, F, P...) -> rows (F, G*P), contiguous."""
    g, f = dout.shape[0], dout.shape[1]
    p = dout.size // max(1, g * f)
    width = rows.shape[1]
    src = dout.reshape(-1)
    dst = rows.reshape(-1)
    for bi in range(g):
        for k in range(f):
            s = _u((bi * f + k) * p)
            d = _u(k * width + bi * p)
            for q in range(_u(p)):
                dst[d + q] = src[s + q]


@_jit
def _crop_planes(flat, pad, dx):
    """The interiors of the padded planes in ``flat`` -> dx (G, C, H, W)."""
    g, c, h, w = dx.shape
    wp = w + 2 * pad
    plane = (h + 2 * pad) * wp
    dst = dx.reshape(-1)
    for p in range(g * c):
        for y in range(h):
            s = _u(p * plane + (pad + y) * wp + pad)
            d = _u((p * h + y) * w)
            for q in range(_u(w)):
                dst[d + q] = flat[s + q]


# A chunk's passes joined: each compiled call that returns takes the interpreter's lock back from
# the other convolution threads, so fewer, longer calls per chunk hand it over less often.
@_jit
def _padded_columns(x, pad, padded, fh, fw, oh, ow, colT):
    """_pad_planes then _plane_cols: a stride-1 chunk's columns, in one call."""
    g, c, h, w = x.shape
    _pad_planes(x, pad, padded)
    _plane_cols(padded, g, c, (h + 2 * pad) * (w + 2 * pad), fh, fw, w + 2 * pad, oh, ow, colT)


@_jit
def _rows_and_sums(dout, rows, db):
    """_planes_to_rows and the chunk's bias gradient db: what a chunk's backward needs of dout."""
    g, f = dout.shape[0], dout.shape[1]
    channel_sums(dout.reshape(g, f, dout.size // max(1, g * f)), db)
    _planes_to_rows(dout, rows)


@_jit
def _rows_and_columns(dout, rows, db, x, pad, padded, fh, fw, oh, ow, colT):
    """_rows_and_sums and _padded_columns: what a stride-1 chunk's backward multiplies."""
    _rows_and_sums(dout, rows, db)
    _padded_columns(x, pad, padded, fh, fw, oh, ow, colT)


@_jit
def _padded_image_grad(dcolT, fh, fw, pad, oh, ow, padded, dx):
    """The adjoint of _padded_columns: the runs added back into zeroed padded planes (``padded`` is
    not the buffer columns are built from), then their interiors into dx."""
    g, c, h, w = dx.shape
    padded[:] = 0
    _add_plane_cols(dcolT, g, c, (h + 2 * pad) * (w + 2 * pad), fh, fw, w + 2 * pad, oh, ow, padded)
    _crop_planes(padded, pad, dx)


def _matrix(buffer, rows, width):
    """The first rows*width elements of a flat buffer as a contiguous (rows, width) matrix: the
    last chunk of a batch may be narrower, and the kernels index it flat."""
    return buffer[: rows * width].reshape(rows, width)


class NumbaConvolution:
    """The convolution ops of :class:`~fastnet.backends.numba_kernels.NumbaKernels` (a mixin)."""

    @fast_path(("x",))
    def im2col(self, x, fh, fw, stride=1, pad=0):
        n, c, h, w = x.shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        col = np.empty((n * oh * ow, c * fh * fw), dtype=x.dtype)
        _im2col(np.ascontiguousarray(x), fh, fw, stride, pad, oh, ow, col)
        return col

    @fast_path(("col",))
    def col2im(self, col, x_shape, fh, fw, stride=1, pad=0):
        n, c, h, w = x_shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        img = np.zeros((n, c, h, w), dtype=col.dtype)
        _col2im(np.ascontiguousarray(col).reshape(n * oh * ow, c * fh * fw), fh, fw, stride, pad, oh, ow, img)
        return img

    @fast_path(("out", "b"))
    def conv_bias_act(self, out, b, n, oh, ow, relu=False):
        """Rows (N*OH*OW, FN) -> a contiguous (N, FN, OH, OW) array, bias and ReLU in the same pass."""
        fn = out.shape[1]
        result = np.empty((n, fn, oh, ow), dtype=out.dtype)
        _rows_to_nchw(np.ascontiguousarray(out), np.ascontiguousarray(b), bool(relu), result.reshape(n, fn, oh * ow))
        return result

    @fast_path(("dout",))
    def nchw_to_rows(self, dout):
        n, f, oh, ow = dout.shape
        rows = np.empty((n * oh * ow, f), dtype=dout.dtype)
        _nchw_to_rows(np.ascontiguousarray(dout).reshape(n, f, oh * ow), rows)
        return rows

    # The chunk of images whose column matrix is about this many bytes: it then stays in the
    # core's cache between being built and being multiplied.
    conv_chunk_bytes = 1 << 20
    # Winograd's chunks: its per-image buffers are larger (16 tile positions each way), so a 1 MiB
    # chunk held one image of DeepConvNet's 28x28 layers, and two threads then spent their time
    # handing the GIL back and forth between a dozen short calls per image (two threads measured
    # slower than one).  Whole DeepConvNet step, 2 cores: 64.4 ms at 1 MiB, 59.8 ms at 2 MiB.
    winograd_chunk_bytes = 2 << 20
    # Threads for the convolutions: this kernel set's own count when one is given, else the
    # thread choice in force (``fastnet.threads.conv_threads``: ``using_threads``, else the
    # environment's choice, else the CPU cores this process may use).  Each takes chunks of the
    # images with a single-threaded BLAS: small products on every core at once instead of BLAS
    # threads waking up and waiting for each other around every small product.
    conv_threads = None

    def _conv_plan(self, x_shape, W, stride, pad):
        """(OH, OW, run, G): run = OH * OW columns per image, G images per chunk."""
        n, _, h, w = x_shape
        _, _, fh, fw = W.shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        run = oh * ow
        per_image = W[0].size * run * W.itemsize
        return oh, ow, run, max(1, min(n, self.conv_chunk_bytes // max(per_image, 1)))

    @fast_path(("x", "W", "b"), ndim={"x": 4}, makes_cache=True)
    def conv_forward(self, x, W, b, stride=1, pad=0, relu=False):
        """Chunks of images: columns built in cache, one product each, written straight to NCHW;
        or Winograd tiles where :meth:`_conv_algorithm_for` picks them."""
        x = np.ascontiguousarray(x)
        b = np.ascontiguousarray(b)
        algorithm = self._conv_algorithm_for(x.shape, W.shape, stride)
        if algorithm == "winograd":
            return self._winograd_forward(x, np.ascontiguousarray(W), b, pad, relu), (x, stride, pad)
        if algorithm == "winograd4":
            return self._winograd4_forward(x, np.ascontiguousarray(W), b, pad, relu), (x, stride, pad)
        fn, c, fh, fw = W.shape
        n, _, h, w = x.shape
        oh, ow, run, g = self._conv_plan(x.shape, W, stride, pad)
        wmat = np.ascontiguousarray(W).reshape(fn, -1)
        out = np.empty((n, fn, oh, ow), dtype=x.dtype)

        def buffers():
            padded = self._padded_buffer(g, c, h, w, pad, x.dtype) if stride == 1 else None
            return np.empty(wmat.shape[1] * g * run, dtype=x.dtype), np.empty(fn * g * run, dtype=x.dtype), padded

        def chunk(own, i, start, stop):
            col_buf, row_buf, padded = own
            width = (stop - start) * run
            colT, rows = _matrix(col_buf, wmat.shape[1], width), _matrix(row_buf, fn, width)
            self._columns(x[start:stop], fh, fw, stride, pad, oh, ow, padded, colT)
            np.matmul(wmat, colT, out=rows)
            _rows_to_planes(rows, b, bool(relu), out[start:stop])

        self._run_chunks(n, g, buffers, chunk, W.size * run)
        return out, (x, stride, pad)

    @fast_path(cache="cache")
    def conv_backward(self, dout, W, cache, need_dx=True):
        x, stride, pad = cache
        algorithm = self._conv_algorithm_for(x.shape, W.shape, stride, backward=True)
        if algorithm == "winograd":
            return self._winograd_backward(dout, W, x, pad, need_dx)
        if algorithm == "winograd4":
            return self._winograd4_backward(dout, W, x, pad, need_dx)
        fn, c, fh, fw = W.shape
        n, _, h, w = x.shape
        oh, ow, run, g = self._conv_plan(x.shape, W, stride, pad)
        dout = np.ascontiguousarray(dout, dtype=x.dtype)
        wmat = np.ascontiguousarray(W, dtype=x.dtype).reshape(fn, -1)
        ck = wmat.shape[1]
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None

        def buffers():
            padded = self._padded_buffer(g, c, h, w, pad, x.dtype) if stride == 1 else None
            summed = self._padded_buffer(g, c, h, w, pad, x.dtype) if stride == 1 else None
            return np.empty(ck * g * run, dtype=x.dtype), np.empty(fn * g * run, dtype=x.dtype), padded, summed

        def chunk(own, i, start, stop):
            col_buf, row_buf, padded, summed = own
            width = (stop - start) * run
            colT, rows = _matrix(col_buf, ck, width), _matrix(row_buf, fn, width)
            db = dbs[i]
            if padded is None:
                _rows_and_sums(dout[start:stop], rows, db)
                self._columns(x[start:stop], fh, fw, stride, pad, oh, ow, padded, colT)
            else:
                _rows_and_columns(dout[start:stop], rows, db, x[start:stop], pad, padded, fh, fw, oh, ow, colT)
            np.dot(rows, colT.T, out=dWs[i])  # np.dot, not matmul: see _run_chunks
            if need_dx:
                np.matmul(wmat.T, rows, out=colT)  # colT is free again
                self._image_grad(colT, fh, fw, stride, pad, oh, ow, summed, dx[start:stop])

        dWs, dbs = self._chunk_grads(n, g, (fn, ck), fn, x.dtype)
        self._run_chunks(n, g, buffers, chunk, 2 * W.size * run)
        dW, db = self._in_batch_order(dWs), self._in_batch_order(dbs)
        return dx, dW.reshape(W.shape), db

    # --- Winograd F(2x2, 3x3) for 3x3 stride-1 layers (``numba_winograd``) -------------------------
    # Which convolution algorithm: "auto" (by shape, :meth:`_conv_algorithm_for`), "im2col" (always
    # the column matrix) or "winograd" (wherever it applies: 3x3, stride 1).  None: the environment's
    # FASTNET_CONV_ALGORITHM, else "auto".
    conv_algorithm = None
    # "auto" takes Winograd for a 3x3 stride-1 layer's forward with at least this many input
    # channels, and for its backward with at least ``winograd_backward_min_channels``, when the
    # batch holds at least ``winograd_min_tiles`` 2x2 output tiles (about N*H*W/4).  Measured on
    # DeepConvNet's layers (float32, 2 busy cores, Winograd / im2col time), with the transforms
    # vectorised: at batch 100 forward 0.6-0.85 and backward 0.53-0.8 from C = 16 at 28x28, 14x14
    # and 8x8; at 256 tiles (batch 16 at 8x8, 4 at 16x16) about even to 0.7; below that (one
    # image: 16 to 196 tiles) the 16 small products lose, up to 3x.  The first layer (C = 1) never
    # pays: its transforms cost more than its single-channel product.
    winograd_forward_min_channels = 16
    winograd_backward_min_channels = 16
    winograd_min_tiles = 256

    def _conv_algorithm_for(self, x_shape, W_shape, stride, backward=False) -> str:
        """ "winograd" or "im2col" for a convolution's forward or backward of these shapes, decided
        here and only here.  Either backward is correct after either forward: both need only x."""
        choice = self.conv_algorithm or _algorithm_from_environment()
        _, c, fh, fw = W_shape
        if choice == "im2col" or (fh, fw, stride) != (3, 3, 1):
            return "im2col"
        if choice in ("winograd", "winograd4"):
            return choice
        n, _, h, w = x_shape
        least = self.winograd_backward_min_channels if backward else self.winograd_forward_min_channels
        if c >= least and n * ((h + 1) // 2) * ((w + 1) // 2) >= self.winograd_min_tiles:
            return "winograd"
        return "im2col"

    def _winograd_plan(self, x_shape, W_shape, pad, itemsize):
        """(OH, OW, th, tw, hp, wp, G): the output, its tile grid, the padded planes, images per chunk."""
        n, c, h, w = x_shape
        fn = W_shape[0]
        oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
        th, tw = wino.tile_grid(oh, ow)
        hp, wp = 2 * th + 2, 2 * tw + 2
        per_image = (16 * (c + fn) * th * tw + 3 * c * hp * wp) * itemsize  # V, M, the planes, their rows
        return oh, ow, th, tw, hp, wp, max(1, min(n, self.winograd_chunk_bytes // per_image))

    @staticmethod
    def _winograd_buffers(step, positions, work_runs, c, fn, g, th, tw, hp, dtype):
        """A thread's buffers for tiles of ``step`` x ``step`` outputs (2 or 4) with ``positions``
        tile positions (16 or 36): the planes, their transformed rows, the output side's
        ``work_runs`` runs of work, and room for the input's and the output's positions
        (``numba_winograd.positions``)."""
        itemsize = np.dtype(dtype).itemsize
        tiles = g * th * tw
        return (
            np.empty(hp * step * (tw + 1) * g * c, dtype=dtype),
            np.empty(hp * (step + 2) * tw * g * c, dtype=dtype),
            np.empty(work_runs * tw * g * fn, dtype=dtype),
            np.empty(positions * wino.position_stride(c, tiles, itemsize), dtype=dtype),
            np.empty(positions * wino.position_stride(fn, tiles, itemsize), dtype=dtype),
        )

    @staticmethod
    def _tile_views(own, c, fn, count, itemsize, positions=16):
        """A thread's buffers (``_winograd_buffers``) as a chunk of ``count`` tiles uses them:
        (planes, rows, work, V, V's matrices, M, M's matrices); see ``numba_winograd.positions``."""
        planes, rows, work, v_buf, m_buf = own
        V, v_matrices = wino.positions(v_buf, c, count, itemsize, positions)
        M, m_matrices = wino.positions(m_buf, fn, count, itemsize, positions)
        return planes, rows, work, V, v_matrices, M, m_matrices

    def _chunk_grads(self, n, g, weight_shape, bias_size, dtype):
        """Room for each chunk's weight and bias gradients, one row per chunk (``_chunks_of``)."""
        count = len(self._chunks_of(n, g))
        return np.empty((count, *weight_shape), dtype=dtype), np.empty((count, bias_size), dtype=dtype)

    @staticmethod
    def _in_batch_order(parts):
        """The chunks' gradients (one row each) added row after row: the same batch gives the same
        sum, whichever threads computed the rows (numpy reduces the outer axis row after row)."""
        return np.add.reduce(parts, axis=0)

    def _winograd_forward(self, x, W, b, pad, relu):
        """The tiles of a chunk's planes side by side (``numba_winograd.planes_last``): each
        transform step is a loop over one long run, which numba vectorises."""
        fn, c = W.shape[:2]
        n = x.shape[0]
        oh, ow, th, tw, hp, wp, g = self._winograd_plan(x.shape, W.shape, pad, x.itemsize)
        Ut = wino.filter_tiles(W, channels_first=True)  # (16, C, K)
        out = np.empty((n, fn, oh, ow), dtype=x.dtype)
        tiles = th * tw

        buffers = functools.partial(self._winograd_buffers, 2, 16, 12, c, fn, g, th, tw, hp, x.dtype)

        def chunk(own, i, start, stop):
            planes, rows, work, V, Vmat, M, Mmat = self._tile_views(own, c, fn, (stop - start) * tiles, x.itemsize)
            wino.input_tiles(x[start:stop], pad, th, tw, planes, (stop - start) * c, rows, V)
            np.matmul(Vmat, Ut, out=Mmat)
            wino.output_tiles_planes_last(M, b, bool(relu), th, tw, work, out[start:stop])

        self._run_chunks(n, g, buffers, chunk, W.size * oh * ow)
        return out

    def _winograd_backward(self, dout, W, x, pad, need_dx):
        """The forward's layout (planes last), its steps' adjoints, and the 16 products each way."""
        fn, c = W.shape[:2]
        n = x.shape[0]
        oh, ow, th, tw, hp, wp, g = self._winograd_plan(x.shape, W.shape, pad, x.itemsize)
        dout = np.ascontiguousarray(dout, dtype=x.dtype)
        U = wino.filter_tiles(np.ascontiguousarray(W, dtype=x.dtype))  # (16, K, C)
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
        tiles = th * tw

        buffers = functools.partial(self._winograd_buffers, 2, 16, 12, c, fn, g, th, tw, hp, x.dtype)

        def chunk(own, i, start, stop):
            planes, rows, work, V, Vmat, dM, dMmat = self._tile_views(own, c, fn, (stop - start) * tiles, x.itemsize)
            gc = (stop - start) * c
            wino.gradient_and_input_tiles(
                dout[start:stop], work, dM, x[start:stop], pad, th, tw, planes, gc, rows, V, dbs[i]
            )
            np.matmul(dMmat.transpose(0, 2, 1), Vmat, out=dUs[i])
            if need_dx:
                np.matmul(dMmat, U, out=Vmat)  # V is free again: it now holds dV
                wino.input_grad(V, th, tw, gc, rows, planes, pad, dx[start:stop])

        dUs, dbs = self._chunk_grads(n, g, (16, fn, c), fn, x.dtype)
        self._run_chunks(n, g, buffers, chunk, 2 * W.size * oh * ow)
        return dx, wino.filter_grad(self._in_batch_order(dUs)), self._in_batch_order(dbs)

    # A share of the batch is worth a thread of its own from about this many multiply-adds: below
    # it, handing the share to a worker and waiting for it (tens of microseconds) costs more than
    # the share's arithmetic (one image through DeepConvNet's or SimpleConvNet's layers: 0.4-2.4 M).
    min_share_macs = 4_000_000
    # The same for max pooling, in input elements (about a nanosecond each): the pooling layers
    # of a batch share the convolutions' threads; one image's (12,544 elements for DeepConvNet's
    # first) stays on the calling thread.
    min_share_pool_elements = 250_000

    # --- Winograd F(4x4, 3x3) (``numba_winograd4``): the same steps with 6x6 tiles, 36 positions --------
    def _winograd4_plan(self, x_shape, W_shape, pad, itemsize):
        """(OH, OW, th, tw, hp, G): the output, its tile grid, the padded planes' height, images per chunk."""
        n, c, h, w = x_shape
        fn = W_shape[0]
        oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
        th, tw = wino4.tile_grid(oh, ow)
        hp, wp = 4 * th + 2, 4 * tw + 2
        per_image = (wino4.POSITIONS * (c + fn) * th * tw + 3 * c * hp * wp) * itemsize
        return oh, ow, th, tw, hp, max(1, min(n, self.winograd_chunk_bytes // per_image))

    def _winograd4_forward(self, x, W, b, pad, relu):
        fn, c = W.shape[:2]
        n = x.shape[0]
        oh, ow, th, tw, hp, g = self._winograd4_plan(x.shape, W.shape, pad, x.itemsize)
        Ut = np.ascontiguousarray(wino4.filter_tiles(W).transpose(0, 2, 1))  # (36, C, K)
        bt, at, _, _ = wino4.transforms(x.dtype)
        out = np.empty((n, fn, oh, ow), dtype=x.dtype)

        buffers = functools.partial(
            self._winograd_buffers, wino4.M_OUT, wino4.POSITIONS, 40, c, fn, g, th, tw, hp, x.dtype
        )

        def chunk(own, i, start, stop):
            count = (stop - start) * th * tw
            planes, rows, work, V, Vmat, M, Mmat = self._tile_views(own, c, fn, count, x.itemsize, wino4.POSITIONS)
            wino.planes_last(x[start:stop], pad, th, tw, planes, wino4.M_OUT)
            wino4.input_tiles(planes, bt, th, tw, (stop - start) * c, rows, V)
            np.matmul(Vmat, Ut, out=Mmat)
            wino4.output_tiles(M, b, bool(relu), at, th, tw, work, out[start:stop])

        self._run_chunks(n, g, buffers, chunk, W.size * oh * ow)
        return out

    def _winograd4_backward(self, dout, W, x, pad, need_dx):
        fn, c = W.shape[:2]
        n = x.shape[0]
        oh, ow, th, tw, hp, g = self._winograd4_plan(x.shape, W.shape, pad, x.itemsize)
        dout = np.ascontiguousarray(dout, dtype=x.dtype)
        U = wino4.filter_tiles(np.ascontiguousarray(W, dtype=x.dtype))  # (36, K, C)
        bt, _, b_mat, a_mat = wino4.transforms(x.dtype)
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None

        buffers = functools.partial(
            self._winograd_buffers, wino4.M_OUT, wino4.POSITIONS, 40, c, fn, g, th, tw, hp, x.dtype
        )

        def chunk(own, i, start, stop):
            count = (stop - start) * th * tw
            planes, rows, work, V, Vmat, dM, dMmat = self._tile_views(own, c, fn, count, x.itemsize, wino4.POSITIONS)
            channel_sums(dout[start:stop].reshape(stop - start, fn, oh * ow), dbs[i])
            wino4.output_grad_tiles(dout[start:stop], a_mat, th, tw, work, dM)
            wino.planes_last(x[start:stop], pad, th, tw, planes, wino4.M_OUT)
            wino4.input_tiles(planes, bt, th, tw, (stop - start) * c, rows, V)
            np.matmul(dMmat.transpose(0, 2, 1), Vmat, out=dUs[i])
            if need_dx:
                np.matmul(dMmat, U, out=Vmat)  # V is free again: it now holds dV
                wino4.input_grad_tiles(V, b_mat, th, tw, (stop - start) * c, rows, planes)
                wino.planes_first(planes, pad, th, tw, dx[start:stop], wino4.M_OUT)

        dUs, dbs = self._chunk_grads(n, g, (wino4.POSITIONS, fn, c), fn, x.dtype)
        self._run_chunks(n, g, buffers, chunk, 2 * W.size * oh * ow)
        return dx, wino4.filter_grad(self._in_batch_order(dUs)), self._in_batch_order(dbs)

    # A batch is cut into at least this many chunks (when it holds that many images), smaller than
    # the cache alone would allow: the threads take chunks as they come free, and many chunks let
    # a thread that wakes late or runs slower take fewer instead of the others waiting for it.
    min_chunks = 8

    def _chunks_of(self, n, g):
        """The batch's (start, stop) chunks: G images each (fewer when that gives under ``min_chunks``)."""
        g = max(1, min(g, -(-n // self.min_chunks)))
        return [(start, min(n, start + g)) for start in range(0, n, g)]

    def _run_chunks(self, n, g, buffers, chunk, macs_per_image=0):
        """``chunk(own, i, start, stop)`` for every chunk ``i`` of the batch (:meth:`_chunks_of`),
        with single-threaded BLAS; a chunk writes its results into arrays the caller keeps.

        The convolution threads (as many as :meth:`_shares` finds worth it) each take the next
        chunk nobody has taken, with their own buffers, ``own = buffers()``.  A thread that starts
        late (a sleeping core takes a fraction of a millisecond to wake) or runs slower takes
        fewer chunks, where fixed shares of the batch made the others wait for it.  A chunk's
        result does not depend on the thread that computed it, and callers add the chunks' rows in
        batch order: a gradient has the same bits on any number of threads.

        A product with a small result (a weight gradient such as 16x9) calls ``np.dot``:
        ``np.matmul`` keeps the interpreter's lock through the whole BLAS call when the result
        has only a few hundred elements, so two threads' products ran one after the other
        (measured on 16x10192 @ 10192x9: no gain from a second thread with ``matmul``, 1.7-2.1x
        with ``np.dot``).  Larger results release the lock either way, and ``matmul`` is the
        faster of the two there."""
        chunks = self._chunks_of(n, g)
        threads = min(self._thread_count(n, macs_per_image), len(chunks))
        claim, lock = itertools.count(), threading.Lock()

        def work():
            own = None  # allocated once this thread gets a chunk: a late one may find none left
            while True:
                with lock:
                    i = next(claim)
                if i >= len(chunks):
                    return
                own = own or buffers()
                chunk(own, i, *chunks[i])

        with _single_threaded_blas():
            if threads == 1:
                work()
                return
            pending = [self._pool(threads - 1).submit(work) for _ in range(threads - 1)]
            try:
                work()
            finally:
                for p in pending:
                    p.result()

    def _split_images(self, n, images, macs_per_image=0, least=None, blas=True):
        """Run ``images(lo, hi)`` over contiguous shares of the batch, one per thread, each with a
        single-threaded BLAS; their results.  One share (one image, one thread, or too little work
        to share) runs here, on this thread.  ``least``: the work a share needs, in the units of
        ``macs_per_image`` (default ``min_share_macs``).  ``blas=False``: ``images`` calls no BLAS,
        so its thread count is left alone (setting it costs about 2 µs, which one image notices)."""
        shares = self._shares(n, macs_per_image, least)
        with _single_threaded_blas() if blas else contextlib.nullcontext():
            if len(shares) == 1:
                return [images(0, n)]
            pool = self._pool(len(shares) - 1)
            pending = [pool.submit(images, lo, hi) for lo, hi in shares[1:]]
            first = images(*shares[0])  # this thread takes a share too
            return [first] + [p.result() for p in pending]

    def _shares(self, n, macs_per_image=0, least=None):
        """Contiguous (lo, hi) image ranges of near-equal size, one per convolution thread (whole
        chunks would leave a thread idle when a few big chunks cover the batch); fewer when a share
        would hold less than ``least`` (``min_share_macs`` multiply-adds) of work
        (``macs_per_image`` 0: not counted)."""
        threads = self._thread_count(n, macs_per_image, least)
        return [(n * i // threads, n * (i + 1) // threads) for i in range(threads)]

    def _thread_count(self, n, macs_per_image=0, least=None):
        """How many convolution threads ``n`` images are worth (see :meth:`_shares`)."""
        threads = max(1, min(self.conv_threads or conv_threads(), n))
        if macs_per_image:
            threads = max(1, min(threads, n * macs_per_image // (least or self.min_share_macs)))
        return threads

    def _pool(self, size):
        """Worker threads, kept between calls; a forked child (which has none of its parent's
        threads) starts its own."""
        workers, pool, pid = getattr(self, "_threads", (0, None, None))
        if workers < size or pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(size, thread_name_prefix="fastnet-conv")
            self._threads = (size, pool, os.getpid())
        return pool

    @staticmethod
    def _padded_buffer(g, c, h, w, pad, dtype):
        """Room for G padded images, zeroed.  Building columns writes only the interiors, so the
        borders stay zero."""
        return np.zeros(g * c * (h + 2 * pad) * (w + 2 * pad), dtype=dtype)

    @staticmethod
    def _columns(x, fh, fw, stride, pad, oh, ow, padded, colT):
        if padded is None:
            _im2col_t(x, fh, fw, stride, pad, oh, ow, colT)
            return
        _padded_columns(x, pad, padded, fh, fw, oh, ow, colT)

    @staticmethod
    def _image_grad(dcolT, fh, fw, stride, pad, oh, ow, padded, dx):
        if padded is None:
            _col2im_t(dcolT, fh, fw, stride, pad, oh, ow, dx)
            return
        _padded_image_grad(dcolT, fh, fw, pad, oh, ow, padded, dx)

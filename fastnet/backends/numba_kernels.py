"""Numba kernels: the NumPy kernels, with the memory-bound steps fused into single passes.

Matrix products stay in BLAS (numpy ``@``).  What numba replaces is everything around them that
NumPy would do as several full passes with temporaries: bias + ReLU, the ReLU mask, softmax +
cross-entropy, and max pooling (computed on the windows directly, with no im2col).  The
convolutions are in ``numba_conv.py``.

The compiled kernels are serial: with ``parallel=True`` numba's threads fight OpenBLAS's threads
between the matrix products, which made a whole training step slower, not faster.  Each override
declares the inputs its fast path takes (``fast_path``, see ``dispatch.py``); anything else is
served by the NumPy reference.
"""

from __future__ import annotations

import numpy as np

from fastnet.backends.dispatch import fast_path
from fastnet.backends.numba_conv import NumbaConvolution
from fastnet.backends.numba_jit import jit as _jit
from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.optim import ADAM_EPS
from fastnet.shapes import window_output_hw
from fastnet.threads import LARGE_PRODUCT_MACS, active_choice

_u = np.uint64  # unsigned offsets: see numba_conv


# --- element-wise ---------------------------------------------------------------------------
@_jit
def _bias_relu_inplace(out, b):
    n, m = out.shape
    for i in range(n):
        for j in range(m):
            v = out[i, j] + b[j]
            out[i, j] = 0 if v < 0 else v  # NaN passes through, as with numpy.maximum


@_jit
def _bias_relu_inplace_nonfinite(out, b):
    """``_bias_relu_inplace``, counting the values of out + b that are NaN or inf."""
    n, m = out.shape
    bad = 0
    for i in range(n):
        for j in range(m):
            v = out[i, j] + b[j]
            bad += (v - v) != 0  # NaN for NaN and for either inf; 0 for every finite v
            out[i, j] = 0 if v < 0 else v
    return bad


@_jit
def _relu(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = 0 if v < 0 else v


@_jit
def _relu_backward(dout, out, dx):
    for i in range(dout.size):
        dx[i] = dout[i] if out[i] > 0 else 0


@_jit
def _column_sums(a, acc):
    # Row after row, the same order numpy's sum(axis=0) adds in, so the results agree exactly.
    n, m = a.shape
    for j in range(m):
        acc[j] = 0
    for i in range(n):
        for j in range(m):
            acc[j] += a[i, j]


@_jit
def _sgd_update(param, grad, lr):
    for i in range(param.size):
        param[i] -= lr * grad[i]  # lr in param's dtype: NumPy's rounding of param -= lr * grad


@_jit
def _momentum_update(param, grad, v, lr, momentum):
    for i in range(param.size):
        vi = v[i] * momentum - lr * grad[i]  # the order of NumPy's v *= m; v -= lr * grad
        v[i] = vi
        param[i] += vi


@_jit
def _adam_update(param, grad, m, v, lr_t, keep1, keep2, eps):
    """keep1, keep2: 1 - beta1, 1 - beta2 (in param's dtype, as NumPy rounds them)."""
    for i in range(param.size):
        g = grad[i]
        mi = m[i] + keep1 * (g - m[i])
        vi = v[i] + keep2 * (g * g - v[i])
        m[i] = mi
        v[i] = vi
        param[i] -= lr_t * mi / (np.sqrt(vi) + eps)


# --- softmax + cross-entropy ----------------------------------------------------------------
@_jit
def _softmax_rows(x, y, log_sums):
    """y = softmax(x) row by row; log_sums[i] = max_i + log(sum exp(x_i - max_i))."""
    n, c = x.shape
    for i in range(n):
        m = x[i, 0]
        for j in range(1, c):
            if x[i, j] > m:
                m = x[i, j]
        s = 0.0
        for j in range(c):
            e = np.exp(x[i, j] - m)
            y[i, j] = e
            s += e
        inv = 1.0 / s
        for j in range(c):
            y[i, j] *= inv
        log_sums[i] = m + np.log(s)


@_jit(boundscheck=True)
def _cross_entropy_labels(x, t, log_sums):
    """Mean of log_sum - x[label].  Labels are in range by contract (the caller checked them);
    bounds checking still turns a label past the last class into an IndexError, as in numpy."""
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total += log_sums[i] - x[i, t[i]]
    return total / n


@_jit
def _cross_entropy_onehot(x, t, log_sums):
    n, c = x.shape
    total = 0.0
    for i in range(n):
        for j in range(c):
            total += t[i, j] * (log_sums[i] - x[i, j])
    return total / n


@_jit(boundscheck=True)  # never writes past a row, whatever t holds
def _softmax_ce_backward_labels(y, t, scale, dx):
    n, c = y.shape
    for i in range(n):
        for j in range(c):
            dx[i, j] = y[i, j] * scale
        dx[i, t[i]] -= scale


@_jit
def _softmax_ce_backward_onehot(y, t, scale, dx):
    n, c = y.shape
    for i in range(n):
        for j in range(c):
            dx[i, j] = (y[i, j] - t[i, j]) * scale


# --- max pooling, on the windows directly ----------------------------------------------------------
@_jit
def _maxpool_forward(x, ph, pw, stride, pad, out, argmax):
    """argmax holds the flat position (row * W + col) of each maximum in its input plane."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                top = y * stride - pad
                i0, i1 = max(0, -top), min(ph, h - top)
                for xo in range(ow):
                    left = xo * stride - pad
                    j0, j1 = max(0, -left), min(pw, w - left)
                    m = x[b, ch, top + i0, left + j0]
                    k = (top + i0) * w + left + j0
                    nan = False
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            v = x[b, ch, top + i, left + j]
                            t = v > m  # selects, not branches: the winner is random
                            k = (top + i) * w + left + j if t else k
                            m = v if t else m
                            nan |= v != v
                    if nan:
                        m, k = _first_nan(x[b, ch], top, left, i0, i1, j0, j1)
                    out[b, ch, y, xo] = m
                    argmax[b, ch, y, xo] = k


@_jit
def _maxpool_2x2(x, stride, out, argmax):
    """The common 2x2 window without padding, unrolled, on flat planes with unsigned offsets
    (signed indexes carry a check for counting from the end): several times faster than the loop
    of ``_maxpool_forward``, and twice as fast as with 4-D indexes.  A row of windows holding a
    NaN is gone over again, each such window taking its first NaN, as numpy does."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    src, dst, arg = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    for p in range(n * c):
        for y in range(oh):
            r0 = _u((p * h + stride * y) * w)  # the window row's two input rows
            r1 = r0 + _u(w)
            d = _u((p * oh + y) * ow)
            corner = stride * y * w
            nan = False
            for xo in range(ow):
                j = _u(stride * xo)
                a, b, e, f = src[r0 + j], src[r0 + j + _u(1)], src[r1 + j], src[r1 + j + _u(1)]
                m, k = a, 0
                t = b > m  # selects, not branches: the winner is random
                k = 1 if t else k
                m = b if t else m
                t = e > m
                k = w if t else k
                m = e if t else m
                t = f > m
                k = w + 1 if t else k
                m = f if t else m
                nan |= (a != a) | (b != b) | (e != e) | (f != f)
                dst[d + _u(xo)] = m
                arg[d + _u(xo)] = corner + stride * xo + k
            if nan:
                for xo in range(ow):
                    j = _u(stride * xo)
                    for k, at in ((0, r0 + j), (1, r0 + j + _u(1)), (w, r1 + j), (w + 1, r1 + j + _u(1))):
                        if src[at] != src[at]:
                            dst[d + _u(xo)] = src[at]
                            arg[d + _u(xo)] = corner + stride * xo + k
                            break


@_jit
def _maxpool_2x2_stride2(x, out, argmax):
    """``_maxpool_2x2`` at stride 2, the common case: with the stride a constant once inlined, the
    compiler vectorises the window pairs (a third faster than with the stride read at run time)."""
    _maxpool_2x2(x, 2, out, argmax)


@_jit
def _first_nan(plane, top, left, i0, i1, j0, j1):
    """numpy's max and argmax of a window holding a NaN: NaN, at the first NaN's position."""
    w = plane.shape[1]
    for i in range(i0, i1):
        for j in range(j0, j1):
            v = plane[top + i, left + j]
            if v != v:
                return v, (top + i) * w + left + j
    return plane[top + i0, left + j0], (top + i0) * w + left + j0


@_jit
def _maxpool_backward(dout, argmax, relu_out, masked, dx):
    """Into a zeroed dx, each window's gradient where its maximum was; with ``masked``, only where
    ``relu_out`` (the output of the ReLU before the pooling) is positive."""
    n, c, oh, ow = dout.shape
    w = dx.shape[3]
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for xo in range(ow):
                    k = argmax[b, ch, y, xo]
                    if k >= 0:  # always; it tells the compiler the division below is unsigned
                        row, col = k // w, k % w
                        if not masked or relu_out[b, ch, row, col] > 0:
                            dx[b, ch, row, col] += dout[b, ch, y, xo]


@_jit
def _maxpool_2x2_backward(dout, argmax, relu_out, masked, dx):
    """``_maxpool_backward`` for 2x2 windows at stride 2 without padding.  They tile the input, so
    every element of dx is written once, its gradient or 0, and dx needs no zeroing first (a
    zeroed buffer costs a pass of its own).  A last odd row or column lies in no window: 0."""
    n, c, oh, ow = dout.shape
    h, w = dx.shape[2], dx.shape[3]
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for xo in range(ow):
                    k = argmax[b, ch, y, xo] - (2 * y * w + 2 * xo)  # the winner, from the window's corner
                    down = k >= w  # in the window's second row (no division: it is slow)
                    right = k - w if down else k
                    g = 0 + dout[b, ch, y, xo]  # 0 + g: -0.0 becomes 0.0, as in a sum from zero
                    if masked and not relu_out[b, ch, 2 * y + down, 2 * xo + right] > 0:
                        g = 0
                    for i in range(2):
                        for j in range(2):
                            dx[b, ch, 2 * y + i, 2 * xo + j] = g if i * w + j == k else 0
            for row in range(2 * oh, h):
                for col in range(w):
                    dx[b, ch, row, col] = 0
            for row in range(2 * oh):
                for col in range(2 * ow, w):
                    dx[b, ch, row, col] = 0


class NumbaKernels(NumbaConvolution, NumpyKernels):
    """Overrides the NumPy kernels it makes faster; ``fast_path`` says which calls each one takes."""

    fast_dtypes = "fd"  # float32, float64

    def __init__(self):
        super().__init__(np)

    # --- Affine / ReLU ---------------------------------------------------------------------
    # A net whose convolutions take several threads keeps its BLAS on one (fastnet.threads: the
    # waiting BLAS threads would spin on the convolutions' cores).  Its large dense products are
    # then split among the convolution threads instead, by rows, each share on the one-thread
    # BLAS: SimpleConvNet's Affine1 (100x4320 @ 4320x100).
    def _dense_on_conv_threads(self, macs) -> bool:
        choice = active_choice()
        return choice is not None and choice.blas == 1 and choice.numba > 1 and macs >= LARGE_PRODUCT_MACS

    def _split_rows(self, rows, macs_per_row, part):
        """``part(lo, hi)`` over row shares of at least half a large product each, on the convolution threads."""
        self._split_images(rows, part, macs_per_row, LARGE_PRODUCT_MACS // 2)

    @fast_path(("x", "W", "b"))
    def affine_relu_forward(self, x, W, b):
        b = np.ascontiguousarray(b)
        if not self._dense_on_conv_threads(x.shape[0] * W.size):
            out = x @ W
            _bias_relu_inplace(out, b)  # out is ours: BLAS allocated it
            return out
        out = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)

        def rows(lo, hi):
            np.matmul(x[lo:hi], W, out=out[lo:hi])
            _bias_relu_inplace(out[lo:hi], b)

        self._split_rows(x.shape[0], W.size, rows)
        return out

    @fast_path(("x", "W", "dout"), ndim={"x": 2, "dout": 2})
    def affine_backward(self, x, W, dout, need_dx=True):
        """dx = dout @ W.T, dW = x.T @ dout, db; the products split among the convolution threads
        where they are large and the BLAS is on one thread (share j takes its part of dW's rows
        and of dx's)."""
        n, k = x.shape
        if not self._dense_on_conv_threads(n * W.size):
            return super().affine_backward(x, W, dout, need_dx)
        dout = np.ascontiguousarray(dout)
        dx = np.empty((n, k), dtype=x.dtype) if need_dx else None
        dW = np.empty(W.shape, dtype=x.dtype)

        def rows(lo, hi):
            np.matmul(x[:, lo:hi].T, dout, out=dW[lo:hi])
            if need_dx:
                first, last = lo * n // k, hi * n // k
                np.matmul(dout[first:last], W.T, out=dx[first:last])

        self._split_rows(k, n * W.shape[1] * (2 if need_dx else 1), rows)
        return dx, dW, self.bias_grad(dout)

    @fast_path(("x", "W", "b"))
    def affine_relu_forward_finite(self, x, W, b):
        out = x @ W
        return out, _bias_relu_inplace_nonfinite(out, np.ascontiguousarray(b)) == 0

    @fast_path(("dout",), ndim={"dout": 2})
    def bias_grad(self, dout):
        acc = np.empty(dout.shape[1], dtype=dout.dtype)
        _column_sums(np.ascontiguousarray(dout), acc)
        return acc

    @fast_path(("x",))
    def relu_forward(self, x):
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _relu(x.reshape(-1), out.reshape(-1))
        return out

    @fast_path(("dout", "out"), same_shape=("dout", "out"))
    def relu_backward(self, dout, out):
        dout = np.ascontiguousarray(dout)
        dx = np.empty_like(dout)
        _relu_backward(dout.reshape(-1), np.ascontiguousarray(out).reshape(-1), dx.reshape(-1))
        return dx

    # --- optimizer ---------------------------------------------------------------------------------
    @fast_path(("param", "grad"), same_shape=("param", "grad"), contiguous=("param", "grad"), numbers=("lr",))
    def sgd_update(self, param, grad, lr):
        """One pass, no ``lr * grad`` temporary; ``lr`` rounded as NumPy rounds it."""
        if type(lr) in (int, float):  # a Python number takes param's dtype; a NumPy scalar keeps its own
            lr = param.dtype.type(lr)
        _sgd_update(param.reshape(-1), grad.reshape(-1), lr)

    @fast_path(
        ("param", "grad", "v"),
        same_shape=("param", "grad", "v"),
        contiguous=("param", "grad", "v"),
        numbers=("lr", "momentum"),
    )
    def momentum_update(self, param, grad, v, lr, momentum):
        """One pass instead of three with a temporary; the numbers rounded as NumPy rounds them."""
        number = param.dtype.type
        _momentum_update(param.reshape(-1), grad.reshape(-1), v.reshape(-1), number(lr), number(momentum))

    @fast_path(
        ("param", "grad", "m", "v"),
        same_shape=("param", "grad", "m", "v"),
        contiguous=("param", "grad", "m", "v"),
        numbers=("lr_t", "beta1", "beta2"),
    )
    def adam_update(self, param, grad, m, v, lr_t, beta1, beta2):
        """One pass instead of about ten with temporaries; the numbers rounded as NumPy rounds them."""
        number = param.dtype.type
        flat = [a.reshape(-1) for a in (param, grad, m, v)]
        _adam_update(*flat, number(lr_t), number(1 - beta1), number(1 - beta2), number(ADAM_EPS))

    # --- softmax + cross-entropy -----------------------------------------------------------------
    @fast_path(("x",), ndim={"x": 2}, targets=("t", "x"))
    def softmax_cross_entropy(self, x, t):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        log_sums = np.empty(x.shape[0], dtype=np.float64)
        _softmax_rows(x, y, log_sums)
        if t.ndim == 1:
            loss = _cross_entropy_labels(x, t.astype(np.intp, copy=False), log_sums)
        else:
            loss = _cross_entropy_onehot(x, np.ascontiguousarray(t), log_sums)
        return np.asarray(loss, dtype=x.dtype), y

    @fast_path(("y",), ndim={"y": 2}, numbers=("dout",), targets=("t", "y"))
    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        n = y.shape[0]
        y = np.ascontiguousarray(y)
        dx = np.empty_like(y)
        scale = float(dout) / n
        if t.ndim == 1:
            _softmax_ce_backward_labels(y, t.astype(np.intp, copy=False), scale, dx)
        else:
            _softmax_ce_backward_onehot(y, np.ascontiguousarray(t), scale, dx)
        return dx

    # --- max pooling -------------------------------------------------------------------------------
    @fast_path(("x",), makes_cache=True)
    def maxpool_forward(self, x, ph, pw, stride=1, pad=0):
        """Returns ``(out, argmax)``; argmax (int32) is each maximum's flat position in its plane."""
        n, c, h, w = x.shape
        oh, ow = window_output_hw(h, w, ph, pw, stride, pad)
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        argmax = np.empty((n, c, oh, ow), dtype=np.int32)
        x = np.ascontiguousarray(x)

        def images(lo, hi):
            if ph == pw == 2 and pad == 0 and stride == 2:
                _maxpool_2x2_stride2(x[lo:hi], out[lo:hi], argmax[lo:hi])
            elif ph == pw == 2 and pad == 0:
                _maxpool_2x2(x[lo:hi], stride, out[lo:hi], argmax[lo:hi])
            else:
                _maxpool_forward(x[lo:hi], ph, pw, stride, pad, out[lo:hi], argmax[lo:hi])

        self._split_images(n, images, c * h * w, self.min_share_pool_elements, blas=False)
        return out, argmax

    @fast_path(cache="argmax")
    def maxpool_backward(self, dout, argmax, x_shape, ph, pw, stride=1, pad=0):
        """Any float ``dout``: one this kernel does not compile for is summed in float64."""
        return self._pool_grad(dout, argmax, None, x_shape, ph, pw, stride, pad)

    @fast_path(cache="argmax")
    def maxpool_relu_backward(self, dout, argmax, relu_out, x_shape, ph, pw, stride=1, pad=0):
        """The pooling's gradient and the ReLU's mask in the same pass."""
        return self._pool_grad(dout, argmax, relu_out, x_shape, ph, pw, stride, pad)

    def _pool_grad(self, dout, argmax, relu_out, x_shape, ph, pw, stride, pad):
        output_dtype = dout.dtype
        work = dout.dtype if dout.dtype.char in self.fast_dtypes else np.float64
        tiled = ph == pw == stride == 2 and pad == 0
        dx = (np.empty if tiled else np.zeros)(x_shape, dtype=work)
        masked = relu_out is not None
        mask = np.ascontiguousarray(relu_out) if masked else dx  # dx: a stand-in that is never read
        kernel = _maxpool_2x2_backward if tiled else _maxpool_backward
        dout = np.ascontiguousarray(dout, dtype=work)

        def images(lo, hi):
            kernel(dout[lo:hi], argmax[lo:hi], mask[lo:hi], masked, dx[lo:hi])

        self._split_images(x_shape[0], images, int(np.prod(x_shape[1:])), self.min_share_pool_elements, blas=False)
        return dx.astype(output_dtype, copy=False)

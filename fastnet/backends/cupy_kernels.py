"""GPU kernels for the cupy backend: fused CUDA C++ templates for float and double.

Every kernel is a gather: each thread computes its own outputs from a grid-stride loop and
writes nothing else, so there are no atomics, results are deterministic, and the order in
which threads run cannot change them.  Each override declares the inputs its kernel takes
(``fast_path``, see ``dispatch.py``); anything else (other dtypes, a device-array ``dout``) is
served by the generic ``NumpyKernels`` code, which CuPy runs.

The CUDA source is plain C++ with no headers, so it compiles with NVRTC on the device and,
behind a small host shim, with a C++ compiler for tests on machines without a GPU.
"""
from __future__ import annotations

import numpy

from fastnet.backends.dispatch import fast_path
from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.shapes import window_output_hw

SOURCE = r"""
#define FASTNET_LOOP(i, n)                                                        \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

// In place on the (rows, f) matmul output: out = max(out + b, 0); NaN stays NaN.
template <typename T>
__global__ void bias_relu(T* out, const T* b, long long size, long long f) {
  FASTNET_LOOP(i, size) {
    T v = out[i] + b[i % f];
    out[i] = v < T(0) ? T(0) : v;
  }
}

// The ReLU gradient from its saved output: it passes where the output is positive.
template <typename T>
__global__ void relu_backward(const T* dout, const T* out, T* dx, long long size) {
  FASTNET_LOOP(i, size) { dx[i] = out[i] > T(0) ? dout[i] : T(0); }
}

// Rows (N*HW, F) -> (N, F, HW) with the bias added and an optional ReLU, in one pass.
template <typename T>
__global__ void conv_bias_act(const T* rows, const T* b, T* y, long long size, long long f,
                              long long hw, int relu) {
  FASTNET_LOOP(i, size) {
    long long p = i % hw, c = (i / hw) % f, n = i / (hw * f);
    T v = rows[(n * hw + p) * f + c] + b[c];
    y[i] = (relu && v < T(0)) ? T(0) : v;
  }
}

// (N, C, H, W) -> rows (N*OH*OW, C*FH*FW); one thread per element of the column matrix.
template <typename T>
__global__ void im2col(const T* x, T* col, long long size, long long c, long long h, long long w,
                       long long fh, long long fw, long long oh, long long ow, long long stride,
                       long long pad) {
  FASTNET_LOOP(i, size) {
    long long kx = i % fw, r = i / fw;
    long long ky = r % fh; r /= fh;
    long long ch = r % c; r /= c;
    long long ox = r % ow; r /= ow;
    long long oy = r % oh, n = r / oh;
    long long yy = oy * stride - pad + ky, xx = ox * stride - pad + kx;
    bool inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
    col[i] = inside ? x[((n * c + ch) * h + yy) * w + xx] : T(0);
  }
}

// Adjoint of im2col as a gather: each image element sums the column entries that copied it.
template <typename T>
__global__ void col2im(const T* col, T* x, long long size, long long c, long long h, long long w,
                       long long fh, long long fw, long long oh, long long ow, long long stride,
                       long long pad) {
  FASTNET_LOOP(i, size) {
    long long xx = i % w, r = i / w;
    long long yy = r % h; r /= h;
    long long ch = r % c, n = r / c;
    long long row_len = c * fh * fw;
    T acc = T(0);
    for (long long ky = 0; ky < fh; ++ky) {
      long long ty = yy + pad - ky;
      if (ty < 0 || ty % stride != 0 || ty / stride >= oh) continue;
      for (long long kx = 0; kx < fw; ++kx) {
        long long tx = xx + pad - kx;
        if (tx < 0 || tx % stride != 0 || tx / stride >= ow) continue;
        long long row = (n * oh + ty / stride) * ow + tx / stride;
        acc += col[row * row_len + (ch * fh + ky) * fw + kx];
      }
    }
    x[i] = acc;
  }
}

// Max over each window; padding counts as -inf.  Like numpy.argmax, the first maximum wins
// and the first NaN wins over everything.
template <typename T>
__global__ void maxpool_forward(const T* x, T* out, int* arg, long long size, long long h,
                                long long w, long long ph, long long pw, long long oh,
                                long long ow, long long stride, long long pad, T neg_inf) {
  FASTNET_LOOP(i, size) {
    long long ox = i % ow, r = i / ow;
    long long oy = r % oh, nc = r / oh;
    T best = neg_inf;
    int best_k = 0;
    for (long long ky = 0; ky < ph; ++ky) {
      long long yy = oy * stride - pad + ky;
      for (long long kx = 0; kx < pw; ++kx) {
        long long xx = ox * stride - pad + kx;
        bool inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
        T v = inside ? x[(nc * h + yy) * w + xx] : neg_inf;
        if (v > best || (v != v && best == best)) {
          best = v;
          best_k = (int)(ky * pw + kx);
        }
      }
    }
    out[i] = best;
    arg[i] = best_k;
  }
}

// Gather form of the pooling gradient: each input element sums dout over the windows that
// picked it.
template <typename T, typename A>
__global__ void maxpool_backward(const T* dout, const A* arg, T* dx, long long size, long long h,
                                 long long w, long long ph, long long pw, long long oh,
                                 long long ow, long long stride, long long pad) {
  FASTNET_LOOP(i, size) {
    long long xx = i % w, r = i / w;
    long long yy = r % h, nc = r / h;
    T acc = T(0);
    for (long long ky = 0; ky < ph; ++ky) {
      long long ty = yy + pad - ky;
      if (ty < 0 || ty % stride != 0 || ty / stride >= oh) continue;
      for (long long kx = 0; kx < pw; ++kx) {
        long long tx = xx + pad - kx;
        if (tx < 0 || tx % stride != 0 || tx / stride >= ow) continue;
        long long o = (nc * oh + ty / stride) * ow + tx / stride;
        if ((long long)arg[o] == ky * pw + kx) acc += dout[o];
      }
    }
    dx[i] = acc;
  }
}

// Softmax of one row of logits, shifted by the row maximum so exp cannot overflow.
// Writes y and returns log(sum(exp(x - max))); *row_max receives the maximum.
template <typename T>
__device__ T softmax_row(const T* x, T* y, long long c, T* row_max) {
  T m = x[0];
  for (long long j = 1; j < c; ++j) m = x[j] > m ? x[j] : m;
  T s = T(0);
  for (long long j = 0; j < c; ++j) {
    T e = exp(x[j] - m);
    y[j] = e;
    s += e;
  }
  for (long long j = 0; j < c; ++j) y[j] = y[j] / s;
  *row_max = m;
  return log(s);
}

// One thread per row: softmax into y and the row's cross-entropy against integer labels.
template <typename T, typename L>
__global__ void softmax_xent_labels(const T* x, const L* t, T* y, T* loss, long long n,
                                    long long c) {
  FASTNET_LOOP(r, n) {
    T m;
    T log_sum = softmax_row(x + r * c, y + r * c, c, &m);
    loss[r] = log_sum - (x[r * c + (long long)t[r]] - m);
  }
}

// The same against one-hot (or soft) target rows.
template <typename T>
__global__ void softmax_xent_onehot(const T* x, const T* t, T* y, T* loss, long long n,
                                    long long c) {
  FASTNET_LOOP(r, n) {
    T m;
    T log_sum = softmax_row(x + r * c, y + r * c, c, &m);
    T acc = T(0);
    for (long long j = 0; j < c; ++j) acc += t[r * c + j] * (x[r * c + j] - m - log_sum);
    loss[r] = -acc;
  }
}

// dx = (softmax - onehot(t)) * scale, without building the one-hot matrix.
template <typename T, typename L>
__global__ void softmax_xent_backward_labels(const T* y, const L* t, T* dx, long long size,
                                             long long c, T scale) {
  FASTNET_LOOP(i, size) {
    T v = y[i];
    if (i % c == (long long)t[i / c]) v -= T(1);
    dx[i] = v * scale;
  }
}

template <typename T>
__global__ void softmax_xent_backward_onehot(const T* y, const T* t, T* dx, long long size,
                                             T scale) {
  FASTNET_LOOP(i, size) { dx[i] = (y[i] - t[i]) * scale; }
}
"""

FLOAT_TYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
INDEX_TYPES = {numpy.dtype(numpy.int32): "int", numpy.dtype(numpy.int64): "long long"}

_FLOAT_KERNELS = ("bias_relu", "relu_backward", "conv_bias_act", "im2col", "col2im",
                  "maxpool_forward", "softmax_xent_onehot", "softmax_xent_backward_onehot")
_FLOAT_INDEX_KERNELS = ("maxpool_backward", "softmax_xent_labels", "softmax_xent_backward_labels")


def kernel_name(name: str, *ctypes: str) -> str:
    """The C++ name expression of one template instance, e.g. ``im2col<float>``."""
    return f"{name}<{', '.join(ctypes)}>"


def name_expressions() -> list[str]:
    """Every template instance the backend uses; compiled together in one module."""
    names = [kernel_name(k, f) for k in _FLOAT_KERNELS for f in FLOAT_TYPES.values()]
    names += [kernel_name(k, f, i) for k in _FLOAT_INDEX_KERNELS
              for f in FLOAT_TYPES.values() for i in INDEX_TYPES.values()]
    return names


class CudaLauncher:
    """Compiles ``SOURCE`` once (NVRTC, cached on disk by CuPy) and launches its kernels."""

    threads = 256
    max_blocks = 65536  # the grid-stride loop covers any size beyond this

    def __init__(self, cupy):
        self._cupy = cupy
        self._module = None
        self._functions = {}

    def compile(self):
        if self._module is None:
            module = self._cupy.RawModule(code=SOURCE, name_expressions=name_expressions())
            self._functions = {name: module.get_function(name) for name in name_expressions()}
            self._module = module

    def __call__(self, name: str, size: int, args: tuple) -> None:
        if size == 0:
            return
        self.compile()
        blocks = min((size + self.threads - 1) // self.threads, self.max_blocks)
        self._functions[name]((blocks,), (self.threads,), args)


def _i64(value) -> numpy.int64:
    return numpy.int64(value)


class CupyKernels(NumpyKernels):
    """``NumpyKernels`` with the hot paths replaced by fused CUDA kernels.

    ``launch(name, size, args)`` runs one kernel over ``size`` elements; the default compiles
    and launches on the current CUDA device.  Kernel arguments are device arrays and numpy
    scalars whose dtype matches the C++ parameter exactly.
    """

    fast_dtypes = "fd"  # float32, float64

    def __init__(self, xp, launch=None):
        super().__init__(xp)
        self.launch = launch if launch is not None else CudaLauncher(xp)

    def _index_array(self, a):
        """Labels or argmax as int32/int64 (other integer dtypes are converted once)."""
        if a.dtype in INDEX_TYPES:
            return self.xp.ascontiguousarray(a)
        return self.xp.ascontiguousarray(a, dtype=numpy.int64)

    # --- Affine / ReLU -------------------------------------------------------------------------
    @fast_path(("x", "W", "b"))
    def affine_relu_forward(self, x, W, b):
        ctype = FLOAT_TYPES[x.dtype]
        out = self.xp.ascontiguousarray(x @ W)
        b = self.xp.ascontiguousarray(b)
        self.launch(kernel_name("bias_relu", ctype), out.size,
                    (out, b, _i64(out.size), _i64(out.shape[1])))
        return out

    @fast_path(("dout", "out"), same_shape=("dout", "out"))
    def relu_backward(self, dout, out):
        ctype = FLOAT_TYPES[dout.dtype]
        dout, out = self.xp.ascontiguousarray(dout), self.xp.ascontiguousarray(out)
        dx = self.xp.empty_like(dout)
        self.launch(kernel_name("relu_backward", ctype), dx.size, (dout, out, dx, _i64(dx.size)))
        return dx

    # --- Convolution output layout ---------------------------------------------------------------
    @fast_path(("out", "b"))
    def conv_bias_act(self, out, b, n, oh, ow, relu=False):
        ctype = FLOAT_TYPES[out.dtype]
        rows, b = self.xp.ascontiguousarray(out), self.xp.ascontiguousarray(b)
        f = rows.shape[1]
        y = self.xp.empty((n, f, oh, ow), dtype=rows.dtype)
        self.launch(kernel_name("conv_bias_act", ctype), y.size,
                    (rows, b, y, _i64(y.size), _i64(f), _i64(oh * ow), numpy.int32(bool(relu))))
        return y

    # --- im2col / col2im ---------------------------------------------------------------------------
    def _conv_geometry(self, shape, fh, fw, stride, pad):
        n, c, h, w = shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        return n, c, h, w, oh, ow, tuple(_i64(v) for v in (c, h, w, fh, fw, oh, ow, stride, pad))

    @fast_path(("x",))
    def im2col(self, x, fh, fw, stride=1, pad=0):
        ctype = FLOAT_TYPES[x.dtype]
        n, c, _, _, oh, ow, geometry = self._conv_geometry(x.shape, fh, fw, stride, pad)
        x = self.xp.ascontiguousarray(x)
        col = self.xp.empty((n * oh * ow, c * fh * fw), dtype=x.dtype)
        self.launch(kernel_name("im2col", ctype), col.size, (x, col, _i64(col.size)) + geometry)
        return col

    @fast_path(("col",))
    def col2im(self, col, x_shape, fh, fw, stride=1, pad=0):
        ctype = FLOAT_TYPES[col.dtype]
        n, c, h, w, _, _, geometry = self._conv_geometry(x_shape, fh, fw, stride, pad)
        col = self.xp.ascontiguousarray(col)
        x = self.xp.empty((n, c, h, w), dtype=col.dtype)
        self.launch(kernel_name("col2im", ctype), x.size, (col, x, _i64(x.size)) + geometry)
        return x

    # --- max pooling -------------------------------------------------------------------------------
    @fast_path(("x",), makes_cache=True)
    def maxpool_forward(self, x, ph, pw, stride=1, pad=0):
        """Returns ``(out, argmax)`` with an int32 argmax (the window position, row-major)."""
        ctype = FLOAT_TYPES[x.dtype]
        n, c, h, w = x.shape
        oh, ow = window_output_hw(h, w, ph, pw, stride, pad)
        x = self.xp.ascontiguousarray(x)
        out = self.xp.empty((n, c, oh, ow), dtype=x.dtype)
        arg = self.xp.empty((n, c, oh, ow), dtype=numpy.int32)
        args = (x, out, arg, _i64(out.size), *(_i64(v) for v in (h, w, ph, pw, oh, ow, stride, pad)),
                x.dtype.type(-numpy.inf))
        self.launch(kernel_name("maxpool_forward", ctype), out.size, args)
        return out, arg

    @fast_path(cache="argmax")
    def maxpool_backward(self, dout, argmax, x_shape, ph, pw, stride=1, pad=0):
        """Any float ``dout``: one the kernels are not built for is summed in float32."""
        wanted = dout.dtype
        work = wanted if wanted in FLOAT_TYPES else numpy.dtype(numpy.float32)
        n, c, h, w = x_shape
        oh, ow = dout.shape[2], dout.shape[3]
        dout, argmax = self.xp.ascontiguousarray(dout, dtype=work), self._index_array(argmax)
        dx = self.xp.empty((n, c, h, w), dtype=work)
        args = (dout, argmax, dx, _i64(dx.size), *(_i64(v) for v in (h, w, ph, pw, oh, ow, stride, pad)))
        self.launch(kernel_name("maxpool_backward", FLOAT_TYPES[work], INDEX_TYPES[argmax.dtype]),
                    dx.size, args)
        return dx.astype(wanted, copy=False)

    # --- Softmax + cross-entropy -------------------------------------------------------------------
    @fast_path(("x",), ndim={"x": 2}, targets=("t", "x"))
    def softmax_cross_entropy(self, x, t):
        """``(loss, y)``: the mean loss stays a 0-d device array (no host sync here)."""
        labels = t.ndim == 1
        ctype = FLOAT_TYPES[x.dtype]
        n, c = x.shape
        x = self.xp.ascontiguousarray(x)
        y = self.xp.empty_like(x)
        row_loss = self.xp.empty(n, dtype=x.dtype)
        if labels:
            t = self._index_array(t)
            name = kernel_name("softmax_xent_labels", ctype, INDEX_TYPES[t.dtype])
        else:
            t = self.xp.ascontiguousarray(t)
            name = kernel_name("softmax_xent_onehot", ctype)
        self.launch(name, n, (x, t, y, row_loss, _i64(n), _i64(c)))
        return row_loss.mean(), y

    @fast_path(("y",), ndim={"y": 2}, numbers=("dout",), targets=("t", "y"))
    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        labels = t.ndim == 1
        ctype = FLOAT_TYPES[y.dtype]
        y = self.xp.ascontiguousarray(y)
        dx = self.xp.empty_like(y)
        scale = y.dtype.type(dout / y.shape[0])
        if labels:
            t = self._index_array(t)
            name = kernel_name("softmax_xent_backward_labels", ctype, INDEX_TYPES[t.dtype])
            args = (y, t, dx, _i64(dx.size), _i64(y.shape[1]), scale)
        else:
            t = self.xp.ascontiguousarray(t)
            name = kernel_name("softmax_xent_backward_onehot", ctype)
            args = (y, t, dx, _i64(dx.size), scale)
        self.launch(name, dx.size, args)
        return dx

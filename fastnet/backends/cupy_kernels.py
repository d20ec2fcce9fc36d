"""GPU kernels for the cupy backend: fused CUDA C++ templates for float and double.

Every compute kernel is a gather: each thread computes its own outputs from a grid-stride loop
and writes nothing else, so there are no atomics, results are deterministic, and the order in
which threads run cannot change them.  (The two value-check kernels lower a flag with an atomic
minimum, whose result does not depend on that order either.)  Each override declares the inputs its kernel takes
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
// I is the index type, int or long long, chosen per launch (see index_type): 32-bit
// division is several times cheaper on the GPU, and 64-bit is kept for tensors too large for it.
#define FASTNET_LOOP(I, i, n)                                                    \
  for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < (n);           \
       i += (I)blockDim.x * (I)gridDim.x)

// In place on the (rows, f) matmul output: out = max(out + b, 0); NaN stays NaN.
template <typename T, typename I>
__global__ void bias_relu(T* out, const T* b, I size, I f) {
  FASTNET_LOOP(I, i, size) {
    T v = out[i] + b[i % f];
    out[i] = v < T(0) ? T(0) : v;
  }
}

// The ReLU gradient from its saved output: it passes where the output is positive.
template <typename T, typename I>
__global__ void relu_backward(const T* dout, const T* out, T* dx, I size) {
  FASTNET_LOOP(I, i, size) { dx[i] = out[i] > T(0) ? dout[i] : T(0); }
}

// Rows (N*HW, F) -> (N, F, HW) with the bias added and an optional ReLU, in one pass.
template <typename T, typename I>
__global__ void conv_bias_act(const T* rows, const T* b, T* y, I size, I f, I hw, int relu) {
  FASTNET_LOOP(I, i, size) {
    I p = i % hw, c = (i / hw) % f, n = i / (hw * f);
    T v = rows[(n * hw + p) * f + c] + b[c];
    y[i] = (relu && v < T(0)) ? T(0) : v;
  }
}

// (N, C, H, W) -> rows (N*OH*OW, C*FH*FW); one thread per element of the column matrix.
template <typename T, typename I>
__global__ void im2col(const T* x, T* col, I size, I c, I h, I w, I fh, I fw, I oh, I ow,
                       I stride, I pad) {
  FASTNET_LOOP(I, i, size) {
    I kx = i % fw, r = i / fw;
    I ky = r % fh; r /= fh;
    I ch = r % c; r /= c;
    I ox = r % ow; r /= ow;
    I oy = r % oh, n = r / oh;
    I yy = oy * stride - pad + ky, xx = ox * stride - pad + kx;
    bool inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
    col[i] = inside ? x[((n * c + ch) * h + yy) * w + xx] : T(0);
  }
}

// Adjoint of im2col as a gather: each image element sums the column entries that copied it.
template <typename T, typename I>
__global__ void col2im(const T* col, T* x, I size, I c, I h, I w, I fh, I fw, I oh, I ow,
                       I stride, I pad) {
  FASTNET_LOOP(I, i, size) {
    I xx = i % w, r = i / w;
    I yy = r % h; r /= h;
    I ch = r % c, n = r / c;
    I row_len = c * fh * fw;
    T acc = T(0);
    for (I ky = 0; ky < fh; ++ky) {
      I ty = yy + pad - ky;
      if (ty < 0 || ty % stride != 0 || ty / stride >= oh) continue;
      for (I kx = 0; kx < fw; ++kx) {
        I tx = xx + pad - kx;
        if (tx < 0 || tx % stride != 0 || tx / stride >= ow) continue;
        I row = (n * oh + ty / stride) * ow + tx / stride;
        acc += col[row * row_len + (ch * fh + ky) * fw + kx];
      }
    }
    x[i] = acc;
  }
}

// Max over each window; padding counts as -inf.  Like numpy.argmax, the first maximum wins
// and the first NaN wins over everything.
template <typename T, typename I>
__global__ void maxpool_forward(const T* x, T* out, int* arg, I size, I h, I w, I ph, I pw,
                                I oh, I ow, I stride, I pad, T neg_inf) {
  FASTNET_LOOP(I, i, size) {
    I ox = i % ow, r = i / ow;
    I oy = r % oh, nc = r / oh;
    T best = neg_inf;
    int best_k = 0;
    for (I ky = 0; ky < ph; ++ky) {
      I yy = oy * stride - pad + ky;
      for (I kx = 0; kx < pw; ++kx) {
        I xx = ox * stride - pad + kx;
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
template <typename T, typename A, typename I>
__global__ void maxpool_backward(const T* dout, const A* arg, T* dx, I size, I h, I w, I ph,
                                 I pw, I oh, I ow, I stride, I pad) {
  FASTNET_LOOP(I, i, size) {
    I xx = i % w, r = i / w;
    I yy = r % h, nc = r / h;
    T acc = T(0);
    for (I ky = 0; ky < ph; ++ky) {
      I ty = yy + pad - ky;
      if (ty < 0 || ty % stride != 0 || ty / stride >= oh) continue;
      for (I kx = 0; kx < pw; ++kx) {
        I tx = xx + pad - kx;
        if (tx < 0 || tx % stride != 0 || tx / stride >= ow) continue;
        I o = (nc * oh + ty / stride) * ow + tx / stride;
        if ((I)arg[o] == ky * pw + kx) acc += dout[o];
      }
    }
    dx[i] = acc;
  }
}

// Softmax with loss spreads a batch over one thread per score, not one per row: batch 100 of
// 10 classes is 1000 threads on several multiprocessors instead of 100 on one.  Every thread
// of a row computes the row's maximum and sum the same way (the row is a few cached reads),
// so no thread waits for another and the results do not depend on scheduling.
template <typename T, typename I>
__device__ T row_max(const T* x, I c) {
  T m = x[0];
  for (I j = 1; j < c; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

template <typename T, typename I>
__device__ T row_sum_exp(const T* x, I c, T m) {
  T s = T(0);
  for (I j = 0; j < c; ++j) s += exp(x[j] - m);
  return s;
}

// Softmax into y, and each row's cross-entropy against integer labels (written by the row's
// first thread).  A label outside 0..c-1 reads nothing and gives a NaN loss, never a stray read.
template <typename T, typename L, typename I>
__global__ void softmax_xent_labels(const T* x, const L* t, T* y, T* loss, I size, I c) {
  FASTNET_LOOP(I, i, size) {
    I r = i / c;
    const T* row = x + r * c;
    T m = row_max(row, c);
    T s = row_sum_exp(row, c, m);
    y[i] = exp(x[i] - m) / s;
    if (i == r * c) {
      L label = t[r];
      bool known = label >= 0 && (I)label < c;
      loss[r] = known ? log(s) - (row[(I)label] - m) : T(nan(""));
    }
  }
}

// The same against one-hot (or soft) target rows.
template <typename T, typename I>
__global__ void softmax_xent_onehot(const T* x, const T* t, T* y, T* loss, I size, I c) {
  FASTNET_LOOP(I, i, size) {
    I r = i / c;
    const T* row = x + r * c;
    T m = row_max(row, c);
    T s = row_sum_exp(row, c, m);
    y[i] = exp(x[i] - m) / s;
    if (i == r * c) {
      T log_sum = log(s), acc = T(0);
      for (I j = 0; j < c; ++j) acc += t[r * c + j] * (row[j] - m - log_sum);
      loss[r] = -acc;
    }
  }
}

// dx = (softmax - onehot(t)) * scale, without building the one-hot matrix.
template <typename T, typename L, typename I>
__global__ void softmax_xent_backward_labels(const T* y, const L* t, T* dx, I size, I c,
                                             T scale) {
  FASTNET_LOOP(I, i, size) {
    T v = y[i];
    if (i % c == (I)t[i / c]) v -= T(1);
    dx[i] = v * scale;
  }
}

template <typename T, typename I>
__global__ void softmax_xent_backward_onehot(const T* y, const T* t, T* dx, I size, T scale) {
  FASTNET_LOOP(I, i, size) { dx[i] = (y[i] - t[i]) * scale; }
}

// Value checks that never stop the GPU (fastnet.validation.ValueChecks): a thread that sees a
// bad value lowers *flag to the batch number.  The only atomics here: a minimum does not depend
// on the order the threads run in.
template <typename T, typename I>
__global__ void note_nonfinite(const T* x, long long* flag, I size, long long batch) {
  FASTNET_LOOP(I, i, size) {
    if (!isfinite(x[i])) atomicMin(flag, batch);
  }
}

template <typename L, typename I>
__global__ void note_bad_labels(const L* t, long long* flag, I size, L classes, long long batch) {
  FASTNET_LOOP(I, i, size) {
    if (t[i] < 0 || t[i] >= classes) atomicMin(flag, batch);
  }
}
"""

FLOAT_TYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
INDEX_TYPES = {numpy.dtype(numpy.int32): "int", numpy.dtype(numpy.int64): "long long"}
# The index type of a launch, by width: C++ name and the numpy scalar its arguments take.
INDEX_WIDTHS = {32: ("int", numpy.int32), 64: ("long long", numpy.int64)}
# 32-bit indices while every array a launch touches stays below this many elements: the margin
# keeps the grid-stride loop's last increment (at most threads x max_blocks = 2**24) from
# overflowing.
INDEX32_LIMIT = 2**31 - 2**25
# Softmax with loss spreads a row over its scores up to this many classes; each thread reads
# its whole row, so wider rows take CuPy's generic reductions instead.
SPREAD_MAX_CLASSES = 128

_FLOAT_KERNELS = (
    "bias_relu",
    "relu_backward",
    "conv_bias_act",
    "im2col",
    "col2im",
    "maxpool_forward",
    "softmax_xent_onehot",
    "softmax_xent_backward_onehot",
    "note_nonfinite",
)
_FLOAT_INDEX_KERNELS = ("maxpool_backward", "softmax_xent_labels", "softmax_xent_backward_labels")
_INDEX_KERNELS = ("note_bad_labels",)


def kernel_name(name: str, *ctypes: str) -> str:
    """The C++ name expression of one template instance, e.g. ``im2col<float, int>``."""
    return f"{name}<{', '.join(ctypes)}>"


def index_width(*sizes: int) -> int:
    """32 when every array a launch touches (by element count) fits 32-bit indices, else 64."""
    return 32 if max(sizes) < INDEX32_LIMIT else 64


def name_expressions(width: int | None = None) -> list[str]:
    """Every template instance the backend uses, for one index width (default: both).

    Each width is one module: the 64-bit one is compiled only when a huge tensor needs it.
    """
    widths = (32, 64) if width is None else (width,)
    names = []
    for w in widths:
        index = INDEX_WIDTHS[w][0]
        names += [kernel_name(k, f, index) for k in _FLOAT_KERNELS for f in FLOAT_TYPES.values()]
        names += [
            kernel_name(k, f, i, index)
            for k in _FLOAT_INDEX_KERNELS
            for f in FLOAT_TYPES.values()
            for i in INDEX_TYPES.values()
        ]
        names += [kernel_name(k, i, index) for k in _INDEX_KERNELS for i in INDEX_TYPES.values()]
    return names


def width_of(name: str) -> int:
    """The index width of a name expression (its last template argument)."""
    return 64 if name.endswith("long long>") else 32


class CudaLauncher:
    """Compiles ``SOURCE`` (NVRTC, cached on disk by CuPy) and launches its kernels.

    One module per index width, each compiled on its first launch: the 32-bit one serves every
    tensor below ``INDEX32_LIMIT`` elements, so the 64-bit one is built only for huge ones.
    """

    threads = 256
    max_blocks = 65536  # the grid-stride loop covers any size beyond this
    options = ()  # NVRTC options beyond CuPy's own (tests/test_cuda_nvrtc.py compiles with both)

    def __init__(self, cupy):
        self._cupy = cupy
        self._functions = {}
        self._compiled = set()

    def compile(self, width: int = 32):
        if width not in self._compiled:
            names = name_expressions(width)
            module = self._cupy.RawModule(code=SOURCE, options=self.options, name_expressions=names)
            self._functions.update({name: module.get_function(name) for name in names})
            self._compiled.add(width)

    def blocks(self, size: int) -> int:
        return min((size + self.threads - 1) // self.threads, self.max_blocks)

    def __call__(self, name: str, size: int, args: tuple) -> None:
        if size == 0:
            return
        self.compile(width_of(name))
        self._functions[name]((self.blocks(size),), (self.threads,), args)


class CupyKernels(NumpyKernels):
    """``NumpyKernels`` with the hot paths replaced by fused CUDA kernels.

    ``launch(name, size, args)`` runs one kernel over ``size`` elements; the default compiles
    and launches on the current CUDA device.  Kernel arguments are device arrays and numpy
    scalars whose dtype matches the C++ parameter exactly; index arguments take the launch's
    index width (``index_width`` of the sizes of the arrays it touches).
    """

    fast_dtypes = "fd"  # float32, float64

    def __init__(self, xp, launch=None):
        super().__init__(xp)
        self.launch = launch if launch is not None else CudaLauncher(xp)
        self.checks = CudaValueChecks(xp, self.launch)

    def _index_array(self, a):
        """Labels or argmax as int32/int64 (other integer dtypes are converted once)."""
        if a.dtype in INDEX_TYPES:
            return self.xp.ascontiguousarray(a)
        return self.xp.ascontiguousarray(a, dtype=numpy.int64)

    @staticmethod
    def _indexing(*arrays):
        """(C++ index type, numpy scalar type) for a launch touching ``arrays``."""
        return INDEX_WIDTHS[index_width(*(a.size for a in arrays))]

    # --- Affine / ReLU -------------------------------------------------------------------------
    @fast_path(("x", "W", "b"))
    def affine_relu_forward(self, x, W, b):
        ctype = FLOAT_TYPES[x.dtype]
        out = self.xp.ascontiguousarray(x @ W)
        b = self.xp.ascontiguousarray(b)
        itype, ix = self._indexing(out, b)
        self.launch(kernel_name("bias_relu", ctype, itype), out.size, (out, b, ix(out.size), ix(out.shape[1])))
        return out

    @fast_path(("dout", "out"), same_shape=("dout", "out"))
    def relu_backward(self, dout, out):
        ctype = FLOAT_TYPES[dout.dtype]
        dout, out = self.xp.ascontiguousarray(dout), self.xp.ascontiguousarray(out)
        dx = self.xp.empty_like(dout)
        itype, ix = self._indexing(dx)
        self.launch(kernel_name("relu_backward", ctype, itype), dx.size, (dout, out, dx, ix(dx.size)))
        return dx

    # --- Convolution output layout ---------------------------------------------------------------
    @fast_path(("out", "b"))
    def conv_bias_act(self, out, b, n, oh, ow, relu=False):
        ctype = FLOAT_TYPES[out.dtype]
        rows, b = self.xp.ascontiguousarray(out), self.xp.ascontiguousarray(b)
        f = rows.shape[1]
        y = self.xp.empty((n, f, oh, ow), dtype=rows.dtype)
        itype, ix = self._indexing(rows, y)
        self.launch(
            kernel_name("conv_bias_act", ctype, itype),
            y.size,
            (rows, b, y, ix(y.size), ix(f), ix(oh * ow), numpy.int32(bool(relu))),
        )
        return y

    # --- im2col / col2im ---------------------------------------------------------------------------
    @staticmethod
    def _conv_geometry(shape, fh, fw, stride, pad):
        n, c, h, w = shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        return n, c, h, w, oh, ow, (c, h, w, fh, fw, oh, ow, stride, pad)

    @fast_path(("x",))
    def im2col(self, x, fh, fw, stride=1, pad=0):
        ctype = FLOAT_TYPES[x.dtype]
        n, c, _, _, oh, ow, geometry = self._conv_geometry(x.shape, fh, fw, stride, pad)
        x = self.xp.ascontiguousarray(x)
        col = self.xp.empty((n * oh * ow, c * fh * fw), dtype=x.dtype)
        itype, ix = self._indexing(x, col)
        self.launch(kernel_name("im2col", ctype, itype), col.size, (x, col, ix(col.size), *map(ix, geometry)))
        return col

    @fast_path(("col",))
    def col2im(self, col, x_shape, fh, fw, stride=1, pad=0):
        ctype = FLOAT_TYPES[col.dtype]
        n, c, h, w, _, _, geometry = self._conv_geometry(x_shape, fh, fw, stride, pad)
        col = self.xp.ascontiguousarray(col)
        x = self.xp.empty((n, c, h, w), dtype=col.dtype)
        itype, ix = self._indexing(x, col)
        self.launch(kernel_name("col2im", ctype, itype), x.size, (col, x, ix(x.size), *map(ix, geometry)))
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
        itype, ix = self._indexing(x, out)
        args = (x, out, arg, ix(out.size), *map(ix, (h, w, ph, pw, oh, ow, stride, pad)), x.dtype.type(-numpy.inf))
        self.launch(kernel_name("maxpool_forward", ctype, itype), out.size, args)
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
        itype, ix = self._indexing(dx, dout)
        args = (dout, argmax, dx, ix(dx.size), *map(ix, (h, w, ph, pw, oh, ow, stride, pad)))
        self.launch(kernel_name("maxpool_backward", FLOAT_TYPES[work], INDEX_TYPES[argmax.dtype], itype), dx.size, args)
        return dx.astype(wanted, copy=False)

    # --- Softmax + cross-entropy -------------------------------------------------------------------
    @fast_path(("x",), ndim={"x": 2}, targets=("t", "x"))
    def softmax_cross_entropy(self, x, t):
        """``(loss, y)``: the mean loss stays a 0-d device array (no host sync here).

        A label outside the classes gives a NaN loss (the kernel reads nothing for it); the
        net's device-side checks say which batch held it.
        """
        n, c = x.shape
        if c > SPREAD_MAX_CLASSES:
            return NumpyKernels.softmax_cross_entropy(self, x, t)
        labels = t.ndim == 1
        ctype = FLOAT_TYPES[x.dtype]
        x = self.xp.ascontiguousarray(x)
        y = self.xp.empty_like(x)
        row_loss = self.xp.empty(n, dtype=x.dtype)
        itype, ix = self._indexing(x)
        if labels:
            t = self._index_array(t)
            name = kernel_name("softmax_xent_labels", ctype, INDEX_TYPES[t.dtype], itype)
        else:
            t = self.xp.ascontiguousarray(t)
            name = kernel_name("softmax_xent_onehot", ctype, itype)
        self.launch(name, x.size, (x, t, y, row_loss, ix(x.size), ix(c)))
        return row_loss.mean(), y

    @fast_path(("y",), ndim={"y": 2}, numbers=("dout",), targets=("t", "y"))
    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        labels = t.ndim == 1
        ctype = FLOAT_TYPES[y.dtype]
        y = self.xp.ascontiguousarray(y)
        dx = self.xp.empty_like(y)
        scale = y.dtype.type(dout / y.shape[0])
        itype, ix = self._indexing(y)
        if labels:
            t = self._index_array(t)
            name = kernel_name("softmax_xent_backward_labels", ctype, INDEX_TYPES[t.dtype], itype)
            args = (y, t, dx, ix(dx.size), ix(y.shape[1]), scale)
        else:
            t = self.xp.ascontiguousarray(t)
            name = kernel_name("softmax_xent_backward_onehot", ctype, itype)
            args = (y, t, dx, ix(dx.size), scale)
        self.launch(name, dx.size, args)
        return dx


class CudaValueChecks:
    """One-launch value checks for ``fastnet.validation.ValueChecks`` (``CupyKernels.checks``).

    Not kernel ops of the contract: they compute nothing for the net, they only lower a flag.
    """

    def __init__(self, xp, launch):
        self.xp = xp
        self.launch = launch

    def note_nonfinite(self, x, flag, batch) -> bool:
        """``flag[0] = min(flag[0], batch)`` if ``x`` holds NaN or inf, in one launch and no read.

        ``flag`` is a 1-element int64 device array.  False: this dtype takes the generic check.
        """
        if x.dtype not in FLOAT_TYPES:
            return False
        x = self.xp.ascontiguousarray(x)
        itype, ix = CupyKernels._indexing(x)
        self.launch(
            kernel_name("note_nonfinite", FLOAT_TYPES[x.dtype], itype),
            x.size,
            (x, flag, ix(x.size), numpy.int64(batch)),
        )
        return True

    def note_bad_labels(self, t, flag, batch, classes) -> bool:
        """The same for integer labels outside ``0..classes-1``."""
        if t.dtype not in INDEX_TYPES:
            return False
        t = self.xp.ascontiguousarray(t)
        itype, ix = CupyKernels._indexing(t)
        self.launch(
            kernel_name("note_bad_labels", INDEX_TYPES[t.dtype], itype),
            t.size,
            (t, flag, ix(t.size), t.dtype.type(classes), numpy.int64(batch)),
        )
        return True

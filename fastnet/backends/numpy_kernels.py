"""Reference kernels written against an array module ``xp`` (numpy or cupy).

These are the oracle every faster kernel is tested against, so they favour clarity.  They
still avoid needless copies and never promote float32 to float64.
"""

from __future__ import annotations

from fastnet.optim import adam_step, momentum_step, sgd_step
from fastnet.shapes import window_output_hw


class NumpyKernels:
    """The reference kernel set; ``fastnet.backends.contract`` says what each op takes and returns."""

    def __init__(self, xp):
        self.xp = xp

    # --- Affine / ReLU -------------------------------------------------------------------------
    def affine_forward(self, x, W, b):
        out = x @ W
        out += b
        return out

    def affine_relu_forward(self, x, W, b):
        """``max(x @ W + b, 0)``; the ReLU's backward only needs this output."""
        out = self.affine_forward(x, W, b)
        return self.xp.maximum(out, 0, out=out)

    def affine_relu_forward_finite(self, x, W, b):
        """``(max(x @ W + b, 0), finite)``: ``finite`` (a 0-d bool array) says whether every value
        of ``x @ W + b`` was finite, as it is not when ``x`` holds a NaN or an inf."""
        out = self.affine_forward(x, W, b)
        finite = self.xp.isfinite(out).all()
        return self.xp.maximum(out, 0, out=out), finite

    def affine_backward(self, x, W, dout, need_dx=True):
        dx = dout @ W.T if need_dx else None
        dW = x.T @ dout
        db = self.bias_grad(dout)
        return dx, dW, db

    def bias_grad(self, dout):
        return dout.sum(axis=0)

    def relu_forward(self, x):
        return self.xp.maximum(x, 0)

    def relu_backward(self, dout, out):
        """Gradient through ReLU from its saved output (positive where the input was)."""
        return self.xp.where(out > 0, dout, 0)

    # --- Optimizer ---------------------------------------------------------------------------------
    def sgd_update(self, param, grad, lr):
        """``param -= lr * grad``, in place (``lr`` a Python number); returns nothing."""
        sgd_step(param, grad, lr)

    def momentum_update(self, param, grad, v, lr, momentum):
        """``v = momentum * v - lr * grad; param += v``, in place; returns nothing."""
        momentum_step(param, grad, v, lr, momentum)

    def adam_update(self, param, grad, m, v, lr_t, beta1, beta2):
        """Adam's moments ``m``, ``v`` and ``param``, in place (``fastnet.optim.adam_step``)."""
        adam_step(param, grad, m, v, lr_t, beta1, beta2)

    # --- Convolution -----------------------------------------------------------------------------------
    def conv_forward(self, x, W, b, stride=1, pad=0, relu=False):
        """``(out (N, FN, OH, OW), cache)``: im2col, one matrix product, bias (and ReLU) added."""
        fn, _, fh, fw = W.shape
        n, _, h, w = x.shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        col = self.im2col(x, fh, fw, stride, pad)
        out = self.conv_bias_act(col @ W.reshape(fn, -1).T, b, n, oh, ow, relu)
        return out, (col, x.shape, stride, pad)

    def conv_backward(self, dout, W, cache, need_dx=True):
        """``(dx or None, dW, db)`` from the forward's cache."""
        col, x_shape, stride, pad = cache
        fn, _, fh, fw = W.shape
        rows = self.nchw_to_rows(dout)
        db = self.bias_grad(rows)
        dW = (rows.T @ col).reshape(W.shape)
        if not need_dx:
            return None, dW, db
        return self.col2im(rows @ W.reshape(fn, -1), x_shape, fh, fw, stride, pad), dW, db

    # --- Convolution output layout ---------------------------------------------------------------------
    def conv_bias_act(self, out, b, n, oh, ow, relu=False):
        """Rows (N*OH*OW, FN) from the im2col product -> (N, FN, OH, OW), bias added, ReLU optional."""
        out += b
        if relu:
            self.xp.maximum(out, 0, out=out)
        return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)

    def nchw_to_rows(self, dout):
        """(N, FN, OH, OW) -> (N*OH*OW, FN): the inverse layout of ``conv_bias_act``."""
        return dout.transpose(0, 2, 3, 1).reshape(-1, dout.shape[1])

    # --- Softmax + cross-entropy -------------------------------------------------------------------
    def softmax_cross_entropy(self, x, t):
        """Mean cross-entropy of softmax(x) against integer labels or one-hot rows.

        Returns ``(loss, y)`` with ``y = softmax(x)``; the loss is a 0-d array so that reading it
        (a device sync on a GPU) stays the caller's choice.
        """
        xp = self.xp
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        y = exp / sum_exp
        log_sum = xp.log(sum_exp)
        if t.ndim == 1:
            picked = shifted[xp.arange(n), t]
            loss = (log_sum[:, 0] - picked).mean()
        else:
            loss = -(t * (shifted - log_sum)).sum() / n
        return loss, y

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        n = y.shape[0]
        if t.ndim == 1:
            dx = y.copy()
            dx[self.xp.arange(n), t] -= 1
        else:
            dx = y - t
        dx *= dout / n
        return dx

    # --- im2col / col2im -----------------------------------------------------------------------------
    def im2col(self, x, fh, fw, stride=1, pad=0):
        """(N, C, H, W) -> (N*OH*OW, C*FH*FW), one row per output pixel."""
        xp = self.xp
        n, c, h, w = x.shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        img = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
        # Filled directly in row layout so the final reshape is free.
        col = xp.empty((n, oh, ow, c, fh, fw), dtype=x.dtype)
        for i in range(fh):
            for j in range(fw):
                window = img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
                col[:, :, :, :, i, j] = window.transpose(0, 2, 3, 1)
        return col.reshape(n * oh * ow, c * fh * fw)

    def col2im(self, col, x_shape, fh, fw, stride=1, pad=0):
        """Adjoint of im2col: scatter-add every row back onto the image."""
        xp = self.xp
        n, c, h, w = x_shape
        oh, ow = window_output_hw(h, w, fh, fw, stride, pad)
        col = col.reshape(n, oh, ow, c, fh, fw)
        img = xp.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
        for i in range(fh):
            for j in range(fw):
                img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += col[
                    :, :, :, :, i, j
                ].transpose(0, 3, 1, 2)
        return xp.ascontiguousarray(img[:, :, pad : h + pad, pad : w + pad])

    # --- max pooling -------------------------------------------------------------------------------------
    def _pool_windows(self, x, ph, pw, stride, pad):
        xp = self.xp
        n, c, h, w = x.shape
        oh, ow = window_output_hw(h, w, ph, pw, stride, pad)
        img = x
        if pad:
            img = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-xp.inf)
        windows = xp.empty((ph * pw, n, c, oh, ow), dtype=x.dtype)
        for i in range(ph):
            for j in range(pw):
                windows[i * pw + j] = img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
        return windows

    def maxpool_forward(self, x, ph, pw, stride=1, pad=0):
        """Returns ``(out, argmax)``; argmax indexes the window position (row-major)."""
        windows = self._pool_windows(x, ph, pw, stride, pad)
        argmax = windows.argmax(axis=0)
        out = windows.max(axis=0)
        return out, argmax

    def maxpool_backward(self, dout, argmax, x_shape, ph, pw, stride=1, pad=0):
        xp = self.xp
        n, c, h, w = x_shape
        oh, ow = dout.shape[2], dout.shape[3]
        img = xp.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=dout.dtype)
        for i in range(ph):
            for j in range(pw):
                img[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += xp.where(
                    argmax == i * pw + j, dout, 0
                )
        return xp.ascontiguousarray(img[:, :, pad : h + pad, pad : w + pad])

    def maxpool_relu_backward(self, dout, argmax, relu_out, x_shape, ph, pw, stride=1, pad=0):
        """The gradient through a max pooling and the ReLU before it, whose output ``relu_out``
        the pooling took: ``relu_backward(maxpool_backward(...), relu_out)``."""
        return self.relu_backward(self.maxpool_backward(dout, argmax, x_shape, ph, pw, stride, pad), relu_out)

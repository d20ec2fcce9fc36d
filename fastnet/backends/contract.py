"""The kernel contract: every hot-path op a kernel set provides, written down once.

``NumpyKernels`` is the reference and the test oracle; a faster kernel set (numba, cupy)
subclasses it and overrides an op only through :func:`fastnet.backends.dispatch.fast_path`, which
declares the inputs its fast path takes and sends every other call to the reference.  Layers call
these ops through ``backend.kernels`` and nothing else.

Common rules
    * Arrays are the backend's (numpy, or cupy on the GPU); any memory layout is accepted.
    * A "float" array is float16, float32 or float64.  Results keep the inputs' float dtype: no
      silent float64.  Arguments named together share one dtype (the layer checked it).
    * Kernels never modify their inputs; an output may be a fresh array the caller owns.
    * A *cache* is what a forward hands its backward.  It is opaque to the caller, who passes it
      back untouched; the backward takes the path (fast or reference) its forward took.

Dense layers
    affine_forward(x (N, D), W (D, M), b (M,))              -> out (N, M)
    affine_relu_forward(x, W, b)                             -> max(x @ W + b, 0)  (N, M)
    affine_relu_forward_finite(x, W, b)                      -> (max(x @ W + b, 0), finite): finite
        says whether every value of x @ W + b was (a NaN or inf in x makes some not); a Python
        or a 0-d array bool
    affine_backward(x, W, dout (N, M), need_dx)              -> (dx (N, D) or None, dW (D, M), db (M,))
    bias_grad(dout (R, M))                                   -> dout.sum(axis=0)  (M,)
    relu_forward(x any shape)                                -> max(x, 0), same shape
    relu_backward(dout, out)  both the forward output's shape -> dout where out > 0, else 0

Optimizer (the ops that write into their arguments)
    sgd_update(param, grad of param's shape, lr a number)   -> None; fastnet.optim.sgd_step:
        param -= lr * grad in place, lr rounded to param's dtype first, as NumPy does with a
        Python number
    momentum_update(param, grad, v, lr, momentum)            -> None; fastnet.optim.momentum_step
    adam_update(param, grad, m, v, lr_t, beta1, beta2)       -> None; fastnet.optim.adam_step
        (the numbers are Python numbers; the arrays, of one shape and dtype, change in place)

Loss
    softmax_cross_entropy(x (N, C), t)                       -> (loss 0-d array, y = softmax(x) (N, C))
        t: integer labels (N,) in [0, C), or one-hot/soft rows (N, C) of x's dtype.  Labels are
        checked by the caller (``fastnet.validation.check_labels``), not here; a kernel that
        meets one out of range raises IndexError or returns nonsense, never a signal value.
    softmax_cross_entropy_backward(y (N, C), t, dout=1.0)    -> dx (N, C) = (y - onehot(t)) * dout / N

Convolution (W (FN, C, FH, FW), b (FN,), OH and OW from ``fastnet.shapes.window_output_hw``)
    conv_forward(x (N, C, H, W), W, b, stride, pad, relu)  -> (out (N, FN, OH, OW), cache); ReLU
        applied when ``relu``
    conv_backward(dout (N, FN, OH, OW), W, cache, need_dx)  -> (dx (N, C, H, W) or None, dW, db)
The reference builds those two from the im2col ops below (one row per output pixel, columns in
(C, FH, FW) order); a fast kernel set may compute them any way it likes.
    im2col(x (N, C, H, W), fh, fw, stride, pad)              -> col (N*OH*OW, C*FH*FW)
    col2im(col (N*OH*OW, C*FH*FW), x_shape, fh, fw, stride, pad) -> dx (N, C, H, W); the adjoint
        of im2col: <im2col(x), col> == <x, col2im(col)>
    conv_bias_act(rows (N*OH*OW, FN), b (FN,), n, oh, ow, relu) -> (N, FN, OH, OW), bias added,
        ReLU when ``relu``; may reuse ``rows``' memory (the caller hands it over)
    nchw_to_rows(dout (N, FN, OH, OW))                       -> rows (N*OH*OW, FN)

Max pooling (padding counts as -inf; the first maximum of a window wins, a NaN wins over all)
    maxpool_forward(x (N, C, H, W), ph, pw, stride, pad)     -> (out (N, C, OH, OW), cache)
    maxpool_backward(dout (N, C, OH, OW), cache, x_shape, ph, pw, stride, pad) -> dx (N, C, H, W)
        in dout's dtype; each input element gets the sum of dout over the windows it won.
    maxpool_relu_backward(dout, cache, relu_out (N, C, H, W), x_shape, ph, pw, stride, pad) -> dx:
        relu_backward(maxpool_backward(dout, ...), relu_out), for a pooling whose input was the
        output ``relu_out`` of a ReLU; a kernel set may compute it in one pass.
"""

OPS = (
    "affine_forward",
    "affine_relu_forward",
    "affine_relu_forward_finite",
    "affine_backward",
    "bias_grad",
    "relu_forward",
    "relu_backward",
    "sgd_update",
    "momentum_update",
    "adam_update",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "im2col",
    "col2im",
    "conv_bias_act",
    "nchw_to_rows",
    "conv_forward",
    "conv_backward",
    "maxpool_forward",
    "maxpool_backward",
    "maxpool_relu_backward",
)

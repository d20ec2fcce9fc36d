"""The matrix products a net's forward pass makes, found from its layers' shapes alone.

The thread policy sizes its choice by the largest product; the benchmark's "matmul bound"
times exactly these products (and their backward twins).  Nothing is computed on arrays.
"""
from __future__ import annotations


def forward_products(net, sample_shape, batch_size, kind=None) -> list:
    """(m, k, n) of each product ``(m x k) @ (k x n)`` in a forward pass, layer by layer.

    An Affine multiplies (batch x in) by (in x out); a Convolution through im2col multiplies
    (batch*OH*OW x C*FH*FW) by (C*FH*FW x FN).  Other layers only change the shape
    (``output_shape`` where they have one).  ``kind`` ("affine" or "conv") keeps only those.
    """
    shape = (batch_size, *sample_shape)
    products = []
    for layer in net.layers.values():
        W = getattr(layer, "W", None)
        if W is not None and W.ndim == 2:           # Affine
            if kind in (None, "affine"):
                products.append((shape[0], int(W.shape[0]), int(W.shape[1])))
            shape = (shape[0], int(W.shape[1]))
        elif W is not None and W.ndim == 4:         # Convolution
            fn, c, fh, fw = (int(s) for s in W.shape)
            shape = tuple(int(s) for s in layer.output_shape(shape))
            if kind in (None, "conv"):
                products.append((shape[0] * shape[2] * shape[3], c * fh * fw, fn))
        elif hasattr(layer, "output_shape"):        # Pooling
            shape = tuple(int(s) for s in layer.output_shape(shape))
    return products

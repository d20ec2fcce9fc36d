"""The matrix products a net's forward pass makes, found from its layers' shapes alone.

The thread policy sizes its choice by the largest product; the benchmark's "matmul bound"
times exactly these products (and their backward twins).  Nothing is computed on arrays.
"""

from __future__ import annotations


def forward_products(net, sample_shape, batch_size, kind=None) -> list:
    """(m, k, n) of each product ``(m x k) @ (k x n)`` in a forward pass, layer by layer.

    An Affine multiplies (batch x in) by (in x out); a Convolution through im2col multiplies
    (batch*OH*OW x C*FH*FW) by (C*FH*FW x FN).  Every layer says the shape it outputs
    (``output_shape``); its declared kind says whether it multiplies.  ``kind`` ("affine" or
    "conv") keeps only those products.  A foreign (book-style) layer is taken to keep the shape.
    """
    shape = (batch_size, *sample_shape)
    products = []
    for name, layer in net.layers.items():
        declared = net.declared(name)
        if not declared.native:
            continue
        after = tuple(int(s) for s in layer.output_shape(shape))
        if declared.kind == "affine" and kind in (None, "affine"):
            products.append((shape[0], int(layer.W.shape[0]), int(layer.W.shape[1])))
        elif declared.kind == "conv" and kind in (None, "conv"):
            fn, c, fh, fw = (int(s) for s in layer.W.shape)
            products.append((after[0] * after[2] * after[3], c * fh * fw, fn))
        shape = after
    return products

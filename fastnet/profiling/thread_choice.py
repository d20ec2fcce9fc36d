"""The thread choice for a net: sized by the largest matrix product of its forward pass
(found from the layers' declared shapes, ``fastnet.profiling.shapes``); the policy itself and the
context the kernels read are ``fastnet.threads``."""

from __future__ import annotations

from fastnet.profiling.shapes import forward_products
from fastnet.threads import ThreadChoice, choose_threads


def largest_product_macs(net, sample_shape, batch_size, kind=None) -> int:
    """Multiply-adds of the largest matrix product in the net's forward pass at this batch
    (``kind``: only "affine" or only "conv" layers)."""
    return max((m * k * n for m, k, n in forward_products(net, sample_shape, batch_size, kind)), default=0)


def threads_for(net, sample_shape, batch_size, threads=None) -> ThreadChoice:
    """The choice for training or timing ``net`` on batches of ``batch_size`` samples.

    On the numba backend each convolution shares its batch among ``conv_threads`` threads with a
    single-threaded BLAS, so the BLAS count is sized by the other products alone: DeepConvNet's
    small Affine products then run on one BLAS thread while its convolutions use every core.
    """
    convs = largest_product_macs(net, sample_shape, batch_size, "conv")
    if getattr(net.backend, "name", None) == "numba" and convs:
        return choose_threads(
            largest_product_macs(net, sample_shape, batch_size, "affine"), threads, conv_product_macs=convs
        )
    return choose_threads(largest_product_macs(net, sample_shape, batch_size), threads)

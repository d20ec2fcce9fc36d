"""Shape arithmetic shared by layers, nets and kernels: where a sliding window lands.

One definition, so a layer's ``output_shape``, a net's size of its first Affine layer and a
kernel's output buffer can never disagree.
"""

from __future__ import annotations


def conv_output_size(size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """How many positions a window of ``filter_size`` takes along ``size`` (padded on both sides)."""
    return (size + 2 * pad - filter_size) // stride + 1


def window_output_hw(h: int, w: int, fh: int, fw: int, stride: int = 1, pad: int = 0) -> tuple[int, int]:
    """(OH, OW) of a convolution or pooling window over an (H, W) plane; below 1 when it does not fit."""
    return conv_output_size(h, fh, stride, pad), conv_output_size(w, fw, stride, pad)

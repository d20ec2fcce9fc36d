"""The matplotlib set-up shared by the pictures, and atomic PNG output."""
from __future__ import annotations

import io

from fastnet.atomic import atomic_write

DPI = 100


def pyplot():
    """matplotlib.pyplot on the Agg backend: pictures are files, no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_png(fig, path, close=True):
    """Write ``fig`` to ``path`` atomically (a reader never sees half a PNG); returns the path."""
    data = png_bytes(fig)
    if close:
        pyplot().close(fig)
    return atomic_write(path, lambda f: f.write(data))


def as_images(images):
    """(N, H, W) for grayscale or (N, H, W, 3) from flat square rows (N, H*W) or (N, C, H, W)."""
    import numpy

    images = numpy.asarray(images)
    if images.ndim == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            from fastnet.errors import InputError

            raise InputError(f"flat images of {images.shape[1]} pixels are not square; pass (N, C, H, W)")
        return images.reshape(-1, side, side)
    if images.ndim == 4:
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    return images

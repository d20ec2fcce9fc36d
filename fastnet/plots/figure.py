"""The matplotlib set-up shared by the pictures, and atomic PNG output."""

from __future__ import annotations

import io

from fastnet.atomic import atomic_write

DPI = 100


def new_figure(**kwargs):
    """A ``matplotlib.figure.Figure`` of its own, outside pyplot: drawing and saving it neither
    switches the user's backend nor joins pyplot's open figures, so a notebook's inline plots
    keep working; it is freed like any object.  Shown in a notebook cell, it displays itself."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_png(fig, path, close=True):
    """Write ``fig`` to ``path`` atomically (a reader never sees half a PNG); returns the path.

    ``close`` is kept for callers of old: a figure of ``new_figure`` needs no closing."""
    data = png_bytes(fig)
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

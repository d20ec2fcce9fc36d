"""The matplotlib set-up shared by the pictures, and atomic PNG output."""

from __future__ import annotations

import io
import os
import sys

from fastnet.atomic import atomic_write

DPI = 100


def set_aside_unusable_mplbackend(environ=None):
    """Import matplotlib even when ``MPLBACKEND`` names no backend; returns a note saying it was
    set aside, else None.

    matplotlib checks ``MPLBACKEND`` as it is imported and refuses the import of an unknown one;
    fastnet's pictures are Figures drawn by Agg outside pyplot and never use that backend, so such
    a value must not end a run that has trained.  The import is retried without it (the variable
    is put back for anything else that reads it)."""
    environ = os.environ if environ is None else environ
    value = environ.get("MPLBACKEND")
    if not value or "matplotlib" in sys.modules:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None  # not installed: the picture that needs it says so
    except ValueError:
        for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
            del sys.modules[name]  # the half-made import, to be made again
        del environ["MPLBACKEND"]
        try:
            import matplotlib  # noqa: F401
        finally:
            environ["MPLBACKEND"] = value
        return (
            f"fastnet: note: MPLBACKEND={value!r} is not a matplotlib backend; ignored (fastnet's pictures need none)"
        )
    return None


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

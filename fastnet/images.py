"""Your own pictures as a net's input, prepared the way its data set was made.

MNIST digits were made by scaling each digit to fit a 20x20 box (keeping its aspect), then
placing it in 28x28 with its centre of mass in the middle, white ink on black.  Fashion-MNIST
items were trimmed, scaled so the longer side fills 28 pixels and centred, light on black.
A photo or scan is usually the other way round (dark on light): the background is read off the
border and the picture inverted when it is light.  Every refusal (not an image, truncated, too
many pixels, too small, blank) is an ImageError with one line that says why.
"""

from __future__ import annotations

import io
import warnings

import numpy

from fastnet.errors import InputError

SIDE = 28
DIGIT_BOX = 20  # MNIST: the digit fits a 20x20 box inside the 28x28 image
MIN_SIDE = 8  # smaller pictures hold no readable digit
MAX_PIXELS = 40_000_000  # far beyond any photo of a digit; a bigger header is a decompression bomb
MAX_BYTES = 32 << 20
INK = 0.25  # a pixel is ink when it is this far from the background (of the range)
ITEM_EDGE = 0.05  # Fashion-MNIST items keep their faint edges: trimmed at a lower level
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
RECIPES = ("mnist", "fashion-mnist")


class ImageError(InputError):
    """A picture that cannot be a net's input; the message names the problem."""


def read_image(source) -> numpy.ndarray:
    """Gray levels in [0, 1] (float64, H x W) of a file path or bytes; transparency counts as white."""
    from PIL import Image, UnidentifiedImageError

    data = source if isinstance(source, (bytes, bytearray)) else _read_bytes(source)
    try:
        with warnings.catch_warnings():  # the size is checked here, in one line, not by a warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"declares {width}x{height} pixels, more than the {MAX_PIXELS:,} "
                    f"allowed (a decompression bomb?); scale it down"
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(f"is {width}x{height} pixels; a digit needs at least {MIN_SIDE}x{MIN_SIDE}")
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, rgba)
            gray = numpy.asarray(image.convert("L"), dtype=numpy.float64) / 255.0
    except UnidentifiedImageError:
        raise ImageError("is not an image Pillow can read (PNG, JPEG, BMP, GIF, ...)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"is too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's words for truncated or corrupt
        raise ImageError(
            f"is truncated or corrupt ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    return gray


def _read_bytes(path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ImageError(f"is larger than {MAX_BYTES >> 20} MiB; a digit needs far less")
    return data


def ink_on_black(gray: numpy.ndarray) -> numpy.ndarray:
    """The picture as ink (1) on background (0): inverted when the border is light, then stretched
    so the background is 0 and the strongest ink 1.  A picture without contrast is blank."""
    border = numpy.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(numpy.median(border))
    ink = gray - background if background < 0.5 else background - gray
    top = float(ink.max())
    if top < 0.1:
        raise ImageError("is blank (no stroke stands out from the background); draw darker or crop to the digit")
    return numpy.clip(ink / top, 0.0, 1.0)


def _bounding_box(ink, level=None):
    level = INK if level is None else level
    rows = numpy.flatnonzero((ink > level).any(axis=1))
    cols = numpy.flatnonzero((ink > level).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(array, width, height):
    from PIL import Image

    image = Image.fromarray(array.astype(numpy.float32), mode="F")
    return numpy.clip(numpy.asarray(image.resize((width, height), Image.Resampling.LANCZOS)), 0.0, 1.0)


def _fit(crop, box):
    h, w = crop.shape
    scale = box / max(h, w)
    return _resize(crop, max(1, round(w * scale)), max(1, round(h * scale)))


def mnist_digit(gray) -> numpy.ndarray:
    """28x28 in [0, 1]: cropped to the ink, fitted to 20x20 keeping the aspect, centred by mass."""
    digit = _fit(_bounding_box(ink_on_black(gray)), DIGIT_BOX)
    h, w = digit.shape
    mass = digit.sum()
    cy = (digit.sum(axis=1) @ numpy.arange(h)) / mass
    cx = (digit.sum(axis=0) @ numpy.arange(w)) / mass
    top = int(numpy.clip(round(SIDE / 2 - cy), 0, SIDE - h))
    left = int(numpy.clip(round(SIDE / 2 - cx), 0, SIDE - w))
    out = numpy.zeros((SIDE, SIDE))
    out[top : top + h, left : left + w] = digit
    return out


def fashion_item(gray) -> numpy.ndarray:
    """28x28 in [0, 1]: trimmed to the item, longer side scaled to 28, centred; light on black."""
    item = _fit(_bounding_box(ink_on_black(gray), ITEM_EDGE), SIDE)
    h, w = item.shape
    out = numpy.zeros((SIDE, SIDE))
    top, left = (SIDE - h) // 2, (SIDE - w) // 2
    out[top : top + h, left : left + w] = item
    return out


def prepare(source, recipe="mnist") -> numpy.ndarray:
    """A picture (path or bytes) as a 28x28 float32 image in [0, 1], as the data set ``recipe`` was made."""
    if recipe not in RECIPES:
        raise InputError(f"unknown image recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    gray = read_image(source)
    return (mnist_digit(gray) if recipe == "mnist" else fashion_item(gray)).astype(numpy.float32)


def as_net_input(net, images) -> numpy.ndarray:
    """(N, 28, 28) images shaped for ``net``: flat rows for a net that starts with an Affine,
    (N, 1, 28, 28) for a convolutional one, in the net's dtype."""
    images = numpy.asarray(images, dtype=net.dtype)
    first = net.input_layer
    if getattr(first, "W", None) is not None and first.W.ndim == 4:
        return images.reshape(len(images), first.W.shape[1], SIDE, SIDE)
    return images.reshape(len(images), -1)

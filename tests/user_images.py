"""Pictures as users make them, from real MNIST test digits: dark ink on white paper, any size,
off-centre, as PNG files."""

import numpy
from PIL import Image


def user_style_png(digit, path, rng):
    """``digit`` (28x28 in [0, 1], white on black) upscaled 2-9x, inverted, padded unevenly."""
    scale = int(rng.integers(2, 10))
    gray = numpy.uint8(numpy.round(255 * (1.0 - numpy.asarray(digit).reshape(28, 28))))
    image = Image.fromarray(gray).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    left, top, right, bottom = (int(v) for v in rng.integers(0, 40 * scale // 2 + 1, size=4))
    page = Image.new("L", (image.width + left + right, image.height + top + bottom), 255)
    page.paste(image, (left, top))
    page.save(path)
    return path

"""Weight initialisation on the host from a seeded generator: same seed, same net, any backend."""

import math

import numpy

from fastnet.errors import InputError


def init_scale(weight_init_std, fan_in: int) -> float:
    """A number, or 'relu'/'he' (sqrt(2/n)), or 'sigmoid'/'xavier' (sqrt(1/n))."""
    if isinstance(weight_init_std, str):
        name = weight_init_std.lower()
        if name in ("relu", "he"):
            return math.sqrt(2.0 / fan_in)
        if name in ("sigmoid", "xavier"):
            return math.sqrt(1.0 / fan_in)
        raise InputError(
            f"unknown weight_init_std {weight_init_std!r}; use a number, 'relu'/'he' or 'sigmoid'/'xavier'"
        )
    return float(weight_init_std)


CHUNK = 1 << 20  # values drawn at a time: a huge layer never exists in float64 at once


def normal(rng: numpy.random.Generator, shape, scale, dtype):
    """``(scale * rng.standard_normal(shape)).astype(dtype)``, drawn in chunks: the same values
    (the generator's stream does not depend on how it is split), without a float64 copy of the
    whole array, so a net too big for memory fails at its real size and is named as such."""
    out = numpy.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        flat[start:stop] = scale * rng.standard_normal(stop - start)
    return out


def zeros(shape, dtype):
    return numpy.zeros(shape, dtype=dtype)


def check_layer_sizes(**sizes) -> None:
    """Layer sizes are whole numbers of at least 1 (``hidden_size=-5`` is refused by name)."""
    for name, value in sizes.items():
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, numpy.integer)) or v < 1:
                raise InputError(f"{name} must be a whole number of at least 1 (units in a layer); got {value!r}")

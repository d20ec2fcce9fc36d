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
        raise InputError(f"unknown weight_init_std {weight_init_std!r}; use a number, 'relu'/'he' "
                         f"or 'sigmoid'/'xavier'")
    return float(weight_init_std)


def normal(rng: numpy.random.Generator, shape, scale, dtype):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def zeros(shape, dtype):
    return numpy.zeros(shape, dtype=dtype)

"""Tolerances derived from floating-point arithmetic, for tests that compare two computations.

A sum of k products, added in any order in a precision with unit roundoff u, is within
gamma_k * sum|a_i * b_i| of the exact sum, gamma_k = k*u / (1 - k*u) (Higham, "Accuracy and
Stability of Numerical Algorithms", 2nd ed., section 3.1). Two correct implementations -- a fast
kernel and the NumPy reference, or OpenBLAS's Haswell kernel and its SkylakeX one -- may add in
different orders, so they differ by at most twice that. The magnitude sum|a_i * b_i| is the same
computation run on the absolute values of its inputs; the tests get it from the reference kernel.

No bound here depends on the machine: a test that passes within it passes on every BLAS kernel.
"""

import numpy


def unit_roundoff(dtype) -> float:
    """u: half the distance from 1 to the next number (2**-24 for float32, 2**-53 for float64)."""
    return float(numpy.finfo(dtype).eps) / 2


def gamma(terms: int, dtype) -> float:
    """Worst-case relative error of a sum of ``terms`` rounded products (Higham's gamma_k)."""
    ku = terms * unit_roundoff(dtype)
    if ku >= 1:
        raise ValueError(f"{terms} terms is too long a sum for a {numpy.dtype(dtype)} bound")
    return ku / (1 - ku)


def probable_gamma(terms: int, dtype, confidence: float = 10.0) -> float:
    """Probabilistic error of a sum of ``terms`` products: confidence * sqrt(k) * u.

    Rounding errors that behave as independent zero-mean variables stay within this with a
    probability of at least 1 - 2*exp(-confidence**2 / 2) (Higham and Mary, SIAM J. Sci. Comput.
    41(5), 2019, Theorem 3.1): for the default 10, the bound fails once in 10**21 sums. It is the
    realistic bound for long sums, where gamma_k's worst case (every error of one sign) is
    thousands of times too loose to catch a real change.
    """
    return confidence * terms**0.5 * unit_roundoff(dtype)


def sum_bound(magnitude, terms: int, dtype):
    """Largest difference, element by element, between two correct computations of the same sums.

    ``magnitude``: the sums of the absolute values of their terms. One term more than the sum
    has covers the final rounding into ``dtype`` of a kernel that adds in wider precision; the
    smallest normal number covers sums that cancel to (sub)normal zero.
    """
    magnitude = numpy.asarray(magnitude, dtype=numpy.float64)
    return 2 * gamma(terms + 1, dtype) * magnitude + float(numpy.finfo(dtype).tiny)


def assert_sums_close(got, want, magnitude, terms: int, dtype, what: str = "result") -> None:
    """``got`` and ``want`` compute the same sums of ``terms`` products each: they agree within
    :func:`sum_bound`, and the message names the worst element and how far past the bound it is."""
    got, want = numpy.asarray(got), numpy.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    bound = numpy.broadcast_to(sum_bound(magnitude, terms, dtype), want.shape)
    error = numpy.abs(got.astype(numpy.float64) - want.astype(numpy.float64))
    if error.size == 0 or (error <= bound).all():
        return
    worst = numpy.unravel_index(numpy.argmax(error / bound), error.shape)
    raise AssertionError(
        f"{what}: |difference| {error[worst]:.3g} at {tuple(int(i) for i in worst)} exceeds the derived "
        f"bound {bound[worst]:.3g} (2 * gamma_{terms + 1} * sum|terms| in {numpy.dtype(dtype)}; "
        f"{int((error > bound).sum())} of {error.size} elements past it)"
    )


def assert_elementwise_close(got, want, dtype, operations: int = 1, what: str = "result") -> None:
    """Element-wise results (exp, a division, a max) after ``operations`` library calls each.

    A library function is within 1 ulp = 2u of its exact value, an arithmetic operation within u;
    counting each as 2u makes ``operations`` calls differ by at most 2 * gamma_(2 * operations).
    """
    got, want = numpy.asarray(got), numpy.asarray(want)
    assert_sums_close(got, want, numpy.abs(want.astype(numpy.float64)), 2 * operations - 1, dtype, what)

"""The kernel contract: every op is written down, and every fast override goes through one
declared fallback (``fast_path``), so unsupported inputs get the reference's answer."""

import inspect

import numpy
import pytest

from fastnet.backends import unavailable_reason
from fastnet.backends.contract import OPS
from fastnet.backends.cupy_kernels import CupyKernels
from fastnet.backends.dispatch import Cache
from fastnet.backends.numpy_kernels import NumpyKernels

REFERENCE = NumpyKernels(numpy)


def refuse_launch(name, size, args):
    raise AssertionError(f"the fallback launched the CUDA kernel {name}")


def kernel_sets():
    sets = [pytest.param(lambda: CupyKernels(numpy, launch=refuse_launch), id="cupy-kernels")]
    reason = unavailable_reason("numba")
    marks = [pytest.mark.skipif(reason is not None, reason=f"numba unavailable: {reason}")]

    def numba_kernels():
        from fastnet.backends.numba_kernels import NumbaKernels

        return NumbaKernels()

    sets.append(pytest.param(numba_kernels, marks=marks, id="numba"))
    return sets


def public_methods(cls):
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_every_reference_op_is_in_the_contract():
    assert public_methods(NumpyKernels) == set(OPS)


@pytest.mark.parametrize("make", kernel_sets())
def test_every_override_declares_its_fast_path(make):
    kernels = type(make())
    overridden = [name for name in OPS if getattr(kernels, name) is not getattr(NumpyKernels, name)]
    assert overridden, "a fast kernel set overrides something"
    for name in overridden:
        assert hasattr(getattr(kernels, name), "fast_path"), f"{kernels.__name__}.{name} has no fast_path"
    assert public_methods(kernels) <= set(OPS), "ops outside the contract"


@pytest.mark.parametrize("make", kernel_sets())
def test_unsupported_inputs_get_the_reference_answer(make, rng):
    """float16 everywhere (no fast path compiles for it): the exact reference results."""
    k, h = make(), numpy.float16
    x = rng.standard_normal((2, 3, 6, 6)).astype(h)
    W, b = rng.standard_normal((5, 4)).astype(h), rng.standard_normal(4).astype(h)
    a = rng.standard_normal((3, 5)).astype(h)
    numpy.testing.assert_array_equal(k.affine_relu_forward(a, W, b), REFERENCE.affine_relu_forward(a, W, b))
    out, finite = k.affine_relu_forward_finite(a, W, b)
    numpy.testing.assert_array_equal(out, REFERENCE.affine_relu_forward(a, W, b))
    assert bool(finite)
    param, want = a.copy(), a.copy()
    k.sgd_update(param, a, 0.5)
    REFERENCE.sgd_update(want, a, 0.5)
    numpy.testing.assert_array_equal(param, want)
    numpy.testing.assert_array_equal(k.relu_forward(x), REFERENCE.relu_forward(x))
    numpy.testing.assert_array_equal(k.relu_backward(x, x), REFERENCE.relu_backward(x, x))
    numpy.testing.assert_array_equal(k.bias_grad(a), REFERENCE.bias_grad(a))
    col = k.im2col(x, 3, 3, 1, 1)
    numpy.testing.assert_array_equal(col, REFERENCE.im2col(x, 3, 3, 1, 1))
    numpy.testing.assert_array_equal(k.col2im(col, x.shape, 3, 3, 1, 1), REFERENCE.col2im(col, x.shape, 3, 3, 1, 1))
    rows = rng.standard_normal((2 * 4, 5)).astype(h)
    numpy.testing.assert_array_equal(
        k.conv_bias_act(rows.copy(), b[:1].repeat(5), 2, 2, 2, True),
        REFERENCE.conv_bias_act(rows.copy(), b[:1].repeat(5), 2, 2, 2, True),
    )
    numpy.testing.assert_array_equal(k.nchw_to_rows(x), REFERENCE.nchw_to_rows(x))
    t = numpy.array([0, 4, 2])
    loss, y = k.softmax_cross_entropy(a, t)
    want_loss, want_y = REFERENCE.softmax_cross_entropy(a, t)
    numpy.testing.assert_array_equal(y, want_y)
    assert loss == want_loss
    numpy.testing.assert_array_equal(
        k.softmax_cross_entropy_backward(y, t), REFERENCE.softmax_cross_entropy_backward(y, t)
    )
    out, cache = k.maxpool_forward(x, 2, 2, 2, 0)
    assert isinstance(cache, Cache) and not cache.fast
    want_out, want_arg = REFERENCE.maxpool_forward(x, 2, 2, 2, 0)
    numpy.testing.assert_array_equal(out, want_out)
    numpy.testing.assert_array_equal(
        k.maxpool_backward(out, cache, x.shape, 2, 2, 2, 0),
        REFERENCE.maxpool_backward(out, want_arg, x.shape, 2, 2, 2, 0),
    )


@pytest.mark.parametrize("make", kernel_sets())
def test_mixed_dtypes_and_shapes_fall_back(make, rng):
    """Arguments that break the declaration (mixed dtypes, shapes, a non-number dout) are the reference's."""
    k = make()
    a32 = rng.standard_normal((3, 4)).astype(numpy.float32)
    a64 = rng.standard_normal((3, 4))
    got = k.relu_backward(a32, a64)
    numpy.testing.assert_array_equal(got, REFERENCE.relu_backward(a32, a64))
    dout = rng.standard_normal((3, 4)).astype(numpy.float32)
    numpy.testing.assert_array_equal(k.relu_backward(dout, a32[:1]), REFERENCE.relu_backward(dout, a32[:1]))
    soft = numpy.full((3, 4), 0.25)  # float64 targets for float32 scores
    numpy.testing.assert_array_equal(
        k.softmax_cross_entropy(a32, soft)[1], REFERENCE.softmax_cross_entropy(a32, soft)[1]
    )
    y = REFERENCE.softmax_cross_entropy(a32, numpy.array([0, 1, 2]))[1]
    scale = numpy.float32(2)
    numpy.testing.assert_array_equal(
        k.softmax_cross_entropy_backward(y, numpy.array([0, 1, 2]), scale),
        REFERENCE.softmax_cross_entropy_backward(y, numpy.array([0, 1, 2]), scale),
    )

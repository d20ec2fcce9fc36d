"""Element-wise activations."""

from __future__ import annotations

from fastnet.annotations import Array, BackendLike
from fastnet.layers.base import Layer, check_dout, shape_of

__all__ = ["Relu", "Sigmoid", "check_dout", "shape_of"]  # check_dout, shape_of: kept importable from here


class Relu(Layer):
    """max(x, 0).  Caches its output: the gradient passes where the output is positive.

    Parameters
    ----------
    backend : Backend, str or None
        Where the layer computes; None for the default backend.

    Examples
    --------
    >>> import numpy
    >>> relu = Relu(backend="numpy")
    >>> relu.forward(numpy.array([[-1.0, 2.0]], numpy.float32))
    array([[0., 2.]], dtype=float32)
    >>> relu.backward(numpy.ones((1, 2), numpy.float32))
    array([[0., 1.]], dtype=float32)
    """

    kind = "relu"

    def __init__(self, backend: BackendLike = None):
        super().__init__(backend)
        self.out: Array = None

    def forward(self, x: Array) -> Array:
        """``max(x, 0)``, element by element.

        Parameters
        ----------
        x : array
            A floating array of any shape, on the layer's backend.

        Returns
        -------
        array
            Of ``x``'s shape and dtype.

        Raises
        ------
        InputError
            When ``x`` is not a floating array on this backend, or holds NaN/inf (while validating).
        """
        self._check_x(x, min_ndim=1)
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: Array) -> Array:
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        self.out = self.kernels.relu_forward(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        """The input's gradient: ``dout`` where the output was positive, else 0.

        Raises
        ------
        InputError
            When called before ``forward`` or with ``dout`` of another shape than the output's.
        """
        check_dout(dout, shape_of(self.out), "Relu")
        return self.kernels.relu_backward(dout, self.out)

    @property
    def mask(self) -> Array | None:
        """The book's mask: True where the input was not positive."""
        return None if self.out is None else self.out <= 0

    def _clear_cache(self):
        self.out = None


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, computed without overflow.  Caches its output for ``backward``.

    Parameters
    ----------
    backend : Backend, str or None
        Where the layer computes; None for the default backend.

    Examples
    --------
    >>> import numpy
    >>> Sigmoid(backend="numpy").forward(numpy.zeros((1, 2), numpy.float32))
    array([[0.5, 0.5]], dtype=float32)
    """

    kind = "sigmoid"

    def __init__(self, backend: BackendLike = None):
        super().__init__(backend)
        self.out: Array = None

    def forward(self, x: Array) -> Array:
        """The sigmoid of every element of ``x`` (any shape), in ``x``'s dtype.

        Raises
        ------
        InputError
            When ``x`` is not a floating array on this backend, or holds NaN/inf (while validating).
        """
        self._check_x(x, min_ndim=1)
        return self.forward_unchecked(x)

    def forward_unchecked(self, x: Array) -> Array:
        """``forward`` for an input whose shape and dtype the net has seen pass the checks."""
        # exp(-logaddexp(0, -x)) == 1 / (1 + exp(-x)) without overflow for very negative x.
        self.out = self.xp.exp(-self.xp.logaddexp(0, -x))
        return self.out

    def backward(self, dout: Array) -> Array:
        """The input's gradient, ``dout * y * (1 - y)`` with ``y`` the forward's output.

        Raises
        ------
        InputError
            When called before ``forward`` or with ``dout`` of another shape than the output's.
        """
        check_dout(dout, shape_of(self.out), "Sigmoid")
        return dout * (1.0 - self.out) * self.out

    def _clear_cache(self):
        self.out = None

"""Softmax followed by the cross-entropy loss: the usual last layer of a classifier."""

from __future__ import annotations

from fastnet.annotations import Array, BackendLike
from fastnet.errors import InputError
from fastnet.layers.base import Layer
from fastnet.validation import check_labels


class SoftmaxWithLoss(Layer):
    """``forward(x, t)`` returns the mean cross-entropy; ``t`` holds integer labels or one-hot rows.

    Stable for logits of any size: the row maximum is subtracted before exponentiating.

    Parameters
    ----------
    backend : Backend, str or None
        Where the layer computes; None for the default backend.

    Examples
    --------
    >>> import numpy
    >>> layer = SoftmaxWithLoss(backend="numpy")
    >>> round(float(layer.forward(numpy.zeros((2, 4)), numpy.array([0, 3]))), 4)  # log(4)
    1.3863
    >>> layer.backward()
    array([[-0.375,  0.125,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """

    kind = "loss"

    def __init__(self, backend: BackendLike = None):
        super().__init__(backend)
        self.loss: Array = None
        self.y: Array = None
        self.t: Array = None

    def forward(self, x: Array, t: Array) -> Array:
        """The mean cross-entropy of ``softmax(x)`` against the labels ``t``.

        Parameters
        ----------
        x : array of shape (N, classes)
            Scores (logits), on the layer's backend.
        t : array of shape (N,) or (N, classes)
            Integer labels or one-hot rows.

        Returns
        -------
        array
            A 0-d array on the backend (use ``float(...)`` for a Python number).

        Raises
        ------
        InputError
            When the shapes, dtypes or label values do not fit.
        """
        self._check_x(x)
        if x.ndim != 2:
            raise self._shape_error(x)
        check_labels(self.backend, t, x.shape[0], x.shape[1], read_values=self.validate)
        return self._forward(x, t)

    def forward_unchecked(self, x: Array, t: Array) -> Array:
        """``forward`` for scores whose shape and dtype the net has seen pass the checks, and labels
        the net has checked (as many as the scores' rows, one-hot rows of their width)."""
        if t.shape[0] != x.shape[0] or (t.ndim == 2 and t.shape != x.shape):
            return self.forward(x, t)  # labels for other scores: the checks name what is wrong
        return self._forward(x, t)

    def _forward(self, x, t):
        if t.ndim == 2 and t.dtype != x.dtype:
            t = t.astype(x.dtype)
        self.t = t
        self.loss, self.y = self.kernels.softmax_cross_entropy(x, t)
        return self.loss

    def backward(self, dout: float | Array = 1) -> Array:
        """The scores' gradient, ``(softmax(x) - t) * dout / N``.

        Raises
        ------
        InputError
            When called before ``forward``.
        """
        if self.y is None:
            raise InputError("SoftmaxWithLoss.backward called before forward")
        return self.kernels.softmax_cross_entropy_backward(self.y, self.t, dout)

    @staticmethod
    def _shape_error(x):
        return InputError(f"SoftmaxWithLoss expects scores of shape (N, classes); got {tuple(x.shape)}")

    def _clear_cache(self):
        self.y = self.t = self.loss = None

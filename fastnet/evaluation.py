"""A whole set's loss and accuracy, in batches: what a trainer and each rank of a job report."""

from __future__ import annotations

from typing import Any

from fastnet import catalog
from fastnet.annotations import Array


def evaluate(net: Any, x: Array, t: Array, batch_size: int = catalog.EVAL_BATCH) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole set, in batches (no weight decay term).

    Parameters
    ----------
    net : Sequential
        The net, evaluated in test mode.
    x, t : array
        The set's input and its labels (or one-hot rows), on the net's backend.
    batch_size : int
        Samples per forward pass (bounds the memory it takes).

    Returns
    -------
    (float, float)
        The mean loss and the fraction of correct predictions.

    Examples
    --------
    >>> import numpy
    >>> from fastnet.nets import TwoLayerNet
    >>> net = TwoLayerNet(4, 5, 3, backend="numpy", seed=0)
    >>> loss, accuracy = evaluate(net, numpy.ones((6, 4), numpy.float32), numpy.zeros(6, int))
    >>> round(loss, 2), accuracy in (0.0, 1.0)
    (1.1, True)
    """
    n = x.shape[0]
    total_loss = 0.0
    correct = 0
    for rows, y in net.predict_batches(x, batch_size):
        tb = t[rows]
        total_loss = total_loss + net.lastLayer.forward(y, tb) * y.shape[0]
        labels = tb if tb.ndim == 1 else tb.argmax(axis=1)
        correct = correct + (y.argmax(axis=1) == labels).sum()
    return float(total_loss) / n, float(correct) / n

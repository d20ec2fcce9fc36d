"""The pictures a command writes into a run folder, each in one call.

``fastnet eval`` -> :func:`write_eval_pictures` (confusion.png, errors.png; those of a checkpoint
other than checkpoint.npz carry its name, e.g. confusion-best.png, so that evaluating best.npz
and checkpoint.npz keeps both);
``fastnet train --net simple-conv`` -> :func:`write_filters` (filters.png);
``plot_history`` -> :func:`write_curves` (curves.png).  Each returns the paths it wrote, which
a TensorBoard log can add as images (``TensorBoardLog.png(tag, path, step)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy

from fastnet.plots.confusion import confusion_figure
from fastnet.plots.curves import curves_figure
from fastnet.plots.errors import errors_figure, most_confident_errors
from fastnet.plots.figure import save_png
from fastnet.plots.filters import filters_figure


def softmax(scores):
    """Row-wise probabilities from a net's scores (host arrays), stable for large scores."""
    scores = numpy.asarray(scores, dtype=numpy.float64)
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


EVAL_PICTURES = ("confusion", "errors")


def eval_picture_names(checkpoint_name="") -> list[str]:
    """confusion.png and errors.png, or confusion-NAME.png and errors-NAME.png for the checkpoint
    NAME.npz (any but checkpoint.npz, the run's own)."""
    suffix = "" if checkpoint_name in ("", "checkpoint") else f"-{checkpoint_name}"
    return [f"{picture}{suffix}.png" for picture in EVAL_PICTURES]


def write_eval_pictures(
    folder, matrix, images, labels, scores, class_names=None, count=25, title="", checkpoint_name=""
):
    """confusion.png from ``matrix`` and errors.png of the ``count`` most confident mistakes
    (named as ``eval_picture_names(checkpoint_name)`` says)."""
    folder = Path(folder)
    confusion_name, errors_name = eval_picture_names(checkpoint_name)
    probabilities = softmax(scores)
    labels = numpy.asarray(labels)
    wrong = most_confident_errors(probabilities, labels, count)
    predicted = probabilities[wrong].argmax(axis=1)
    prefix = f"{title}: " if title else ""
    confusion = save_png(
        confusion_figure(matrix, class_names, title=f"{prefix}confusion matrix"), folder / confusion_name
    )
    errors = save_png(
        errors_figure(
            numpy.asarray(images)[wrong],
            labels[wrong],
            predicted,
            probabilities[wrong, predicted],
            class_names,
            title=f"{prefix}most confident errors",
        ),
        folder / errors_name,
    )
    return [confusion, errors]


def write_filters(path, before, after, title="first convolution filters"):
    return save_png(filters_figure(before, after, title=title), path)


def write_curves(path, columns, title=""):
    return save_png(curves_figure(columns, title=title), path)

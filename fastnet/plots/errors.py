"""The test images the net got wrong with the most confidence, with their labels."""

from __future__ import annotations

import math

import numpy

from fastnet.plots.figure import as_images, new_figure


def most_confident_errors(probabilities, labels, count=25):
    """Indices of misclassified samples, most confident wrong prediction first (ties: lower index)."""
    probabilities = numpy.asarray(probabilities)
    labels = numpy.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    wrong = numpy.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[numpy.argsort(-confidence, kind="stable")[:count]]


def errors_figure(images, true, predicted, confidence, class_names=None, title="most confident errors"):
    """A grid of images, each titled 'true -> predicted (confidence)'."""
    images = as_images(images)
    n = len(images)
    cols = min(n, 5) or 1
    rows = max(1, math.ceil(n / cols))
    # Constrained layout keeps room for the figure's title above the first row's titles (with
    # tight_layout the two overlapped); wide enough for a title line even with one image.
    fig = new_figure(figsize=(max(2.1 * cols, 5.0), 2.3 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    name = (lambda c: class_names[c]) if class_names is not None else str
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p, c in zip(axes.flat, images, true, predicted, confidence, strict=False):
        ax.imshow(image, cmap="gray_r" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"true {name(int(t))}\npredicted {name(int(p))} ({c:.0%})", fontsize=9, color="firebrick")
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle(title, wrap=True)
    return fig

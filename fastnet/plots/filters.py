"""The first convolution's filters before and after training, side by side (as the book shows)."""

from __future__ import annotations

import math

import numpy

from fastnet.plots.figure import new_figure


def filters_figure(before, after, title="first convolution filters"):
    """``before``/``after``: weights (FN, C, FH, FW) on the host; the first input channel is shown.

    Each filter is scaled to its own range, as the book draws them: the pattern matters, not
    the magnitude (initial weights are 100 times smaller than trained ones).
    """
    panels = (("before training", numpy.asarray(before)), ("after training", numpy.asarray(after)))
    count = panels[0][1].shape[0]
    cols = min(count, 6)
    rows = math.ceil(count / cols)
    fig = new_figure(figsize=(2 * (0.9 * cols + 0.4), 0.9 * rows + 1.0))
    for subfig, (label, weights) in zip(fig.subfigures(1, 2, wspace=0.04), panels, strict=True):
        axes = subfig.subplots(rows, cols, squeeze=False)
        subfig.subplots_adjust(left=0.04, right=0.96, bottom=0.03, top=0.8, wspace=0.12, hspace=0.12)
        for ax in axes.flat:
            ax.axis("off")
        for ax, w in zip(axes.flat, weights[:, 0], strict=False):
            ax.imshow(w, cmap="gray_r", interpolation="nearest")
        subfig.suptitle(label, y=0.9)
    fig.suptitle(title, y=0.99, fontweight="bold")
    return fig

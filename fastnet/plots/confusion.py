"""The confusion matrix as a heatmap with the count in every cell."""

from __future__ import annotations

import numpy

from fastnet.plots.figure import new_figure


def confusion_figure(matrix, class_names=None, title="confusion matrix"):
    """``matrix[i, j]``: images of true class i predicted as j.

    Colours are on a log scale so that the few errors show beside diagonals of thousands;
    empty cells stay white.
    """
    from matplotlib.colors import LogNorm

    matrix = numpy.asarray(matrix)
    k = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    size = max(6.0, 0.55 * k + 2.5)
    fig = new_figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    shown = numpy.ma.masked_equal(matrix, 0)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(int(matrix.max()), 2)))
    threshold = numpy.sqrt(max(int(matrix.max()), 1))  # the log-scale middle: dark cells get white text
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:d}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black",
                )
    ax.set_xticks(
        range(k),
        names,
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted class", ylabel="true class")
    total = int(matrix.sum())
    accuracy = numpy.trace(matrix) / total if total else float("nan")
    ax.set_title(f"{title}\n{total:,} images, accuracy {accuracy:.4f}, {total - numpy.trace(matrix):,} errors")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="images (log scale)")
    fig.tight_layout()
    return fig

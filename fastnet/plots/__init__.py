"""Pictures of a run, drawn with matplotlib (Agg: files only, no display) and written atomically.

Each ``*_figure`` function returns a matplotlib Figure; ``save_png(fig, path)`` writes it
atomically and ``png_bytes(fig)`` gives the PNG for TensorBoard.  matplotlib is imported when a
picture is drawn, not when fastnet is imported.
"""

from fastnet.plots.confusion import confusion_figure
from fastnet.plots.curves import curves_figure
from fastnet.plots.errors import errors_figure, most_confident_errors
from fastnet.plots.figure import png_bytes, save_png
from fastnet.plots.filters import filters_figure
from fastnet.plots.run_pictures import softmax, write_curves, write_eval_pictures, write_filters

__all__ = [
    "confusion_figure",
    "curves_figure",
    "errors_figure",
    "filters_figure",
    "most_confident_errors",
    "png_bytes",
    "save_png",
    "softmax",
    "write_curves",
    "write_eval_pictures",
    "write_filters",
]

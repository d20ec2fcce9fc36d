"""A run's curves as a PNG: loss, accuracy (train, validation, test) and the learning rate."""

from __future__ import annotations


def plot_history(history, path, title=""):
    from fastnet.plots import write_curves

    return write_curves(path, history.to_dict(), title=title)
